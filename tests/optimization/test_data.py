"""The data registry's two paths, for real: a local mirror folder, and downloads over HTTP
(pooch, URL + SHA-256) from a local ``http.server`` serving the upstream tree, with the
fetcher pointed at it through ``NEUROPTIMUS_DATA_URL``. Mismatched and missing files fail
with one message naming the file."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.problem import read_target_file
from neuroptimus.optimization.problem.data import DataError, fetch, registry
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path

FOLDER = "testcase_1_hh_pas_surrogate"
HOC, TARGET = f"{FOLDER}/hh_pas.hoc", f"{FOLDER}/input_data2.dat"
SERVED = [HOC, TARGET, f"{FOLDER}/boundaries.txt"]


def upstream_tree(folder: Path, names: list[str]) -> Path:
    """A folder laid out as the upstream mirror holding ``names``, each obtained through the
    registry as the tests' session is configured (the mirror, or a verified download)."""
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fetch(f"data://{name}"), folder / name)
    return folder


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # LocalServer.requests is the log
        pass

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        super().do_GET()


class LocalServer:
    """A real HTTP server of ``folder`` on a free localhost port, in a thread; ``requests``
    records the path of every GET."""

    def __init__(self, folder: Path) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=folder))
        self._server.requests = []
        self.requests: list[str] = self._server.requests
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def serve():
    """``serve(folder) -> LocalServer``, closed at the end of the test."""
    servers: list[LocalServer] = []
    yield lambda folder: servers.append(LocalServer(folder)) or servers[-1]
    for server in servers:
        server.close()


@pytest.fixture
def downloads(monkeypatch, tmp_path):
    """No mirror: the registry downloads into a fresh cache folder (returned)."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("NEUROPTIMUS_DATA_MIRROR", raising=False)
    monkeypatch.setenv("NEUROPTIMUS_DATA_CACHE", str(cache))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy of the machine must not see these
    return cache


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The served files, fetched before any test changes where the registry looks."""
    return upstream_tree(tmp_path_factory.mktemp("upstream"), SERVED)


def test_download_is_verified_cached_and_fetched_once(tree, serve, downloads, monkeypatch):
    server = serve(tree)
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", server.url)
    path = fetch(f"data://{HOC}")
    assert path.parent == downloads and path.read_bytes() == (tree / HOC).read_bytes()
    assert fetch(f"data://{HOC}") == path  # from the cache, verified, not downloaded again
    assert server.requests == [f"/{HOC}"]
    # The product's path: a problem whose target is a registered file, read over HTTP.
    spec = load_problem(problem_path("hh"))
    target = spec.target.model_copy(update={"regenerate": False, "file": f"data://{TARGET}"})
    (trace,) = read_target_file(spec.model_copy(update={"target": target}))
    assert np.array_equal(trace, np.loadtxt(tree / TARGET)[:, 1])
    assert server.requests == [f"/{HOC}", f"/{TARGET}"]


def test_url_template_with_a_path_placeholder(tree, serve, downloads, monkeypatch):
    root = tree.parent / "served-under-a-prefix"
    shutil.copytree(tree, root / "raw" / "files", dirs_exist_ok=True)
    server = serve(root)
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", server.url + "raw/files/{path}")
    assert fetch(f"data://{HOC}").read_bytes() == (tree / HOC).read_bytes()
    assert server.requests == [f"/raw/files/{HOC}"]


def test_a_served_file_with_another_checksum_is_refused_and_not_kept(
    tree, serve, downloads, monkeypatch, tmp_path
):
    changed = tmp_path / "changed"
    shutil.copytree(tree, changed)
    with open(changed / HOC, "a") as handle:  # another version of the model on the server
        handle.write("// changed\n")
    base = serve(changed).url
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", base)
    with pytest.raises(DataError) as raised:
        fetch(f"data://{HOC}")
    message = str(raised.value)
    assert message.startswith(f"data://{HOC}: the file downloaded from {base}{HOC} fails its "
                              "SHA-256 check")  # fmt: skip
    assert registry()[HOC].removeprefix("sha256:") in message  # the expected digest
    assert "\n" not in message
    assert not list(downloads.rglob("*hh_pas.hoc*"))  # nothing corrupt left in the cache


def test_a_file_missing_on_the_server_is_named(tree, serve, downloads, monkeypatch):
    server = serve(tree)
    base = server.url
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", base)
    missing = "testcase_2_VClamp_surrogate/ufun.txt"  # registered, not served
    with pytest.raises(DataError) as raised:
        fetch(f"data://{missing}")
    message = str(raised.value)
    assert message.startswith(f"data://{missing}: cannot download {base}{missing} (404 ")
    assert "NEUROPTIMUS_DATA_MIRROR" in message and "NEUROPTIMUS_DATA_URL" in message
    assert server.requests == [f"/{missing}"]
    assert not list(downloads.rglob("*ufun*"))


def test_an_unreachable_server_and_a_url_that_is_no_url(downloads, monkeypatch, serve, tree):
    server = serve(tree)
    base = server.url
    server.close()  # nothing listens on the port now
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", base)
    with pytest.raises(DataError, match=rf"^data://{HOC}: cannot download {base}{HOC} \("):
        fetch(f"data://{HOC}")
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", "/srv/mirror")
    with pytest.raises(DataError, match="NEUROPTIMUS_DATA_URL=/srv/mirror: not a download URL"):
        fetch(f"data://{HOC}")


def test_the_mirror_folder_is_verified_too(tree, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(tree, mirror)
    monkeypatch.setenv("NEUROPTIMUS_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", "http://127.0.0.1:9/")  # never used
    assert fetch(f"data://{HOC}") == mirror / HOC  # read in place, not copied
    with open(mirror / HOC, "a") as handle:
        handle.write("// changed\n")
    with pytest.raises(DataError, match=rf"{mirror / HOC}: SHA-256 is [0-9a-f]{{64}}, the "
                                        "registry expects"):  # fmt: skip
        fetch(f"data://{HOC}")
    with pytest.raises(DataError, match=r"ufun.txt: missing from the mirror"):
        fetch("data://testcase_2_VClamp_surrogate/ufun.txt")
    with pytest.raises(DataError, match="not in the data registry"):
        fetch("data://nowhere/file.dat")


MOD_FOLDER = "testcase_4_ca1_pc_simplification/mod_files"


@pytest.fixture(scope="module")
def mod_tree(tmp_path_factory):
    names = [name for name in registry() if name.startswith(MOD_FOLDER + "/")]
    return upstream_tree(tmp_path_factory.mktemp("mod-upstream"), names), names


def test_a_registered_folder_is_fetched_file_by_file(mod_tree, serve, downloads, monkeypatch):
    """``data://…/mod_files`` (a mechanisms folder): every registered file under it, laid out
    as the folder, verified; the mirror's own folder, or a folder in the download cache."""
    source, names = mod_tree
    assert len(names) == 21
    server = serve(source)
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", server.url)
    folder = fetch(f"data://{MOD_FOLDER}")
    assert sorted(p.name for p in folder.glob("*.mod")) == sorted(Path(n).name for n in names)
    assert (folder / "CaN.mod").read_bytes() == (source / MOD_FOLDER / "CaN.mod").read_bytes()
    assert sorted(server.requests) == sorted(f"/{n}" for n in names)
    monkeypatch.setenv("NEUROPTIMUS_DATA_MIRROR", str(source))
    assert fetch(f"data://{MOD_FOLDER}/") == source / MOD_FOLDER
    with pytest.raises(DataError, match="not in the data registry"):
        fetch("data://testcase_4_ca1_pc_simplification/mod")


def test_without_the_data_use_cases_are_listed_and_a_problem_fails_in_one_line(
    downloads, monkeypatch, serve, tree
):
    """Offline and without a mirror: `neuroptimus usecases` reads no data file, and a problem
    whose features file cannot be fetched is one line naming the field, exit code 2."""
    server = serve(tree)
    base = server.url
    server.close()
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", base)
    command = [sys.executable, "-m", "neuroptimus.flows.cli"]
    listed = subprocess.run([*command, "usecases"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert "ca1-detailed" in listed.stdout and "hh " in listed.stdout
    values = ",".join(["1"] * 12)
    failed = subprocess.run(
        [*command, "evaluate", "ca1-detailed", "--values", values],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 2
    (line,) = [x for x in failed.stderr.splitlines() if not x.startswith("Downloading")]
    assert "problem.yaml: target.features: data://testcase_6" in line and "cannot download" in line
