"""The report's figures of an e-model run (the bundled l5pc problem): the best's recordings protocol
by protocol with the feature means drawn over them, and its feature values against the means.
The store is written through its own API with hand-made traces (no simulation)."""

from __future__ import annotations

import html

import holoviews as hv
import numpy as np
import pytest

from neuroptimus.analysis import emodel_figures
from neuroptimus.analysis.report import report_parts
from neuroptimus.flows.benchmarks.large_store import problem_spec
from neuroptimus.optimization.problem.emodel_spec import component_names
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.runs.run_store import RunStore

STEP_MS = 0.1
REST_MV, PEAK_MV = -70.0, 20.0


def spike_train(duration_ms: float, spikes_ms: list[float]) -> np.ndarray:
    """Rest, and a 1 ms triangular spike to PEAK_MV at each time."""
    time = np.arange(round(duration_ms / STEP_MS) + 1) * STEP_MS
    voltage = np.full_like(time, REST_MV)
    for at in spikes_ms:
        voltage = np.maximum(voltage, PEAK_MV - (PEAK_MV - REST_MV) * np.abs(time - at) / 0.5)
    return voltage


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A finished l5pc run's store whose best fires one spike in bAP (the soma; the dendrites
    reach -30 mV) and 10 spikes at 5 Hz from 720 ms in each step protocol."""
    spec = problem_spec("l5pc", "bluepyopt-ibea", 2, 1)
    problem = ProblemSpec.model_validate(spec)
    run = RunStore.create(
        tmp_path_factory.mktemp("emodel") / "l5pc.zarr",
        [p["name"] for p in spec["parameters"]],
        component_names(problem.protocols),
        {"spec": spec, "seed": 1, "algorithm": {"name": "bluepyopt-ibea", "label": "IBEA"}},
    )
    longest = max(p.duration_ms for p in problem.protocols)
    columns = []
    for protocol in problem.protocols:
        for recording in protocol.recordings:
            if protocol.name == "bAP":
                train = spike_train(protocol.duration_ms, [300.0])
                if recording.name != "soma":
                    train = np.minimum(train, -30.0)
            else:
                train = spike_train(protocol.duration_ms, [720.0 + 200 * k for k in range(10)])
            column = np.full(round(longest / STEP_MS) + 1, np.nan)  # NaN past the sweep's end
            column[: len(train)] = train
            columns.append(column)
    run.write_arrays(
        "best",
        {"trace": np.column_stack(columns), "time": np.arange(len(columns[0])) * STEP_MS},
    )
    return run


def of(element, kind) -> list:
    return [layer for layer in element if isinstance(layer, kind)]


def test_a_panel_per_protocol_with_the_feature_means_over_the_recordings(store):
    layout = emodel_figures.protocol_traces_figure(store)
    panels = {panel.opts.get().kwargs["title"]: panel for panel in layout}
    assert list(panels) == ["bAP", "Step3", "Step2", "Step1"]

    bap = panels["bAP"]
    assert [curve.label for curve in of(bap, hv.Curve)] == ["soma", "dend1", "dend2"]
    soma = of(bap, hv.Curve)[0]
    assert soma.dimension_values(0)[-1] == pytest.approx(600.0)  # cut where bAP ends
    bands = [r.array()[0] for r in of(bap, hv.Rectangles)]  # (x0, y0, x1, y1)
    assert len(bands) == 3  # AP_height at the soma, AP amplitude above the base in each dendrite
    assert bands[0].tolist() == pytest.approx([295, 20, 600, 30])  # 25 ± 5 mV, the window
    assert bands[1].tolist() == pytest.approx([295, REST_MV + 35, 600, REST_MV + 55])  # 45 ± 10

    step = panels["Step1"]
    levels = sorted(r.array()[0][1] for r in of(step, hv.Rectangles))
    # AHP_depth_abs_slow, AHP_depth_abs and AP_height (means ± std); mean_frequency … not drawn
    assert levels == pytest.approx([-61.1513 - 2.3385, -60.3636 - 2.3018, 25.0141 - 3.1463])
    latency = of(step, hv.VSpan)[0]  # time_to_first_spike: 27.25 ± 5.7222 ms after 700 ms
    assert latency.data == pytest.approx((700 + 27.25 - 5.7222, 700 + 27.25 + 5.7222))


def test_feature_values_against_the_means_per_feature_and_protocol(store):
    spec = store.attrs["spec"]
    table = emodel_figures.feature_table(spec)
    assert table.amplitudes == [1.9, 0.95, 0.562, 0.458]
    assert "dend1: AP_amplitude_from_voltagebase" in table.features
    assert len({(k, s) for s, row in enumerate(table.statistics) for k, v in enumerate(row) if v})
    values = emodel_figures.feature_values(
        spec, emodel_figures.best_recordings(store.arrays("best")), table
    )
    count = table.features.index("Spikecount")
    frequency = table.features.index("mean_frequency")
    height = table.features.index("AP_height")
    assert values[0][count] == 1  # bAP's one spike
    assert [row[count] for row in values[1:]] == [None, None, None]  # scored in bAP only
    # eFEL's mean_frequency: spikes / (last spike - window start), 10 / 1.82 s
    assert [row[frequency] for row in values[1:]] == pytest.approx([10 / 1.82] * 3, rel=1e-3)
    assert [row[height] for row in values] == pytest.approx([PEAK_MV] * 4, abs=0.5)

    layout = emodel_figures.emodel_feature_figure(store)
    assert len(layout) == len(table.features) + 1  # and the key


def test_the_report_of_an_emodel_run_has_both_figures(store):
    parts = report_parts(store)
    texts = " ".join(part for part in parts if isinstance(part, str))
    for note in (emodel_figures.TRACES_NOTE, emodel_figures.FEATURES_NOTE):
        assert html.escape(note) in texts
    assert "Cannot draw" not in texts
