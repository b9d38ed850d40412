"""The thirteen pygmo algorithms of the paper's Table 2 (machinery in ``pygmo_base``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.common import describe, start_point
from neuroptimus.optimization.algorithms.pygmo_base import (
    ISLAND_DEFAULTS,
    PygmoAlgorithm,
    convert_setting,
)
from neuroptimus.optimization.algorithms.restarts import RESTART_DEFAULTS


def _info(
    name: str,
    label: str,
    parallel: bool,
    defaults: dict[str, Any],
    summary: str,
    multi_objective: bool = False,
) -> AlgorithmInfo:
    return AlgorithmInfo(
        name, f"{label} (pygmo)", "pygmo", multi_objective, parallel, defaults, summary
    )


_PSO_DEFAULTS = {
    "omega": 0.7298,
    "eta1": 2.05,
    "eta2": 2.05,
    "max_vel": 0.5,
    "variant": 5,
    "neighb_type": 2,
    "neighb_param": 4,
}
_TOLERANCES = {"ftol": 1e-6, "xtol": 1e-6}  # stop when the population has converged
# An island stops when its population has converged, then starts again (``restarts``).
_ISLAND_TOLERANCES = {**_TOLERANCES, **RESTART_DEFAULTS}
_ISLANDS = (
    "{islands} islands (archipelago, ring migration of {migrants} best every "
    "{migration_interval} generations), one point per island per ask"
).format(**ISLAND_DEFAULTS)


class PSO(PygmoAlgorithm):
    """Particle swarm; particles move (and are evaluated) one after the other: serial."""

    uda = "pso"
    has_memory = True
    info = _info(
        "pygmo-pso",
        "PSO",
        False,
        {**_PSO_DEFAULTS, **ISLAND_DEFAULTS},
        f"Particle swarm optimisation; serial: {_ISLANDS}.",
    )


class PSOGenerational(PygmoAlgorithm):
    """PSO that moves the whole swarm, then evaluates it: one batch per generation."""

    uda = "pso_gen"
    info = _info(
        "pygmo-pso-gen",
        "PSO generational",
        True,
        _PSO_DEFAULTS,
        "Particle swarm optimisation, the swarm evaluated as one batch per generation.",
    )


class NSGA2(PygmoAlgorithm):
    """NSGA-II on the error vector; at least 5 individuals (pygmo 2.20 has no multiple-of-4
    rule any more)."""

    uda = "nsga2"
    min_population = 5
    info = _info(
        "pygmo-nsga2",
        "NSGA-II",
        True,
        {"cr": 0.95, "eta_c": 10.0, "m": 0.01, "eta_m": 50.0},
        "Non-dominated sorting genetic algorithm on the error components; batch per generation.",
        multi_objective=True,
    )


class DE(PygmoAlgorithm):
    """Differential evolution; trial vectors are evaluated one by one."""

    uda = "de"
    min_population = 5
    stops_by_itself = 1
    info = _info(
        "pygmo-de",
        "DE",
        False,
        {"F": 0.8, "CR": 0.9, "variant": 2, **_ISLAND_TOLERANCES, **ISLAND_DEFAULTS},
        f"Differential evolution; serial: {_ISLANDS}. An island whose population has "
        "converged starts again.",
    )


class SADE(PygmoAlgorithm):
    """Self-adaptive DE (F and CR adapt per individual); serial."""

    uda = "sade"
    min_population = 7
    has_memory = True
    stops_by_itself = 1
    info = _info(
        "pygmo-sade",
        "SADE",
        False,
        {"variant": 2, "variant_adptv": 1, **_ISLAND_TOLERANCES, **ISLAND_DEFAULTS},
        f"Self-adaptive differential evolution; serial: {_ISLANDS}. An island whose "
        "population has converged starts again.",
    )


class DE1220(PygmoAlgorithm):
    """pygmo's DE that also adapts the mutation variant among ``allowed_variants`` (a string
    "2, 3, 7" or a list of numbers in 1..18)."""

    uda = "de1220"
    min_population = 7
    has_memory = True
    stops_by_itself = 1
    info = _info(
        "pygmo-de1220",
        "DE1220",
        False,
        {
            "allowed_variants": "2, 3, 7, 10, 13, 14, 15, 16",
            "variant_adptv": 1,
            **_ISLAND_TOLERANCES,
            **ISLAND_DEFAULTS,
        },
        f"Differential evolution adapting F, CR and the mutation variant; serial: {_ISLANDS}.",
    )

    def uda_arguments(self) -> dict[str, Any]:
        variants = self.settings["allowed_variants"]
        if isinstance(variants, str):
            variants = variants.replace(",", " ").split()
        try:
            numbers = [float(v) for v in np.atleast_1d(variants)]
            if not numbers or not all(v.is_integer() for v in numbers):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"{describe(self.info)}: setting 'allowed_variants' must list integers in "
                f"1..18, got {variants!r}"
            ) from None
        return super().uda_arguments() | {"allowed_variants": [int(v) for v in numbers]}


class CMAES(PygmoAlgorithm):
    """pygmo's CMA-ES; the offspring of a generation form one batch. ``force_bounds`` (on by
    default here) keeps samples inside the cube; -1 means an automatic learning rate."""

    uda = "cmaes"
    min_population = 5
    info = _info(
        "pygmo-cmaes",
        "CMA-ES",
        True,
        {
            "sigma0": 0.5,
            "cc": -1.0,
            "cs": -1.0,
            "c1": -1.0,
            "cmu": -1.0,
            **_TOLERANCES,
            "force_bounds": True,
        },
        "Covariance matrix adaptation evolution strategy; batch per generation.",
    )


class XNES(PygmoAlgorithm):
    """Exponential natural evolution strategy; pygmo evaluates its samples one by one.
    ``sigma0`` -1 means the whole cube; -1 learning rates are automatic."""

    uda = "xnes"
    min_population = 4
    has_memory = True
    stops_by_itself = 1
    info = _info(
        "pygmo-xnes",
        "xNES",
        False,
        {
            "sigma0": -1.0,
            "eta_mu": -1.0,
            "eta_sigma": -1.0,
            "eta_b": -1.0,
            **_ISLAND_TOLERANCES,
            "force_bounds": True,
            **ISLAND_DEFAULTS,
        },
        f"Exponential natural evolution strategy; serial: {_ISLANDS}.",
    )


class _AntColony(PygmoAlgorithm):
    """Ant colonies keep a solution archive of ``ker`` individuals (pygmo's default 63),
    which cannot exceed the population: larger values are clamped to it."""

    def uda_arguments(self) -> dict[str, Any]:
        arguments = super().uda_arguments()
        if arguments["ker"] < 2:  # pygmo's maco crashes on ker 1
            raise ValueError(f"{describe(self.info)}: setting 'ker' must be at least 2")
        return arguments | {"ker": min(arguments["ker"], self.population)}


class GACO(_AntColony):
    uda = "gaco"
    info = _info(
        "pygmo-gaco",
        "GACO",
        True,
        {
            "ker": 63,
            "q": 1.0,
            "oracle": 0.0,
            "acc": 0.01,
            "threshold": 1,
            "n_gen_mark": 7,
            "impstop": 100000,
            "evalstop": 100000,
            "focus": 0.0,
        },
        "Extended ant colony optimisation; batch per generation.",
    )


class MACO(_AntColony):
    uda = "maco"
    info = _info(
        "pygmo-maco",
        "MACO",
        True,
        {"ker": 63, "q": 1.0, "threshold": 1, "n_gen_mark": 7, "evalstop": 100000, "focus": 0.0},
        "Multi-objective hypervolume-based ant colony optimisation; batch per generation.",
        multi_objective=True,
    )


class NSPSO(PygmoAlgorithm):
    """Non-dominated sorting PSO on the error vector; ``diversity_mechanism`` is one of
    "crowding distance", "niche count", "max min"."""

    uda = "nspso"
    info = _info(
        "pygmo-nspso",
        "NSPSO",
        True,
        {
            "omega": 0.6,
            "c1": 0.01,
            "c2": 0.5,
            "chi": 0.5,
            "v_coeff": 0.5,
            "leader_selection_range": 2,
            "diversity_mechanism": "crowding distance",
        },
        "Non-dominated sorting particle swarm on the error components; batch per generation.",
        multi_objective=True,
    )


class Praxis(PygmoAlgorithm):
    """NLopt's PRAXIS (Brent's principal-axis method), a local serial method started from
    ``x0`` (default: the cube centre; a number, d numbers or "a, b, ..."), like
    scipy-nelder-mead; the population is not used. The run ends when NLopt's ``xtol_rel`` or
    ``ftol_rel`` criterion is met (0 = off). NLopt's initial step shrinks with the distance of
    the start to the bounds, so a start near a face of the cube makes PRAXIS crawl. The seed
    only seeds the random steps PRAXIS takes on ill-conditioned problems."""

    uda = "nlopt"
    min_population = 1
    info = _info(
        "pygmo-praxis",
        "Praxis",
        False,
        {
            "x0": None,
            "xtol_rel": 1e-8,
            "ftol_rel": 0.0,
            "islands": ISLAND_DEFAULTS["islands"],
            **RESTART_DEFAULTS,
        },
        "Brent's principal-axis method (NLopt); local, serial: "
        f"{ISLAND_DEFAULTS['islands']} independent starts (x0, then seeded random points), "
        "one point per start per ask; a start that converged starts again.",
    )

    def start(self) -> np.ndarray:
        return start_point(self.info, self.settings["x0"], self.dimension)[None, :]

    def island_start(self, island: int, seed: int) -> np.ndarray:
        """Island 0 starts at ``x0``; the others at uniform points drawn from their seeds."""
        if island == 0:
            return self.start()
        return np.random.default_rng(seed).random((1, self.dimension))

    def uda_arguments(self) -> dict[str, Any]:
        names = ("xtol_rel", "ftol_rel")
        return {name: convert_setting(self.info, name, self.settings[name]) for name in names}

    @classmethod
    def make_uda(cls, arguments: dict[str, Any], seed: int, gen: int = 0) -> Any:
        import pygmo  # noqa: PLC0415 (lazy: pygmo loads only when its algorithms run)

        uda = pygmo.nlopt("praxis")
        uda.xtol_rel, uda.ftol_rel = arguments["xtol_rel"], arguments["ftol_rel"]
        return uda  # NLopt's generator is seeded in the bridge thread (see _nlopt_srand)


class ABC(PygmoAlgorithm):
    """Artificial bee colony; ``limit`` trials before a food source is abandoned. Serial."""

    uda = "bee_colony"
    info = _info(
        "pygmo-abc",
        "ABC",
        False,
        {"limit": 20, **ISLAND_DEFAULTS},
        f"Artificial bee colony; serial: {_ISLANDS}.",
    )


ADAPTERS = (
    PSO,
    PSOGenerational,
    NSGA2,
    DE,
    SADE,
    DE1220,
    CMAES,
    XNES,
    GACO,
    MACO,
    NSPSO,
    Praxis,
    ABC,
)
