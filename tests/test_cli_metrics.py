"""`moodroll metrics A.mid B.mid ...`: one strict-JSON object per file, bad files reported
as error objects without stopping the run, non-zero exit only when every file failed."""
import json
import subprocess
import sys

import mido
import pytest

from engine.cli import main
from engine.paths import EXAMPLES


def strict_json(line):
    return json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def empty_midi(path):
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks.append(mido.MidiTrack([mido.MetaMessage("end_of_track", time=0)]))
    mf.save(str(path))
    return path


def test_metrics_command_goes_on_after_bad_files(tmp_path, capsys):
    good = EXAMPLES / "example.mid"
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\xff\xff")
    empty = empty_midi(tmp_path / "empty.mid")
    missing = tmp_path / "missing.mid"
    rc = main(["metrics", str(good), str(corrupt), str(missing), str(empty), str(good)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    rows = [strict_json(line) for line in lines]
    assert [r["file"] for r in rows] == [str(good), str(corrupt), str(missing), str(empty), str(good)]
    assert "error" not in rows[0] and rows[0] == rows[4]
    assert rows[0]["n_notes"] > 0 and rows[0]["key"]
    assert 0 <= rows[0]["polyphony_rate"] <= 1 and rows[0]["music_quality_loss"] >= 0
    assert set(rows[1]) == {"file", "error"} and "corrupt.mid" in rows[1]["error"]
    assert set(rows[2]) == {"file", "error"} and "missing.mid" in rows[2]["error"]
    assert rows[3]["pitch_entropy"] is None and rows[3]["n_notes"] == 0  # NaN -> null


def test_metrics_command_fails_when_every_file_fails(tmp_path, capsys):
    bad = tmp_path / "bad.mid"
    bad.write_text("not a midi file")
    assert main(["metrics", str(bad), str(tmp_path / "nope.mid")]) == 1
    rows = [strict_json(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert all("error" in r for r in rows) and len(rows) == 2


def test_metrics_entry_point(tmp_path):
    """The real console entry (python -m engine) prints valid JSON lines and exits 0."""
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"\x00" * 10)
    r = subprocess.run([sys.executable, "-m", "engine", "metrics", str(bad), str(EXAMPLES / "example.mid")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [strict_json(line) for line in r.stdout.strip().splitlines()]
    assert "error" in rows[0] and "error" not in rows[1]
    assert "Traceback" not in r.stderr
