"""Bayesian optimisation with batch proposals: optuna's TPE sampler through its ask/tell API.

The tree-structured Parzen estimator models the density of good and of bad points and
proposes where their ratio is highest (Bergstra et al. 2011). ``multivariate`` models the
parameters jointly; ``constant_liar`` makes the proposals of one batch, asked before any of
them is told, avoid each other (the pending ones count as bad). The study lives in memory.

A start (a warm start, a chain's earlier stage) hands it evaluations already made: they enter
the study as finished trials, so the model begins with them instead of with random points.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.common import (
    check_sizes,
    checked_results,
    describe,
    library_errors,
)
from neuroptimus.optimization.algorithms.start import StartingPoint

MODEL_POINTS = 1000  # stored evaluations a start may add to the study (the best ones)


def _optuna() -> Any:
    """The package, imported when the first TPE is created, with its per-trial log lines
    (one INFO line for every evaluation) off: the run store and progress bar report them."""
    import optuna  # noqa: PLC0415 (lazy: optuna loads only when its algorithms run)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class OptunaTPE(Algorithm):
    """optuna's ``TPESampler`` on [0, 1]^d, ``population`` proposals per ask.

    Settings: ``startup_trials`` (default 10, optuna's) uniform random points before the model
    is used. ``seed`` seeds the sampler, whose generators are its own.

    The state is the sampler (its generators) plus a journal of the told batches: a resumed
    run rebuilds the study from the journal, so a checkpoint writes only the new batch.
    """

    info = AlgorithmInfo(
        name="optuna-tpe",
        label="Bayesian optimisation, TPE (optuna)",
        package="optuna",
        multi_objective=False,
        parallel=True,
        defaults={"startup_trials": 10},
        summary="Tree-structured Parzen estimator; a batch of proposals kept apart per ask.",
        model_points=MODEL_POINTS,
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)
        startup = self.settings["startup_trials"]
        if not isinstance(startup, int) or startup < 1:
            raise ValueError(
                f"{describe(self.info)}: setting 'startup_trials' must be a whole number >= 1"
            )
        with library_errors(self.info, "setup"):
            optuna = _optuna()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # multivariate and constant_liar are marked
                sampler = optuna.samplers.TPESampler(  # experimental (ExperimentalWarning)
                    seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True
                )
            self._start(sampler)
        self._asked: np.ndarray | None = None
        self._journal: list[tuple[np.ndarray, np.ndarray]] = []  # told (points, totals)

    def _start(self, sampler: Any) -> None:
        optuna = _optuna()
        self._distributions = {
            f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(self.dimension)
        }
        self._study = optuna.create_study(sampler=sampler, direction="minimize")
        self._trials: list[Any] = []  # the pending ask's trials

    def start_from(self, start: StartingPoint) -> str | None:
        """The start's points join the study as finished trials (the first journal entry, so a
        resumed run rebuilds the same study)."""
        points, totals = start.head(self.info.model_points), start.totals[: self.info.model_points]
        with library_errors(self.info, "start"):
            self._add_trials(points, totals)
        self._journal.append((points, totals))
        return None

    def _add_trials(self, points: np.ndarray, totals: np.ndarray) -> None:
        optuna, names = _optuna(), list(self._distributions)
        self._study.add_trials(
            optuna.trial.create_trial(
                params=dict(zip(names, map(float, point), strict=True)),
                distributions=self._distributions,
                value=float(total),
            )
            for point, total in zip(points, totals, strict=True)
        )

    def ask(self) -> np.ndarray:
        names = list(self._distributions)
        with library_errors(self.info, "ask()"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning again, at each proposal
            self._trials = [self._study.ask(self._distributions) for _ in range(self.population)]
            self._asked = np.array([[trial.params[n] for n in names] for trial in self._trials])
        return self._asked.copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        _, totals = checked_results(self.info, self._asked, points, errors, totals)
        with library_errors(self.info, "tell()"):
            for trial, total in zip(self._trials, totals, strict=True):
                self._study.tell(trial, float(total))
        self._journal.append((self._asked, totals))
        self._asked, self._trials = None, []

    # -- resumption -------------------------------------------------------------------------
    def journal_state(self) -> tuple[bytes, Sequence[Any]]:
        # A pending ask (a last batch cut by the budget) is not kept: nothing continues it.
        head = {"sampler": self._study.sampler}
        return pickle.dumps(head, protocol=pickle.HIGHEST_PROTOCOL), self._journal

    def restore_journal(self, head: bytes, journal: Sequence[Any]) -> None:
        data = pickles.loads(head)
        with library_errors(self.info, "resume"):
            self._start(data["sampler"])
            for points, totals in journal:
                self._add_trials(points, totals)
        self._journal = [(np.asarray(p), np.asarray(t)) for p, t in journal]
        self._asked, self._trials = None, []

    def state(self) -> bytes:
        head, journal = self.journal_state()
        return pickle.dumps((head, list(journal)), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, state: bytes) -> None:
        head, journal = pickles.loads(state)
        self.restore_journal(head, journal)


ADAPTERS = (OptunaTPE,)
