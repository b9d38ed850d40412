"""The ask/tell protocol every search algorithm is driven through.

Algorithms search the unit cube [0, 1]^d; the problem's ParameterSpace maps points to real
units (log-scaled where asked). One round = one ``ask`` (a batch, evaluated in parallel)
followed by one ``tell`` with the errors of exactly that batch. The runner groups rounds into
generations of at least ``population`` evaluations (one round for a batch algorithm; serial
ones, run as islands, ask one point per island per round).
"""

from __future__ import annotations

import abc
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms.start import StartingPoint
from neuroptimus.optimization.errors import UserError


class AlgorithmError(UserError, RuntimeError):
    """An optimizer package failed; the message names the algorithm."""


@dataclass(frozen=True)
class AlgorithmInfo:
    """Registry facts about one implementation (shown by ``neuroptimus algorithms``)."""

    name: str  # registry key, e.g. "cmaes"
    label: str  # human name, e.g. "CMA-ES (cmaes)"
    package: str  # PyPI package that implements it
    multi_objective: bool  # sees the error vector instead of the weighted sum
    parallel: bool  # True: whole generations per ask; False: a serial method (one point per
    # ask and island, possibly after a first batch holding the initial populations)
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    # how many stored evaluations a start may hand to the algorithm's model (surrogate-based
    # methods learn from all of them; the others take only their population's worth)
    model_points: int = 0
    samples_posterior: bool = False  # reads told errors as a log-likelihood (bind_likelihood)


class Algorithm(abc.ABC):
    """One optimizer behind ask/tell.

    ``ask`` returns an (n, d) array of points in the unit cube. ``tell`` receives the same
    points with their error vectors ``errors`` (n, k: one column per weighted cost component,
    unweighted) and weighted totals ``totals`` (n,). Single-objective algorithms use
    ``totals``; multi-objective ones use ``errors``. ``state``/``restore`` make a run resumable
    bit for bit: restoring the state saved after generation g and continuing gives the same
    points as an uninterrupted run.
    """

    info: ClassVar[AlgorithmInfo]

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        unknown = set(settings) - set(self.info.defaults)
        if unknown:
            known = ", ".join(sorted(self.info.defaults)) or "none"
            raise ValueError(
                f"algorithm {self.info.name!r} has no setting(s) {', '.join(sorted(unknown))}; "
                f"known settings: {known}"
            )
        self.dimension = dimension
        self.population = population
        self.seed = seed
        self.settings = {**self.info.defaults, **settings}

    @abc.abstractmethod
    def ask(self) -> np.ndarray:
        """Next batch of points to evaluate, shape (n, dimension), inside [0, 1]."""

    @abc.abstractmethod
    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        """Report the evaluated batch returned by the last ``ask``."""

    @property
    def done(self) -> bool:
        """True when the algorithm has converged by its own criterion."""
        return False

    @property
    def points_per_ask(self) -> int:
        """How many points an ask holds once the run is under way, so the most evaluations
        that run at once (the population; serial methods: one per island)."""
        return self.population

    def state(self) -> bytes:
        """Everything needed to continue this run exactly (default: pickle of the object)."""
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, state: bytes) -> None:
        """Inverse of :meth:`state`."""
        self.__dict__.update(pickles.loads(state))

    def journal_state(self) -> tuple[bytes, Sequence[Any]]:
        """The state as (head, journal): ``journal`` only ever grows by appending, so a store
        writes only its new records at each checkpoint. Default: everything in the head."""
        return self.state(), ()

    def restore_journal(self, head: bytes, journal: Sequence[Any]) -> None:
        """Inverse of :meth:`journal_state`."""
        self.restore(head)

    def start_from(self, start: StartingPoint) -> str | None:
        """Begin at ``start`` (called once, before the first ``ask``): None when taken, else
        one sentence saying why the algorithm starts as its settings say instead."""
        return f"{self.info.label} cannot start from given points; it starts as its settings say"

    @property
    def ends_generation(self) -> bool:
        """True after a ``tell`` that should end the runner's generation there (a chain's
        stage is over), so that no generation mixes two stages."""
        return False

    def store_attributes(self) -> dict[str, Any]:
        """Facts about the algorithm's progress the run store keeps as attributes, readable
        without its state (a chain: where each stage began). Default: none."""
        return {}

    def bind_likelihood(self, likelihood: Any) -> None:  # noqa: B027 - optimizers need none
        """Called by the runner once a posterior sampler (``info.samples_posterior``) exists:
        the log-likelihood of rows of told errors (``scoring.likelihood``). Default: unused."""

    def store_rows(self) -> tuple[str, int, dict[str, np.ndarray]] | None:
        """Rows the run store keeps in a group of its own, ``(group, first row, arrays)``,
        given once each (a sampler's chain); written before each checkpoint, so a resumed run
        writes the same rows again. Default: none."""
        return None

    def close(self) -> None:  # noqa: B027 - a hook with nothing to do by default
        """Release threads or other resources (default: nothing to release)."""
