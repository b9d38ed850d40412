"""emcee's ensemble sampler: it samples exp(-1/2 Σ e²) of the told errors (used alone, as
here), so it concentrates where the errors are small without minimising them."""

from __future__ import annotations

from emcee.moves import StretchMove

from . import Facts


def fail_emcee(monkeypatch, algorithm) -> None:
    def get_proposal(self, s, c, random):
        raise RuntimeError("boom")

    monkeypatch.setattr(StretchMove, "get_proposal", get_proposal)


FACTS = {
    "emcee": Facts({"sphere": None, "rosenbrock": None}, fail_emcee, batch="at most population"),
}
