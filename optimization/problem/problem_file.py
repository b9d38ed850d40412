"""Reading a problem file: YAML parsed into a ``ProblemSpec`` with one-line errors naming the
file and the field, the files it names checked, a features target's protocol completed from
its file, and the command line's overrides applied."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from neuroptimus.optimization.problem.spec import ProblemSpec, validation_spec
from neuroptimus.optimization.problem.spec_base import SpecError


def _field_path(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_NAMES_ITS_FIELD = re.compile(r"^(parameters|(protocols?|target|costs|model|validation)(\.\w+)*): ")


def _one_line(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    # the model kind's tag (neuron, python, external, emodel) is no field of the file
    location = tuple(
        p for p in error["loc"]
        if not str(p).startswith("function-after")
        and p not in ("neuron", "python", "external", "emodel")
    )  # fmt: skip
    if error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    if not location and _NAMES_ITS_FIELD.match(message):
        return message  # a whole-problem check that names its field itself
    return f"{_field_path(location)}: {message}"


def parse_problem(data: Any, source: str = "<problem>", base_dir: str = ".") -> ProblemSpec:
    """Validate a problem mapping; raise SpecError with a one-line message."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the problem file must be a mapping of fields")
    data = {**data}
    data.setdefault("base_dir", base_dir)
    try:
        spec = ProblemSpec.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise SpecError(f"{source}: {_one_line(errors[0])}{more}") from None
    _check_files(spec, source)
    if spec.target is not None and spec.target.features is not None:
        from neuroptimus.optimization.problem.data import DataError  # noqa: PLC0415 (lazy: pooch's HTTP stack loads only for data files to fetch)
        from neuroptimus.optimization.problem.feature_targets import (  # noqa: PLC0415 (lazy: eFEL loads only for feature targets)
            FeaturesError,
            complete_protocol,
        )

        try:
            spec = complete_protocol(spec)
        except (FeaturesError, DataError) as error:
            raise SpecError(f"{source}: target.features: {error}") from None
    if spec.validation is not None:
        spec = _checked_validation(spec, source)
    return spec


def _checked_validation(spec: ProblemSpec, source: str) -> ProblemSpec:
    """``spec`` once its validation, made a problem of its own, passed every check a problem
    passes (errors name ``validation.…`` fields); a features target's protocol completed."""

    try:
        held_out = validation_spec(spec)
    except ValidationError as error:
        line = _one_line(error.errors()[0])
        whole = line.startswith("(top level): ")
        line = f"validation: {line.split(': ', 1)[1]}" if whole else f"validation.{line}"
        raise SpecError(f"{source}: {line}") from None
    _check_files(held_out, source, "validation.")
    if held_out.target is None or held_out.target.features is None:
        return spec
    from neuroptimus.optimization.problem.data import DataError  # noqa: PLC0415 (lazy: pooch's HTTP stack loads only for data files to fetch)
    from neuroptimus.optimization.problem.feature_targets import FeaturesError, complete_protocol  # noqa: PLC0415 (lazy: eFEL loads only for a features target)

    try:
        held_out = complete_protocol(held_out)
    except (FeaturesError, DataError) as error:
        raise SpecError(f"{source}: validation.target.features: {error}") from None
    completed = spec.validation.model_copy(update={"protocol": held_out.protocol})
    return spec.model_copy(update={"validation": completed})


def _check_files(spec: ProblemSpec, source: str, prefix: str = "") -> None:
    from neuroptimus.optimization.problem.data import registry  # noqa: PLC0415 (lazy: pooch's HTTP stack loads only for data files to fetch)

    model = spec.model
    if model.simulator == "python":
        checks = [("model.file", model.file)]
    elif model.simulator == "external":
        checks = [("model.folder", model.folder)]
    elif model.simulator == "emodel":
        checks = [("model.morphology", model.morphology), ("model.mechanisms", model.mechanisms)]
        checks += [(f"model.patches[{k}]", patch) for k, patch in enumerate(model.patches)]
    else:
        checks = [("model.hoc", model.hoc), ("model.mechanisms", model.mechanisms)]
        if model.user_function:
            checks.append(("model.user_function.file", model.user_function.file))
        checks += [(f"model.patches[{k}]", patch) for k, patch in enumerate(model.patches)]
    stimulus = spec.protocol.stimulus if spec.protocol else None
    for k, waveform in enumerate((stimulus.waveforms if stimulus else None) or []):
        checks.append((f"protocol.stimulus.waveforms[{k}]", waveform))
    if spec.target is not None:
        checks += [("target.file", spec.target.file), ("target.features", spec.target.features)]
    entries = registry()
    for field, value in checks:
        if value is None:
            continue
        if value.startswith("data://"):
            name = value.removeprefix("data://")
            folder = name.rstrip("/") + "/"  # a registered folder: files under it
            if name not in entries and not any(e.startswith(folder) for e in entries):
                raise SpecError(f"{source}: {prefix}{field}: {value} is not in the data registry")
        elif not Path(spec.resolve(value)).exists():
            raise SpecError(f"{source}: {prefix}{field}: file {spec.resolve(value)} does not exist")


def read_yaml(path: Path, what: str, error: type[Exception] = SpecError) -> Any:
    """A YAML file's content; a missing file or bad YAML raises ``error`` with one line."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        reason = getattr(problem, "problem", problem)
        raise error(f"{path}: {where}not valid YAML ({reason})") from None


def load_problem(path: str | Path) -> ProblemSpec:
    """Read and validate a YAML problem file."""
    path = Path(path)
    data = read_yaml(path, "problem file")
    return parse_problem(data, source=str(path), base_dir=str(path.parent.resolve()))


def with_overrides(spec: ProblemSpec, **changes: Any) -> ProblemSpec:
    """A copy with command-line overrides (``algorithm``, ``population``, ``generations``,
    ``seed``, ``max_evaluations``, ``warm_start``, ``validate_best``) applied and validated
    again."""
    data = spec.model_dump()
    for key in ("population", "generations"):
        if changes.get(key) is not None:
            data["algorithm"][key] = changes[key]
    if changes.get("max_evaluations") is not None:
        data["stopping"]["max_evaluations"] = changes["max_evaluations"]
    if changes.get("algorithm") is not None:
        data["algorithm"] = _algorithm_override(data, changes["algorithm"])
    if changes.get("seed") is not None:
        data["seed"] = changes["seed"]
    if changes.get("warm_start") is not None:
        data["warm_start"] = changes["warm_start"]
    if changes.get("validate_best") is not None:
        if data.get("validation") is None:
            raise SpecError("command line: --validate-best: the problem has no validation: "
                            "section to validate on")  # fmt: skip
        data["validation"]["best"] = changes["validate_best"]
    return parse_problem(data, source="command line", base_dir=spec.base_dir)


# ``--algorithm a+b``: the last stage takes this share of the budget, the others the rest.
LAST_STAGE_SHARE = 0.2


def _algorithm_override(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The algorithm section for ``--algorithm NAME``: unchanged when it names the problem's
    algorithm (or its chain's stages in order), else NAME with default settings; ``a+b+…`` is
    a chain whose last stage takes a fifth of the budget (population × generations, or
    max_evaluations) and the stages before it share the rest equally."""
    current = data["algorithm"]
    names = name.split("+")
    given = [stage["name"] for stage in current.get("chain") or []] or [current["name"]]
    if names == given:
        return current
    if len(names) == 1:
        return {**{k: v for k, v in current.items() if k != "chain"}, "name": name,
                "settings": {}}  # fmt: skip
    if not all(names):
        raise SpecError(
            f"command line: --algorithm {name}: name each stage, as in cmaes+scipy-nelder-mead"
        )
    budget = (
        data["stopping"].get("max_evaluations") or current["population"] * current["generations"]
    )
    last = max(1, round(budget * LAST_STAGE_SHARE))
    first, extra = divmod(budget - last, len(names) - 1)
    if first < 1:
        raise SpecError(
            f"command line: --algorithm {name}: a budget of {budget} evaluations is too small "
            f"for {len(names)} stages"
        )
    shares = [first + (1 if k < extra else 0) for k in range(len(names) - 1)] + [last]
    stages = [{"name": n, "evaluations": e} for n, e in zip(names, shares, strict=True)]
    return {**current, "name": "chain", "settings": {}, "chain": stages}
