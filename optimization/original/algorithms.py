"""The original Neuroptimus's algorithm choice (``current_algorithm`` of its settings) in
terms of this project's catalogue: the algorithm, its population and generations, and the
settings both share by name. Everything else becomes a note for the user."""

from __future__ import annotations

import re
from typing import Any

from neuroptimus.optimization.algorithms import ALGORITHMS

# The original's algorithm ids (its class names; a settings key such as "CMAES - Cmaes" or
# "Cmaes_cmaes" is normalised to them as the original does) -> this project's catalogue.
ORIGINAL_ALGORITHMS = {
    "RANDOM_SEARCH": "random",
    "CMAES_CMAES": "cmaes",
    "NM_SCIPY": "scipy-nelder-mead",
    "L_BFGS_B_SCIPY": "scipy-lbfgsb",
    "LBFGSB_SCIPY": "scipy-lbfgsb",
    "BH_SCIPY": "scipy-basinhopping",
    "CEO_INSPYRED": "inspyred-ceo",
    "CES_INSPYRED": "inspyred-es",
    "PSO_INSPYRED": "inspyred-pso",
    "NSGA2_INSPYRED": "inspyred-nsga2",
    "DE_INSPYRED": "inspyred-de",
    "PAES_INSPYRED": "inspyred-paes",
    "SA_INSPYRED": "inspyred-sa",
    "GA_INSPYRED": "inspyred-ga",
    "EDA_INSPYRED": "inspyred-eda",
    "PSO_PYGMO": "pygmo-pso",
    "PSOG_PYGMO": "pygmo-pso-gen",
    "NSGA2_PYGMO": "pygmo-nsga2",
    "NSGA_PYGMO": "pygmo-nsga2",
    "DE_PYGMO": "pygmo-de",
    "SADE_PYGMO": "pygmo-sade",
    "DE1220_PYGMO": "pygmo-de1220",
    "CMAES_PYGMO": "pygmo-cmaes",
    "XNES_PYGMO": "pygmo-xnes",
    "GACO_PYGMO": "pygmo-gaco",
    "MACO_PYGMO": "pygmo-maco",
    "NSPSO_PYGMO": "pygmo-nspso",
    "PRAXIS_PYGMO": "pygmo-praxis",
    "ABC_PYGMO": "pygmo-abc",
    "NSGA2_BLUEPYOPT": "bluepyopt-nsga2",
    "IBEA_BLUEPYOPT": "bluepyopt-ibea",
}
FALLBACK_ALGORITHM = "cmaes"
# Original algorithm settings handled by the framework itself, not by the algorithm.
_FRAMEWORK_SETTINGS = {"size_of_population", "number_of_generations", "number_of_cpu"}
_SETTING_ALIASES = {"number_of_islands": "islands"}


def original_algorithm_id(key: str) -> str:
    """The original's normalisation of an algorithm key ("CMAES - Cmaes" -> "CMAES_CMAES")."""
    text = re.sub(r"[\(\[].*?[\)\]]", "", key).replace("-", "_").replace(" ", "_")
    return re.sub("_+", "_", text).strip("_").upper()


def algorithm_from_settings(current: Any) -> tuple[dict[str, Any], list[str]]:
    """The problem's ``algorithm`` section for a settings' ``current_algorithm`` (a mapping
    {key: options}, or a bare key), and notes on what it could not carry over."""
    notes: list[str] = []
    if isinstance(current, dict) and len(current) == 1:
        ((key, options),) = current.items()
    elif isinstance(current, str):
        key, options = current, {}
    else:
        notes.append(f"current_algorithm {current!r} not understood: {FALLBACK_ALGORITHM} used")
        return {"name": FALLBACK_ALGORITHM}, notes
    options = options if isinstance(options, dict) else {}
    original = original_algorithm_id(key)
    name = ORIGINAL_ALGORITHMS.get(original)
    if name is None:
        notes.append(
            f"algorithm {key!r} ({original}) has no counterpart in this project's "
            f"catalogue: {FALLBACK_ALGORITHM} used instead (see `neuroptimus algorithms`)"
        )
        name = FALLBACK_ALGORITHM
        options = {k: v for k, v in options.items() if k in _FRAMEWORK_SETTINGS}
    algorithm: dict[str, Any] = {"name": name}
    sizes = {"size_of_population": "population", "number_of_generations": "generations"}
    for original_key, spec_key in sizes.items():
        value = options.get(original_key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
            algorithm[spec_key] = int(value)
    cpus = options.get("number_of_cpu")
    if isinstance(cpus, int | float) and cpus > 1:
        notes.append(
            f"number_of_cpu {cpus:g}: workers are chosen when running "
            f"(neuroptimus run PROBLEM --workers {int(cpus)})"
        )
    settings, dropped = _shared_settings(name, options)
    if settings:
        algorithm["settings"] = settings
    if dropped:
        notes.append(f"algorithm settings not carried over to {name}: {', '.join(sorted(dropped))}")
    if name == "cmaes" and "sigma" not in settings:
        notes.append("the settings give no CMA-ES sigma: this project's default applies")
    return algorithm, notes


def _shared_settings(name: str, options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The original's settings whose name the catalogue algorithm also has (and the rest)."""

    defaults = ALGORITHMS[name].info.defaults
    settings, dropped = {}, []
    for key, value in options.items():
        if key in _FRAMEWORK_SETTINGS or value is None or value == "None":
            continue
        target = _SETTING_ALIASES.get(key, key)
        if target in defaults and isinstance(value, int | float | str | bool):
            settings[target] = value
        else:
            dropped.append(key)
    return settings, dropped
