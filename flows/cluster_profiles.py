"""Cluster profiles by name: where the command line and the deployments look for
``NAME.yaml`` (the library, ``neuroptimus.optimization.execution.cluster``, reads a profile
file it is given)."""

from __future__ import annotations

import os
from pathlib import Path

from neuroptimus.optimization.execution.cluster import ClusterConfig, ClusterError

# The profiles shipped with a source checkout (deployments/clusters next to flows/).
REPOSITORY_PROFILES = Path(__file__).resolve().parents[1] / "deployments" / "clusters"


def profile_folders() -> list[Path]:
    """Where profile names are looked up, in order: ``$NEUROPTIMUS_CLUSTER_PROFILES``
    (colon-separated), ``./deployments/clusters``, the repository's."""
    folders = [Path(p) for p in os.environ.get("NEUROPTIMUS_CLUSTER_PROFILES", "").split(":") if p]
    return [*folders, Path.cwd() / "deployments" / "clusters", REPOSITORY_PROFILES]


def profile_path(name_or_path: str | Path) -> Path:
    """The file of a profile given by path or by name."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ClusterError(f"{path}: no such cluster profile file")
        return path
    for folder in profile_folders():
        for suffix in (".yaml", ".yml"):
            if (folder / f"{name_or_path}{suffix}").is_file():
                return folder / f"{name_or_path}{suffix}"
    known = sorted({p.stem for f in profile_folders() if f.is_dir() for p in f.glob("*.y*ml")})
    raise ClusterError(
        f"no cluster profile named {name_or_path!r} (known: {', '.join(known) or 'none'}; "
        f"searched {', '.join(map(str, profile_folders()))})"
    )


def load_profile(name_or_path: str | Path) -> ClusterConfig:
    """The cluster profile given by name or path. ``local`` is built in, for an installation
    without the repository's profile folder."""
    try:
        path = profile_path(name_or_path)
    except ClusterError:
        if str(name_or_path) == "local":
            return ClusterConfig()  # what deployments/clusters/local.yaml says
        raise
    return ClusterConfig.from_file(path)
