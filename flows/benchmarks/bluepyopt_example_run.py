"""BluePyOpt's side of ``neuroptimus benchmark bluepyopt``: the optimisation of BluePyOpt's L5PC
example as its ``opt_l5pc.py`` sets it up, run by path as its own process.

    python bluepyopt_example_run.py OFFSPRING GENERATIONS WORKERS SEED OUTPUT.json

The working folder is a copy of the example (``l5pc_evaluator.py``, ``l5pc_model.py``,
``config/``, ``morphology/``) with its mechanisms compiled there by ``nrnivmodl``: NEURON loads
them from that folder. Nothing of Neuroptimus is imported, so the process is BluePyOpt's alone.
The evaluator is ``l5pc_evaluator.create()`` and the optimisation
``DEAPOptimisation(selector_name="IBEA", offspring_size=OFFSPRING, seed=SEED,
map_function=...)`` with a pool of WORKERS processes; each generation's summed scores (in the
order evaluated) and its start and end times are written to OUTPUT.json.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def main(argv: list[str]) -> None:
    offspring, generations, workers, seed = (int(value) for value in argv[:4])
    output = argv[4]
    sys.path.insert(0, os.getcwd())  # the example's modules, for this process and the pool's
    # Not multiprocessing.Pool: BluePyOpt runs each protocol of an evaluation in a process of
    # its own (its default, isolate_protocols), which a Pool's daemonic workers may not start.
    # The workers start now, before NEURON is imported: each loads NEURON and this folder's
    # mechanisms itself.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    pool.submit(int).result()
    import bluepyopt  # noqa: PLC0415 (lazy: BluePyOpt's example is importable once its folder is on the path)
    import l5pc_evaluator  # noqa: PLC0415 (lazy: BluePyOpt's example is importable once its folder is on the path)

    batches: list[dict] = []

    def pool_map(function, individuals):
        started = time.time()
        scores = list(pool.map(function, individuals))
        totals = [float(sum(score)) for score in scores]
        batches.append({"started": started, "done": time.time(), "totals": totals})
        return scores

    optimisation = bluepyopt.optimisations.DEAPOptimisation(
        evaluator=l5pc_evaluator.create(),
        offspring_size=offspring,
        map_function=pool_map,
        seed=seed,
        selector_name="IBEA",
    )
    optimisation.run(max_ngen=generations)
    pool.shutdown()
    with open(output, "w") as handle:
        json.dump({"bluepyopt": bluepyopt.__version__, "batches": batches}, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
