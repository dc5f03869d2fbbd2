"""Interleaved timing rounds and the ratios they support, for ``moodroll bench``.

On a shared machine the load changes faster than a benchmark lasts, so two paths timed one
after the other can differ by a third from one run to the next. The bench therefore runs the
paths it compares in alternation, A B A B ... (:func:`interleave`: round r times every path once,
in the same order), and forms one ratio per round from the two neighbouring measurements
(:func:`ratio_stats`). A load change then moves both sides of a round's ratio alike; what is
left shows as the spread of the per-round ratios. The bench reports their median with its
min–max and calls the comparison ``noisy`` when (max - min) / median exceeds 20 %: then the
machine was too busy to tell, whatever the median says.

Everything here is arithmetic on numbers handed in (tests inject them); the timing itself is
the callables' business.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

MIN_ROUNDS = 5  # rounds of each path in a comparison (the floor; fewer gives no spread worth reading)
NOISY_SPREAD = 0.20  # (max - min) / median of the per-round ratios above which a ratio is "noisy"


def interleave(paths: Mapping[str, Callable[[], float]], rounds: int = MIN_ROUNDS,
               on_round: Callable[[int], None] | None = None) -> dict[str, list[float]]:
    """Call every path once per round, in the mapping's order (A B A B ...), ``rounds`` times.

    Each callable returns one measurement (e.g. tokens/s of one timed block). Returns
    ``{name: [round 0, round 1, ...]}``, so element i of two lists were taken next to each other."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    out: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        for name, fn in paths.items():
            out[name].append(float(fn()))
        if on_round is not None:
            on_round(r)
    return out


def ratio_stats(num: Sequence[float], den: Sequence[float], noisy_spread: float = NOISY_SPREAD,
                digits: int = 3) -> dict:
    """Per-round ratios ``num[i] / den[i]`` -> median, min, max, spread and the noisy flag.

    ``spread`` = (max - min) / median; ``noisy`` = spread > ``noisy_spread``, or fewer than
    :data:`MIN_ROUNDS` rounds (too few to say how steady the machine was)."""
    if len(num) != len(den) or not len(num):
        raise ValueError(f"need the same non-zero number of rounds on both sides, got {len(num)} and {len(den)}")
    a, b = np.asarray(num, np.float64), np.asarray(den, np.float64)
    if np.any(b <= 0) or np.any(a < 0) or not np.all(np.isfinite(a)) or not np.all(np.isfinite(b)):
        raise ValueError("measurements must be finite, the denominators > 0")
    r = a / b
    med = float(np.median(r))
    spread = float((r.max() - r.min()) / med) if med > 0 else float("inf")
    return {"median": round(med, digits), "min": round(float(r.min()), digits), "max": round(float(r.max()), digits),
            "spread": round(spread, 3), "noisy": bool(spread > noisy_spread or r.size < MIN_ROUNDS),
            "rounds": int(r.size)}


def median_rate(samples: Sequence[float], digits: int = 1) -> float:
    """The median of one path's rounds (what ``tokens_per_s`` reports)."""
    return round(float(np.median(np.asarray(samples, np.float64))), digits)


def noisy_ratios(ratios: Mapping[str, dict]) -> list[str]:
    """Names of the ratios flagged noisy (the bench lists them under ``noisy``)."""
    return sorted(k for k, v in ratios.items() if isinstance(v, dict) and v.get("noisy"))
