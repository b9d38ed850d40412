"""NMODL compilation, for real: UC4's 21 and UC6's 14 upstream mechanisms (UC6 with the
project's kd_params3 patch; unpatched, NEURON 9 refuses it in one line), a cache hit on the
second compile, nrnivmodl found beside the interpreter without PATH, one-line messages for
.mod files that do not compile and patches that do not apply, the patches recorded in the
run store, and workers that start together compiling once (flock or lock files)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mechanism_models import BAD_CXX_MOD, BAD_MOD, LEAK_MOD, leak_problem

from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.data import fetch, registry
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.simulators import ModelError, mechanisms
from neuroptimus.optimization.simulators.mechanisms import (
    MechanismSources,
    compile_mechanisms,
    mechanisms_record,
)
from neuroptimus.optimization.simulators.nmodl_compiler import nrnivmodl, nrnivmodl_build
from neuroptimus.optimization.simulators.patches import PatchError, apply_patch
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.storage.runs.metadata import write_metadata

ROOT = Path(__file__).resolve().parents[2]
WORKER = """\
import sys
from pathlib import Path
from neuroptimus.optimization.simulators.mechanisms import load_mechanisms, compile_mechanisms
from neuron import h
load_mechanisms(Path(sys.argv[1]))
load_mechanisms(Path(sys.argv[1]))  # loaded once per process: the second call does nothing
soma = h.Section(name="soma")
soma.insert("neuroptimus_test_leak")
print(compile_mechanisms(Path(sys.argv[1])))
"""


@pytest.mark.parametrize("locks", ["flock", "file"])
def test_workers_starting_together_compile_once(tmp_path, locks):
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "leak.mod").write_text(LEAK_MOD)
    # nrnivmodl itself, behind a script that counts its runs
    shim, runs = tmp_path / "bin", tmp_path / "runs"
    shim.mkdir()
    (shim / "nrnivmodl").write_text(f'#!/bin/sh\necho $$ >> "{runs}"\nexec "{nrnivmodl()}" "$@"\n')
    (shim / "nrnivmodl").chmod(0o755)
    env = {
        **os.environ,
        "NEUROPTIMUS_NRNIVMODL": str(shim / "nrnivmodl"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "NEUROPTIMUS_CACHE": str(tmp_path / "cache"),
        "NEUROPTIMUS_LOCKS": locks,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(mod)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-2000:]
        assert "already exists" not in stderr  # NEURON's complaint about a second load
    libraries = {stdout.strip().splitlines()[-1] for stdout, _ in outputs}
    assert len(libraries) == 1 and Path(libraries.pop()).is_file()
    assert len(runs.read_text().split()) == 1  # the others waited, then found the library
    assert not list((tmp_path / "cache").rglob("*.held"))  # no lock file left behind


UC4 = "data://testcase_4_ca1_pc_simplification/mod_files"
UC6 = "data://testcase_6_Detailed_CA1_pyramidal_cell_model/mod_files"
KD_PATCH = ROOT / "usecases" / "ca1_detailed" / "kd_params3_neuron9.patch"
# Loads a library in a fresh NEURON and lists the mechanisms it provides, by kind
CHECK = """\
import json, sys
from neuron import h
assert h.nrn_load_dll(sys.argv[1])
names = json.loads(sys.argv[2])
soma = h.Section(name="soma")
found = []
for kind, name in names:
    if kind == "SUFFIX":
        soma.insert(name)
    else:
        getattr(h, name)
    found.append(name)
print(json.dumps({"found": found, "kd_has_ainfi": hasattr(soma(0.5), "ainfi_kd_params3")
                  if "kd_params3" in found else None}))
"""


def _declared(sources: MechanismSources) -> list[list[str]]:
    """(SUFFIX | POINT_PROCESS | ARTIFICIAL_CELL, name) of every .mod file."""
    pattern = re.compile(r"^\s*(SUFFIX|POINT_PROCESS|ARTIFICIAL_CELL)\s+(\w+)", re.MULTILINE)
    return [list(pattern.search(sources.files[m].read_text(errors="replace")).groups())
            for m in sources.mod_names]  # fmt: skip


def _loaded_in_fresh_neuron(library: Path, sources: MechanismSources) -> dict:
    declared = _declared(sources)
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(library), json.dumps(declared)],
        capture_output=True, text=True, timeout=300, cwd=library.parent.parent.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# UC4 and UC6 compile into the user's cache, as every other test of theirs does: once per
# test session on a fresh machine (≈ 30 s and 12 s), by whichever test needs them first while
# the others wait on its lock, as workers do.
@pytest.fixture(scope="session")
def uc4_library():
    return compile_mechanisms(MechanismSources.of(UC4))


@pytest.fixture(scope="session")
def uc6_library():
    return compile_mechanisms(MechanismSources.of(UC6, (KD_PATCH,)))


def test_uc4_compiles_its_21_mechanisms_for_real(uc4_library):
    sources = MechanismSources.of(UC4)
    assert len(sources.mod_names) == 21 and uc4_library.name == "libnrnmech.so"
    assert uc4_library.parent.name == os.uname().machine  # NEURON 9's layout: ARCH/
    loaded = _loaded_in_fresh_neuron(uc4_library, sources)
    assert len(loaded["found"]) == 21 and "CaN" in loaded["found"]


def test_uc6_compiles_its_14_mechanisms_with_the_patch(uc6_library):
    sources = MechanismSources.of(UC6, (KD_PATCH,))
    assert len(sources.mod_names) == 14
    loaded = _loaded_in_fresh_neuron(uc6_library, sources)
    assert len(loaded["found"]) == 14
    assert loaded["kd_has_ainfi"] is False  # the patched copy was compiled
    # the patched copy differs in its RANGE line only; the fetched file is still the verified one
    upstream = fetch(UC6 + "/kd_params3.mod")
    copy = uc6_library.parent.parent / "kd_params3.mod"
    old, new = upstream.read_bytes().split(b"\n"), copy.read_bytes().split(b"\n")
    assert [k for k, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [18]
    assert new[18] == b"  RANGE gkd, g, theta_a, theta_b, sigma_a, sigma_b, tau_a, ik, b_kt\r"
    digest = registry()["testcase_6_Detailed_CA1_pyramidal_cell_model/mod_files/kd_params3.mod"]
    assert "sha256:" + hashlib.sha256(upstream.read_bytes()).hexdigest() == digest


def test_unpatched_kd_params3_is_refused_in_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(tmp_path))
    with pytest.raises(ModelError) as error:
        compile_mechanisms(MechanismSources.of(UC6))
    assert str(error.value) == (
        f"mechanism {UC6}/kd_params3.mod does not compile with nrnivmodl (NEURON "
        f"{nrnivmodl_build().release}): ainfi used as both variable and function"
    )


def test_second_compile_is_a_cache_hit(uc4_library, uc6_library, monkeypatch):

    def no_compile(*_):
        raise AssertionError("nrnivmodl ran again")

    monkeypatch.setattr(mechanisms, "_compile", no_compile)
    assert compile_mechanisms(MechanismSources.of(UC4)) == uc4_library
    assert compile_mechanisms(MechanismSources.of(UC6, (KD_PATCH,))) == uc6_library
    # the patches are part of the content: without it, another build (refused, see above)
    assert MechanismSources.of(UC6).digest() != MechanismSources.of(UC6, (KD_PATCH,)).digest()


def test_nrnivmodl_is_found_beside_the_interpreter_without_path(tmp_path):
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "leak.mod").write_text(LEAK_MOD)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "NEUROPTIMUS_CACHE": str(tmp_path / "cache")}  # fmt: skip
    assert shutil.which("nrnivmodl", path=env["PATH"]) is None  # else this proves nothing
    script = (
        "import sys\n"
        "from neuroptimus.optimization.simulators.mechanisms import compile_mechanisms\n"
        "print(compile_mechanisms(sys.argv[1]))\n"
    )
    result = subprocess.run(  # the virtualenv's interpreter, the virtualenv not activated
        [sys.executable, "-c", script, str(tmp_path / "mods")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(result.stdout.strip().splitlines()[-1]).is_file()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.mod", BAD_MOD, "Illegal block at line 9: g = = 2"),
        ("verbatim.mod", BAD_CXX_MOD,
         "error: invalid use of ‘this’ in non-member function (line "),
    ],
)  # fmt: skip
def test_a_mod_file_that_does_not_compile_is_one_line_naming_it(
    tmp_path, monkeypatch, name, text, expected
):
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(tmp_path / "cache"))
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "leak.mod").write_text(LEAK_MOD)
    (mods / name).write_text(text)
    with pytest.raises(ModelError) as error:
        compile_mechanisms(mods)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"mechanism {mods}/{name} does not compile with nrnivmodl")
    assert expected in message


def test_the_offending_line_is_found_when_another_translator_prints_between():
    # make -j runs one translator per .mod file; leak.mod's line can land inside bad.mod's error
    output = (
        "Translating bad.mod into x86_64/bad.cpp\n"
        " Error: Illegal block at line 9 in file bad.mod\n"
        "Translating leak.mod into x86_64/leak.cpp\n"
        "    g = = 2\n"
        "         ^\n"
        "make: *** [makemod2c_inc:3: bad.cpp] Error 1\n"
    )
    assert mechanisms.compile_error(output, ["bad.mod", "leak.mod"]) == (
        "bad.mod",
        "Illegal block at line 9: g = = 2",
    )


def test_what_coreneurons_translator_refuses_is_named_with_its_file():
    # nrnivmodl -coreneuron on use case 6 (NEURON 9.0.2): a GLOBAL its rate procedure assigns
    output = (
        "[NMODL] [error] :: Code incompatibility detected\n"
        '[NMODL] [error] :: Code Incompatibility :: "inf" variable found at [31.14-16] '
        "should be defined as a RANGE variable instead of GLOBAL to enable backend "
        "transformations\n"
        "diff: x86_64/corenrn/mod2c/_mod_func.cpp: No such file or directory\n"
        "make: *** [/venv/share/coreneuron/nrnivmodl_core_makefile:185: "
        "x86_64/corenrn/mod2c/km_q10_2.cpp] Error 1\n"
        "make: *** Waiting for unfinished jobs....\n"
        "subprocess.CalledProcessError: Command '['nrnivmodl', '-coreneuron']' returned 2.\n"
    )
    mod, message = mechanisms.compile_error(output, ["km_q10_2.mod", "vecevent.mod"])
    assert mod == "km_q10_2.mod"
    assert message.startswith('CoreNEURON\'s translator: "inf" variable found at [31.14-16] ')
    assert message.endswith("instead of GLOBAL to enable backend transformations")


def test_patches_keep_line_endings_and_find_moved_lines(tmp_path):
    (tmp_path / "x.mod").write_bytes(b"a\r\nb\nc\r\nd\ne\n")
    patch = tmp_path / "x.patch"
    patch.write_text(  # the hunk says line 1; the lines are at 2–4 (a moved hunk)
        "why: a comment before the diff\n--- a/x.mod\n+++ b/x.mod\n@@ -1,3 +1,3 @@\n"
        " b\n-c\n+C\n d\n"
    )
    assert apply_patch(patch, tmp_path) == ["x.mod"]
    assert (tmp_path / "x.mod").read_bytes() == b"a\r\nb\nC\r\nd\ne\n"
    with pytest.raises(PatchError) as error:  # applied already: the old lines are gone
        apply_patch(patch, tmp_path)
    assert str(error.value) == (
        "patch x.patch does not apply to x.mod: hunk 1 (@@ -1 @@) matches no lines of the file"
    )


def test_a_patch_that_does_not_apply_is_one_line_naming_patch_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(tmp_path / "cache"))
    stale = tmp_path / "stale.patch"  # written for another version of kd_params3.mod
    stale.write_text(KD_PATCH.read_text().replace("tau_a, tau_b, ik", "tau_a, tau_c, ik"))
    with pytest.raises(ModelError) as error:
        compile_mechanisms(MechanismSources.of(UC6, (stale,)))
    assert str(error.value) == (
        f"{UC6}: patch stale.patch does not apply to kd_params3.mod: hunk 1 (@@ -16 @@) "
        "matches no lines of the file"
    )
    elsewhere = tmp_path / "elsewhere.patch"
    elsewhere.write_text(KD_PATCH.read_text().replace("kd_params3.mod\n", "kd.mod\n"))
    with pytest.raises(ModelError, match="patch elsewhere.patch changes kd.mod, which is not in"):
        compile_mechanisms(MechanismSources.of(UC6, (elsewhere,)))


LEAK_PATCH = """\
--- a/leak.mod
+++ b/leak.mod
@@ -10,4 +10,4 @@
 PARAMETER {
-    g = 0.001 (S/cm2)
+    g = 0.0002 (S/cm2)
     e = -70 (mV)
 }
"""


def test_the_store_records_the_patches_applied(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "leak_default.patch").write_text(LEAK_PATCH)
    spec = load_problem(leak_problem(tmp_path, patches=["leak_default.patch"]))
    problem = build_problem(spec)  # the target simulated with the patched, compiled model
    store = create_run_store(problem, tmp_path / "run.zarr")
    metadata = json.loads(write_metadata(store, tmp_path / "metadata.json").read_text())
    record = metadata["mechanisms"]
    assert record == store.attrs["mechanisms"] == mechanisms_record(spec)
    assert record["folder"] == str(tmp_path / "mods")
    assert record["patches"] == [{
        "patch": "leak_default.patch",
        "sha256": hashlib.sha256(LEAK_PATCH.encode()).hexdigest(),
        "changes": ["leak.mod"],
    }]  # fmt: skip
    assert record["files"] == {"leak.mod": hashlib.sha256(LEAK_MOD.encode()).hexdigest()}
    assert metadata["model"]["patches"] == ["leak_default.patch"]
    # the patched default is what was compiled (the user's file is untouched)
    assert (tmp_path / "mods" / "leak.mod").read_text() == LEAK_MOD
    build = next((tmp_path / "cache" / "mechanisms").iterdir())
    assert "g = 0.0002 (S/cm2)" in (build / "leak.mod").read_text()


def test_the_problem_file_names_mechanism_folders_and_patches(tmp_path):
    """A data:// folder is the prefix of registered files; patches are files beside the
    problem and need mechanisms; mistakes are one line naming the field."""
    (tmp_path / "kd.patch").write_text(KD_PATCH.read_text())
    spec = load_problem(leak_problem(tmp_path, mechanisms=UC6, patches=["kd.patch"]))
    assert spec.model.patches == ["kd.patch"]
    assert mechanisms_record(spec)["patches"][0]["changes"] == ["kd_params3.mod"]
    problems = {
        "data://testcase_6_Detailed_CA1_pyramidal_cell_model/mods": "model.mechanisms: data://"
        "testcase_6_Detailed_CA1_pyramidal_cell_model/mods is not in the data registry",
        "missing.patch": f"model.patches[0]: file {tmp_path / 'missing.patch'} does not exist",
    }
    for value, expected in problems.items():
        change = {"patches": [value]} if value.endswith(".patch") else {"mechanisms": value}
        with pytest.raises(SpecError) as error:
            load_problem(leak_problem(tmp_path, **{"patches": ["kd.patch"], **change}))
        assert str(error.value) == f"{tmp_path / 'problem.yaml'}: {expected}"
    with pytest.raises(SpecError, match="model: patches apply to mechanism files: give model"):
        load_problem(leak_problem(tmp_path, mechanisms=None, patches=["kd.patch"]))
