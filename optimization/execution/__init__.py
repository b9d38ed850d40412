"""Running evaluations on clusters: the Dask cluster and its evaluator, worker liveness, hangs,
walltimes, lost jobs, worker deaths and who is to blame for them."""
