"""NEURON-9 incompatibilities of NMODL files written for NEURON 8, and their patches."""

from __future__ import annotations

from pathlib import Path

from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.simulators.nmodl_compat import neuron9_patches, range_function_clashes

MOD = """COMMENT
FUNCTION gbar(v) inside a comment block: not a function
ENDCOMMENT
NEURON {\r
  SUFFIX demo\r
  RANGE gbar, rate, both : a comment naming rate\r
  RANGE helper\r
}\r
FUNCTION rate(v) { rate = v }
PROCEDURE helper() { }
FUNCTION both(v) { both = v }
"""


def test_range_names_of_functions_are_dropped_and_other_lines_kept(tmp_path):
    mod = tmp_path / "demo.mod"
    mod.write_bytes(MOD.encode("latin-1"))
    diff, dropped = range_function_clashes(mod)
    assert dropped == ["rate", "both", "helper"]
    hunk = diff[diff.index("--- a/demo.mod") :].splitlines()
    assert "-  RANGE gbar, rate, both : a comment naming rate" in hunk
    assert "+  RANGE gbar : a comment naming rate" in hunk
    assert "-  RANGE helper" in hunk and not any(line.startswith("+  RANGE h") for line in hunk)
    (tmp_path / "fine.mod").write_text("NEURON {\n  RANGE gbar\n}\nFUNCTION f(v) { f = v }\n")
    assert range_function_clashes(tmp_path / "fine.mod") is None
    assert set(neuron9_patches(tmp_path)) == {"demo.mod"}


def test_only_uc6_kd_params3_needs_a_patch(tmp_path):
    """UC4's 21 files compile unchanged under NEURON 9; of UC6's 14, kd_params3.mod does not."""
    for folder, expected in (
        ("testcase_4_ca1_pc_simplification", {}),
        ("testcase_6_Detailed_CA1_pyramidal_cell_model", {"kd_params3.mod"}),
    ):
        mods = fetch(f"data://{folder}/mod_files/Leak_pyr.mod").parent
        assert set(neuron9_patches(Path(mods))) == set(expected), folder
