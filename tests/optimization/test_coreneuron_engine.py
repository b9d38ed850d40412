"""model.engine coreneuron: the sweeps integrated by CoreNEURON (real builds with nrnivmodl
-coreneuron, real simulations in fresh processes), giving NEURON's traces to rounding; what
CoreNEURON cannot run is refused at validation or setup, in one message."""

from __future__ import annotations

import csv as csv_module
import os

import pytest
import yaml
from mechanism_models import leak_problem, mechanisms_benchmark

from neuroptimus.flows.benchmarks.loaded_model import in_fresh_process
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.simulators import ModelError
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One mechanism cache for the module: building for CoreNEURON also compiles its own
    mechanisms (about 30 s of CPU), once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache, monkeypatch):
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(cache))


def _traces_and_libraries(problem: str, values: dict) -> tuple[list, list[str]]:
    """In this (fresh) process: the traces of ``values`` and the CoreNEURON libraries that
    this process has loaded."""
    from neuroptimus.optimization.evaluation.individual import hosted_simulator  # noqa: PLC0415 (lazy: one model per process)

    traces = hosted_simulator(load_problem(problem)).run(values)
    with open("/proc/self/maps") as maps:
        loaded = sorted({line.split()[-1] for line in maps if "libcorenrnmech" in line})
    return [t.values.copy() for t in traces], loaded


def test_coreneuron_runs_the_models_mechanisms_and_gives_neurons_traces(tmp_path, cache):
    values = {"gnabar_hh": 0.1, "g_leak": 5e-4}
    plain = leak_problem(tmp_path / "neuron")
    core = leak_problem(tmp_path / "coreneuron", engine="coreneuron")
    expected, none = in_fresh_process(_traces_and_libraries, str(plain), values)
    traces, loaded = in_fresh_process(_traces_and_libraries, str(core), values)
    assert none == []
    # CoreNEURON ran, with the library built from the problem's own mechanisms
    assert len(loaded) == 1 and loaded[0].startswith(str(cache / "mechanisms"))
    assert max(t.max() for t in expected) > 0  # it spikes: the comparison means something
    for got, want in zip(traces, expected, strict=True):
        assert got.shape == want.shape
        assert abs(got - want).max() < 1e-9  # mV: the same steps, rounding apart


def test_coreneuron_without_mechanisms_uses_its_own_and_matches(tmp_path):
    folder = tmp_path / "hh"
    folder.mkdir()
    source = problem_path("hh")
    (folder / "model.hoc").write_text((source.parent / "model.hoc").read_text())
    data = yaml.safe_load(source.read_text())
    data["model"]["engine"] = "coreneuron"
    (folder / "problem.yaml").write_text(yaml.safe_dump(data))
    values = {"gnabar_hh": 0.12, "gkbar_hh": 0.036, "gl_hh": 3e-4}
    expected, _ = in_fresh_process(_traces_and_libraries, str(source), values)
    traces, loaded = in_fresh_process(_traces_and_libraries, str(folder / "problem.yaml"), values)
    assert [p.rsplit("/", 1)[-1] for p in loaded] == ["libcorenrnmech_internal.so"]
    assert abs(traces[0] - expected[0]).max() < 1e-9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cvode": True}, "CoreNEURON integrates with fixed steps only"),
        ({"stimulus": {"type": "IClamp", "waveforms": ["stim.dat"]}},
         "CoreNEURON cannot play a waveform into the clamp"),
    ],
)  # fmt: skip
def test_what_coreneuron_cannot_run_is_refused_at_validation(tmp_path, change, message):
    data = yaml.safe_load(problem_path("hh").read_text())
    data["model"]["engine"] = "coreneuron"
    data["protocol"].update(change)
    (tmp_path / "stim.dat").write_text("0\n" * 40001)
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=message):
        load_problem(path)


def _setup_error(problem: str) -> str:
    from neuroptimus.optimization.evaluation.individual import hosted_simulator  # noqa: PLC0415 (lazy: one model per process)

    try:
        hosted_simulator(load_problem(problem))
    except ModelError as error:
        return str(error)
    return ""


def test_a_model_with_its_own_step_is_refused_for_coreneuron_at_setup(tmp_path):
    problem = leak_problem(tmp_path, engine="coreneuron")
    with open(tmp_path / "model.hoc", "a") as model:  # stdrun's step(), redefined
        model.write("proc step() { fadvance() }\n")
    message = in_fresh_process(_setup_error, str(problem))
    assert message.startswith("model.engine coreneuron: the model redefines stdrun's step()")
    assert message.endswith("use engine neuron")


def test_the_engines_benchmark_compares_traces_totals_and_times(tmp_path, cache):
    problem, csv = leak_problem(tmp_path), tmp_path / "engines.csv"
    env = {**os.environ, "NEUROPTIMUS_CACHE": str(cache)}
    result = mechanisms_benchmark(problem, "--engines", "--points", "3", "--repeats", "2",
                                  "--rounds", "1", "--csv", str(csv), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweeps integrated by NEURON and by CoreNEURON" in result.stdout
    figures = {row["figure"]: row["value"] for row in csv_module.DictReader(csv.open())}
    assert figures["variants"] == "neuron,coreneuron"
    assert float(figures["largest_trace_difference"]) < 1e-9
    assert float(figures["largest_relative_total_difference"]) < 1e-9
    assert float(figures["neuron_bare_ms"]) > 0 and float(figures["coreneuron_bare_ms"]) > 0
    ratio = float(figures["coreneuron_bare_ms"]) / float(figures["neuron_bare_ms"])
    assert float(figures["coreneuron_to_neuron"]) == pytest.approx(ratio, rel=1e-5)
    # NEURON's build, and CoreNEURON's (NEURON's library beside CoreNEURON's)
    assert len(list(cache.rglob("libcorenrnmech.so"))) == 1
    assert len(list(cache.rglob("libnrnmech.so"))) == 2


def test_the_engines_benchmark_takes_a_model_without_mechanisms(tmp_path):
    csv = tmp_path / "engines.csv"
    result = mechanisms_benchmark(
        "hh", "--engines", "--points", "2", "--repeats", "1", "--rounds", "1", "--csv", str(csv)
    )  # the cache: the fixture's
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {row["figure"]: row["value"] for row in csv_module.DictReader(csv.open())}
    assert float(figures["largest_relative_total_difference"]) < 1e-9
    # the builds benchmark still needs mechanisms of the problem's own
    builds = mechanisms_benchmark("hh")
    assert builds.returncode == 2 and "a mechanisms folder is needed" in builds.stderr


def test_the_engines_benchmark_refuses_what_coreneuron_cannot_run(tmp_path):
    """A waveform stimulus would abort CoreNEURON's process: one line instead."""
    data = yaml.safe_load(problem_path("hh").read_text())
    data["protocol"]["stimulus"] = {"type": "IClamp", "waveforms": ["stim.dat"]}
    (tmp_path / "stim.dat").write_text("0\n" * 40001)
    (tmp_path / "model.hoc").write_text((problem_path("hh").parent / "model.hoc").read_text())
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    result = mechanisms_benchmark(path, "--engines")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: hh: CoreNEURON cannot play a waveform into the clamp "
        "(protocol.stimulus.waveforms); use engine neuron"
    ]
