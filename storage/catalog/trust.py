"""What a catalog entry would run on this machine, for ``neuroptimus catalog verify``,
``reproduce`` and ``pull``: an entry that is a bundled use case runs this installation's own
files; any other runs its uploader's program, Python file, user function or hoc/NMODL files,
which the user sees (with the SHA-256 the run recorded) and must accept with ``--trust``."""

from __future__ import annotations

import shlex
from typing import Any

from neuroptimus.optimization.problem.problem_file import parse_problem
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.catalog.schema import CatalogRun

# what of a run's problem may change without changing what is simulated
_RUN_SETTINGS = ("algorithm", "stopping", "evaluation", "pareto_fronts")


def own_problem(run: CatalogRun) -> ProblemSpec | None:
    """The bundled use case that is ``run``'s problem (same identity), else None."""
    from neuroptimus.storage.catalog.intake.held_problems import bundled_problem  # noqa: PLC0415 (lazy: pull and reproduce start without SQLAlchemy)

    return bundled_problem(run.use_case)


def own_rerun(run: CatalogRun, own: ProblemSpec) -> ProblemSpec:
    """``own`` (a bundled problem) with ``run``'s algorithm, budget, stopping rules and seed:
    the run again, on this installation's files."""
    data = own.model_dump(mode="json")
    data.update({k: v for k, v in (run.problem or {}).items() if k in _RUN_SETTINGS})
    if run.seed is not None:
        data["seed"] = run.seed
    return parse_problem(data, f"run {run.run_id}", own.base_dir)


def code_to_run(run: CatalogRun) -> list[str]:
    """One line per program, file or function of the uploader's that ``run``'s problem would
    run, with the SHA-256 its run recorded (files are named as the problem names them)."""
    model: dict[str, Any] = (run.problem or {}).get("model") or {}
    core: dict[str, Any] = run.use_case.core.get("model") or {}
    simulator = model.get("simulator", "neuron")
    if simulator == "external":
        lines = [f"program      {shlex.join(model.get('command') or [])}"]
        folder = model.get("folder") or "."
        lines += [
            f"file         {sha}  {folder.rstrip('/')}/{name}"
            for name, sha in sorted((core.get("folder") or {}).items())
        ]
        return lines
    if simulator == "python":
        return [
            f"Python file  {core.get('file')}  {model.get('file')} "
            f"({model.get('build', 'build')}, {model.get('simulate', 'simulate')})"
        ]
    lines = [f"hoc file     {core.get('entry')}  {model.get('hoc')}"]
    mechanisms = core.get("mechanisms") or {}
    lines += [
        f"NMODL file   {sha}  {model.get('mechanisms')}/{name}"
        for name, sha in sorted((mechanisms.get("files") or {}).items())
    ]
    patches = zip(model.get("patches") or [], mechanisms.get("patches") or [], strict=False)
    lines += [f"patch        {sha}  {name}" for name, sha in patches]
    function, recorded = model.get("user_function"), core.get("user_function")
    if function and recorded:
        lines.append(
            f"user function {recorded.get('file')}  {function.get('file')}: "
            f"{function.get('function')}"
        )
    return lines
