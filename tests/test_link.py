"""--follow link: Moodroll's Link follower and another Link peer, inside a loopback-only network
namespace (``unshare -rn``: only ``lo``, multicast routed to it), so that Link's multicast never
leaves the machine. The peers run in tests/link_peers.py under that namespace."""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aalink", reason="aalink is not installed (pip install 'moodroll[link]')")

ROOT = Path(__file__).resolve().parent.parent
NETNS = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec \"$0\" -m tests.link_peers"


def _in_loopback_namespace() -> dict:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip is missing: the Link tests run only in a loopback-only network namespace")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rn is not permitted here ({probe.stderr.strip()}): Link tests need their own network")
    proc = subprocess.run(["unshare", "-rn", "sh", "-c", NETNS, sys.executable], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _p99(xs):
    return statistics.quantiles(xs, n=100)[98]


def test_link_tempo_phase_bar_and_start_stop():
    r = _in_loopback_namespace()
    assert r["join_s"] is not None, "Moodroll did not join the playing Link session"
    assert r["tempo_after_join"] == [pytest.approx(123.0, abs=1e-3)] * 2  # joining kept the session's tempo
    assert r["start_s"] is not None, "the other app's start did not reach Moodroll"
    assert _p99(r["phase_ms"]) <= 5.0 and _p99(r["phase_ms_140"]) <= 5.0
    assert r["next_bar"] % 4 == 0  # Moodroll's bars are the quantum's
    assert r["app_beat_at_bar_time"] % 4 == pytest.approx(0.0, abs=0.01) or \
        r["app_beat_at_bar_time"] % 4 == pytest.approx(4.0, abs=0.01)
    assert r["tempo_converge_ms"] is not None  # the other peer's change reached Moodroll
    assert r["stop_s"] is not None and r["restart_s"] is not None  # start/stop sync both ways
    assert r["tempo_end"] == [pytest.approx(140.0, abs=1e-3)] * 2
