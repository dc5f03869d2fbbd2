"""training.select_emotion.choose: the fixed rule (mean judge r at least MARGIN above the shipped
bundle's, Music_Quality_Loss no more than MQL_SLACK worse) picks the winner or keeps the shipped one."""
from __future__ import annotations

from training.select_emotion import MARGIN, MQL_SLACK, choose


def _res(v, a, mql):
    return {"on": {"judge_r_valence": v, "judge_r_arousal": a, "quality": {"music_quality_loss": mql},
                   "degenerate": 0, "clips": 50}}


def test_rule():
    shipped = _res(0.0, 0.5, 0.30)
    assert choose({"shipped": shipped, "x": _res(0.0 + MARGIN, 0.5 + MARGIN, 0.30)}) == "x"
    assert choose({"shipped": shipped, "x": _res(0.04, 0.5, 0.30)}) == "shipped"  # gain below the margin
    assert choose({"shipped": shipped, "x": _res(0.4, 0.6, 0.30 + MQL_SLACK + 0.01)}) == "shipped"  # worse quality
    assert choose({"shipped": shipped, "x": _res(0.2, 0.6, 0.2), "y": _res(0.3, 0.6, 0.31)}) == "y"
