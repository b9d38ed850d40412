"""The problem-file writer: what it writes reads back as the same mapping, small mappings on
one line, comments where they were asked for."""

from __future__ import annotations

import yaml

from neuroptimus.optimization.problem.problem_yaml import dump_problem


def test_tricky_scalars_read_back_and_layout_is_one_line_per_item():
    data = {
        "name": "yes",  # YAML 1.1 would read an unquoted yes as True
        "model": {"hoc": "a: b.hoc", "user_function": {"file": "u,f.py", "function": "f"}},
        "parameters": [
            {"name": "g", "lower": 1e-05, "upper": 0.01},  # 1e-05 unquoted is a string
            {"name": "x", "hoc": "nc.weight[0]", "lower": -1, "upper": 1.5e300},
        ],
        "protocol": {"stimulus": {"waveforms": ["#not a comment.dat"], "position": 0.5}},
        "costs": {"functions": [{"name": "MSE (excl. spikes)", "weight": 0.2}]},
        "empty": {"list": [], "map": {}, "none": None},
        "nested": [[1, 2], [3]],
    }
    text = dump_problem(data, ["first line", "", "- a note"], {"parameters[1]": "hoc form"})
    assert yaml.safe_load(text) == data
    lines = text.splitlines()
    assert lines[:3] == ["# first line", "#", "# - a note"]
    assert "  - {name: g, lower: 1.0e-05, upper: 0.01}" in lines
    assert any(line.endswith("  # hoc form") and "nc.weight[0]" in line for line in lines)
    assert "  user_function: {file: 'u,f.py', function: f}" in lines
