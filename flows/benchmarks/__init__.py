"""The self-benchmarks (``neuroptimus benchmark …``): what the framework itself costs, measured."""
