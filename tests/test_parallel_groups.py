"""Under pytest-xdist (README: ``python -m pytest -n 2``) the workers take whole groups of
tests (``tests/conftest.py``): a file's tests share their module fixtures on one worker, and
the SLURM tests one queue. xdist names a grouped test ``<id>@<group>``; with a pytest it does
not support it drops the groups silently, and every module fixture is built once per worker."""

from __future__ import annotations

import pytest


def test_the_workers_take_whole_groups(request):
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist's workers
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@test_parallel_groups.py"), (
        f"pytest-xdist ignored the test groups with pytest {pytest.__version__} (its id is "
        f"{request.node.nodeid}): install the versions of pyproject.toml's test extra"
    )
