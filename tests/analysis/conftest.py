"""Stores for the analysis tests, written through the store's own API (no simulation), and a
served explorer opened in headless Chromium."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.analysis import synthetic

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def make_store(
    folder: Path, algorithm: str = "cmaes", label: str = "CMA-ES (cmaes)", seed: int = 1,
    generations: int = 5, population: int = 12, finished: bool = True,
):  # fmt: skip
    """A run store of the bundled HH problem with ``generations`` committed generations."""
    spec = synthetic.problem_spec("hh", algorithm, population, generations, seed)
    store = synthetic.create_store(folder / f"{algorithm}-seed{seed}.zarr", spec, label)
    rng = np.random.default_rng(seed)
    for _ in range(generations):
        synthetic.append_generation(store, rng)
    if finished:
        synthetic.finish(store)
    return store


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """A finished run of 5 generations × 12 (shared: tests only read it)."""
    return make_store(tmp_path_factory.mktemp("store"))


@pytest.fixture
def new_store(tmp_path):
    """``new_store(**settings)``: another store in this test's folder (see make_store)."""
    return lambda **settings: make_store(tmp_path, **settings)


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium (Debian's), driven by playwright; the tests skip without it."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: the browser tests need Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def wait_until(condition, timeout: float = 30.0, step: float = 0.2):
    """Poll ``condition`` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
