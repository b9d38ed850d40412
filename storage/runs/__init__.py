"""The Zarr run store: creating it, writing each generation and the results streamed as they
arrive, checkpoints and the journal, Pareto fronts and hypervolumes, metadata.json, warm
starts."""
