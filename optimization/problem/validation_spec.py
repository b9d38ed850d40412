"""The problem file's ``validation:`` section: protocols and targets the fit never sees, in
the training's own schema (``protocol``, ``target``, ``costs``; an e-model problem's
``protocols``, or ``hold_out``: names of its protocols moved out of the training), on which the
run's best individuals are evaluated after the optimization (held-out validation).

``spec.validation_spec`` makes the validation a problem of its own, the training problem with
its protocol and target replaced, checked by the same code as any problem."""

from __future__ import annotations

from typing import Any


def move_held_out(data: Any) -> Any:
    """A problem mapping whose ``validation.hold_out`` protocols are moved out of its
    ``protocols`` into ``validation.protocols`` (what is stored and run)."""
    if not isinstance(data, dict) or not isinstance(data.get("validation"), dict):
        return data
    validation = dict(data["validation"])
    names = validation.pop("hold_out", None)
    if names is None:
        return data
    protocols = data.get("protocols")
    if not isinstance(names, list) or not isinstance(protocols, list):
        raise ValueError(
            "validation.hold_out: names protocols of an emodel problem (model.simulator: emodel)"
        )
    by_name = {p.get("name"): p for p in protocols if isinstance(p, dict)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(
            f"validation.hold_out: no protocol named {', '.join(map(str, unknown))} "
            f"(protocols: {', '.join(map(str, by_name))})"
        )
    validation["protocols"] = [*(validation.get("protocols") or []), *(by_name[n] for n in names)]
    kept = [p for p in protocols if not (isinstance(p, dict) and p.get("name") in names)]
    return {**data, "protocols": kept, "validation": validation}


def check_validation(spec: Any) -> None:
    """Checks of the section against its problem (``spec``: a ProblemSpec) that name
    ``validation.…`` fields."""
    validation = spec.validation
    if spec.model.simulator == "emodel":
        if validation.protocol is not None or validation.target is not None:
            raise ValueError("validation: an emodel problem validates on protocols (or "
                             "hold_out), not on a protocol and target")  # fmt: skip
        if not validation.protocols:
            raise ValueError("validation.protocols: required field is missing")
        clash = sorted({p.name for p in validation.protocols} & {p.name for p in spec.protocols})
        if clash:
            raise ValueError(f"validation.protocols: {', '.join(clash)} also fitted: a held-out "
                             "protocol needs a name of its own")  # fmt: skip
        return
    if validation.protocols is not None:
        raise ValueError("validation.protocols: protocols are for model.simulator: emodel")
    for field in ("protocol", "target"):
        if getattr(validation, field) is None:
            raise ValueError(f"validation.{field}: required field is missing")
    if (validation.protocol, validation.target) == (spec.protocol, spec.target):
        raise ValueError("validation: the same protocol and target as the training's validate "
                         "nothing; hold out other sweeps or another recording")  # fmt: skip
