"""``neuroptimus evaluate``: simulate one parameter vector of a problem and print every cost
component and the total."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from neuroptimus.flows.cli.common import ProblemArg, fail, fail_on, load
from neuroptimus.optimization.errors import NeuroptimusError


@contextmanager
def _model_output_to_stderr() -> Iterator[None]:
    """What a model prints (hoc's printf writes to file descriptor 1) goes to stderr, so that
    stdout carries the command's own output only (one JSON object with --json)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def evaluate(
    problem: ProblemArg,
    param: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE (repeatable); unset parameters take their true value."),
    ] = None,
    positional: Annotated[
        str | None,
        typer.Option(
            "--values",
            help="V1,V2,… : every parameter in the problem's order (real units); --param "
            "NAME=VALUE then overrides single ones.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Simulate one parameter vector and print every cost component and the total (the
    weighted objective the optimizer sees)."""
    import numpy as np  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    from neuroptimus.optimization.evaluation.individual import STATUSES, evaluate_one  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.evaluation.problem import build_problem  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    spec = load(problem)
    values = {p.name: p.true_value for p in spec.parameters}
    if positional is not None:
        texts = [text.strip() for text in positional.split(",")]
        if len(texts) != len(values):
            fail(
                f"--values: {len(texts)} value(s) for {len(values)} parameters "
                f"({', '.join(values)})"
            )
        for name, text in zip(list(values), texts, strict=True):
            try:
                values[name] = float(text)
            except ValueError:
                fail(f"--values: {text!r} ({name}) is not a number")
    for item in param or []:
        name, sep, text = item.partition("=")
        if not sep or name not in values:
            fail(f"--param {item}: expected NAME=VALUE with NAME one of {', '.join(values)}")
        try:
            values[name] = float(text)
        except ValueError:
            fail(f"--param {item}: {text!r} is not a number")
    missing = [name for name, value in values.items() if value is None]
    if missing:
        fail(f"give a value for {', '.join(missing)} with --values or --param NAME=VALUE")
    try:
        with _model_output_to_stderr():
            built = build_problem(spec)
            vector = np.array([values[name] for name in built.space.names])
            errors, status, message, _ = evaluate_one(built, vector)
    except NeuroptimusError as error:
        fail_on(error)
    names, weights = built.component_names, built.objective.weights
    total = float(built.objective.total(errors)) if status == 0 else spec.evaluation.penalty
    if as_json:
        payload = {"total": total, "components": dict(zip(names, map(float, errors), strict=True))}
        if status:
            payload["status"] = STATUSES[status]
        typer.echo(json.dumps(payload))
        return
    width = max([28, *map(len, names)])  # e-model names are protocol.recording.feature
    typer.echo(f"{'component':<{width}} {'value':>14} {'weight':>8} {'weighted':>14}")
    for name, value, weight in zip(names, errors, weights, strict=True):
        typer.echo(f"{name:<{width}} {value:>14.6g} {weight:>8.4g} {value * weight:>14.6g}")
    typer.echo(f"{'total':<{width}} {'':>14} {'':>8} {total:>14.6g}")
    if status:
        typer.echo(f"status: {STATUSES[status]} ({message})")
