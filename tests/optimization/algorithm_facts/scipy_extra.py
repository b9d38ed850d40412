"""Facts of SciPy's L-BFGS-B and basin-hopping (batched finite-difference gradients)."""

from __future__ import annotations

from . import Facts
from .core import fail_scipy  # basin-hopping's local searches call scipy.optimize.minimize too

# Each batch is x plus its d difference points: d + 1 <= 5 <= population in the generic tests.
# The forward differences (eps = 1e-3) stop L-BFGS-B at 0.42 in Rosenbrock's curved valley.
# Against random search (median over seeds 1-3, same evaluations): L-BFGS-B 1.7e6x on the
# sphere and 29x on Rosenbrock, basin-hopping 2.2e4x and 13x.
FACTS = {
    "scipy-lbfgsb": Facts(
        {"sphere": 1e5, "rosenbrock": 5.0},
        fail_scipy,
        {"x0": 0.4},
        # its first start ignores the seed; restarts (later than these budgets) draw from it
        seed_independent=True,
        batch="dimension + 1",
        may_stop_early=True,
    ),
    "scipy-basinhopping": Facts(
        {"sphere": 1e3, "rosenbrock": 3.0},
        fail_scipy,
        batch="dimension + 1",
        may_stop_early=True,
    ),
}
