"""The Reaper ReaScripts (plugins/reaper/*.lua) run by a real Lua interpreter (Debian's lua5.4)
against a stand-in ``reaper`` API table that records every call (Reaper cannot run here): which
take, which track, where (edit cursor / next bar while playing or recording) and how long (whole
bars holding every onset, the same rule as Moodroll's clips: engine/takes/clip.py)."""
import os
import shutil
import subprocess
from pathlib import Path

import mido
import pytest

from engine.takes.clip import read_take
from engine.paths import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "plugins" / "reaper"
LATEST = SCRIPTS / "Moodroll - insert latest take.lua"
FROM_FILE = SCRIPTS / "Moodroll - insert take from file.lua"
LUA = shutil.which("lua5.4") or shutil.which("lua")

pytestmark = pytest.mark.skipif(LUA is None, reason="lua5.4 is not installed (apt-get install lua5.4; CI installs it)")

STUB = r"""
-- A stand-in for Reaper's `reaper` table: one project, fixed tempo and metre, recorded calls.
local cfg = dofile(arg[1])
local out = io.open(arg[2], "w")
local function rec(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  out:write("CALL\t", table.concat(parts, "\t"), "\n")
end
local spb, bar_qn = 60 / cfg.bpm, cfg.num * 4 / cfg.den
local cursor, items, selected_item = cfg.cursor, {}, nil
reaper = {}
function reaper.GetOS() return cfg.os end
function reaper.GetResourcePath() return cfg.resource end
function reaper.GetExtState(section, key) rec("GetExtState", section, key) return cfg.ext[section .. "/" .. key] or "" end
function reaper.EnumerateFiles(folder, i)
  if folder ~= cfg.folder then return nil end
  return cfg.files[i + 1]
end
function reaper.GetPlayState() return cfg.play_state end
function reaper.GetPlayPosition() return cfg.play_position end
function reaper.GetCursorPosition() return cursor end
function reaper.SetEditCurPos(t, moveview, seekplay) rec("SetEditCurPos", t, moveview, seekplay) cursor = t end
function reaper.GetSelectedTrack(proj, i)
  if cfg.selected and i == 0 then return {number = cfg.selected} end
  return nil
end
function reaper.GetMediaTrackInfo_Value(track, key) assert(key == "IP_TRACKNUMBER") return track.number + 0.0 end
function reaper.InsertMedia(path, mode)
  rec("InsertMedia", path, mode)
  local item = {path = path, track = mode // 65536 + 1, D_POSITION = cursor, D_LENGTH = 0.5, B_LOOPSRC = 1}
  items[#items + 1], selected_item = item, item
  return 1
end
function reaper.GetSelectedMediaItem(proj, i) return selected_item end
function reaper.SetMediaItemInfo_Value(item, key, value) item[key] = value return true end
function reaper.TimeMap_timeToQN(t) return t / spb end
function reaper.TimeMap_QNToTime(qn) return qn * spb end
function reaper.TimeMap2_timeToBeats(proj, t)
  local qn = t / spb
  local measures = math.floor(qn / bar_qn)
  return (qn - measures * bar_qn) * cfg.den / 4, measures, cfg.num, qn * cfg.den / 4, cfg.den
end
function reaper.TimeMap2_beatsToTime(proj, tpos, measures) return ((measures or 0) * bar_qn + tpos * 4 / cfg.den) * spb end
function reaper.ShowMessageBox(msg, title, kind) rec("ShowMessageBox", msg, title) return 1 end
function reaper.GetUserFileNameForRead(initial, title, ext)
  rec("GetUserFileNameForRead", initial, title, ext)
  return cfg.chosen ~= nil, cfg.chosen or ""
end
function reaper.Undo_BeginBlock() rec("Undo_BeginBlock") end
function reaper.Undo_EndBlock(name, flags) rec("Undo_EndBlock", name, flags) end
function reaper.PreventUIRefresh(n) end
function reaper.UpdateArrange() end
dofile(arg[3])
for _, it in ipairs(items) do
  out:write(string.format("ITEM\t%s\t%d\t%.9f\t%.9f\t%d\n", it.path, it.track, it.D_POSITION, it.D_LENGTH, it.B_LOOPSRC))
end
out:write(string.format("CURSOR\t%.9f\n", cursor))
out:close()
"""


def _lua_value(v) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(float(v))
    if isinstance(v, str):
        return "[==[" + v + "]==]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"[ {_lua_value(k)} ] = {_lua_value(x)}" for k, x in v.items()) + "}"
    return "{" + ", ".join(_lua_value(x) for x in v) + "}"


def run_script(tmp_path, script, *, folder, files=(), ext=None, play_state=0, play_position=0.0, cursor=0.0,
               selected=1, bpm=120.0, num=4, den=4, chosen=None, home=None, os_name="Linux"):
    cfg = dict(os=os_name, resource=str(tmp_path / "reaper"), ext=ext or {}, folder=str(folder), files=list(files),
               play_state=play_state, play_position=play_position, cursor=cursor, selected=selected, bpm=bpm,
               num=num, den=den, chosen=chosen)
    (tmp_path / "cfg.lua").write_text("return {" + ", ".join(f"{k} = {_lua_value(v)}" for k, v in cfg.items()) + "}")
    (tmp_path / "stub.lua").write_text(STUB)
    env = {**os.environ, "HOME": str(home or tmp_path / "home")}
    r = subprocess.run([LUA, str(tmp_path / "stub.lua"), str(tmp_path / "cfg.lua"), str(tmp_path / "out.txt"), str(script)],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    calls, items, cursor_after = [], [], None
    for line in (tmp_path / "out.txt").read_text().splitlines():
        kind, *rest = line.split("\t")
        if kind == "CALL":
            calls.append(rest)
        elif kind == "ITEM":
            items.append((rest[0], int(rest[1]), float(rest[2]), float(rest[3]), int(rest[4])))
        else:
            cursor_after = float(rest[0])
    return calls, items, cursor_after


def _take(folder: Path, name: str, onsets_qn=(0, 1, 2, 13.5), ts=(4, 4)) -> Path:
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=ts[0], denominator=ts[1], time=0)])
    now = 0
    for q in onsets_qn:
        t = int(q * 480)
        tr.append(mido.Message("note_on", note=60, velocity=90, time=t - now))
        tr.append(mido.Message("note_off", note=60, velocity=0, time=240))
        now = t + 240
    mid.tracks.append(tr)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    mid.save(path)
    return path


@pytest.fixture()
def takes(tmp_path):
    folder = tmp_path / "takes"
    names = ["take-20261130-235959.mid", "capture-20261201-101502.mid", "take-20261201-101500.mid",
             "take-20261201-101502-2.mid", "example.mid"]
    for n in names:
        _take(folder, n)
    (folder / ".take-20261231-000000.mid.1234.tmp").write_bytes(b"half")
    (folder / "notes.txt").write_text("x")
    return folder, names + [".take-20261231-000000.mid.1234.tmp", "notes.txt"]


def test_latest_take_at_the_edit_cursor_on_the_selected_track(tmp_path, takes):
    folder, files = takes
    calls, items, cursor = run_script(tmp_path, LATEST, folder=folder, files=files, ext={"Moodroll/takes_folder": str(folder)},
                                      cursor=3.7, selected=2)
    newest = folder / "take-20261201-101502-2.mid"  # the latest stamp, then the highest -n
    assert len(items) == 1
    path, track, pos, length, loop = items[0]
    assert path == str(newest) and track == 2 and pos == pytest.approx(3.7)
    assert length == pytest.approx(read_take(newest).length * 0.5) == pytest.approx(8.0)  # 4 bars at 120 BPM
    assert loop == 0
    names = [c[0] for c in calls]
    assert names.index("Undo_BeginBlock") < names.index("InsertMedia") < names.index("Undo_EndBlock")
    assert ["InsertMedia", str(newest), str(512 + 1 * 65536)] in calls  # pinned to track 2 (index 1)
    assert "ShowMessageBox" not in names and cursor == pytest.approx(3.7)


def test_while_playing_it_goes_to_the_next_bar_and_the_cursor_stays(tmp_path, takes):
    folder, files = takes
    for state in (1, 5):  # playing; recording
        _, items, cursor = run_script(tmp_path, LATEST, folder=folder, files=files, ext={"Moodroll/takes_folder": str(folder)},
                                      play_state=state, play_position=5.3, cursor=1.0, bpm=120)
        assert items[0][2] == pytest.approx(6.0)  # bar 4 starts at 6 s (2 s bars)
        assert cursor == pytest.approx(1.0)
    _, items, _ = run_script(tmp_path, LATEST, folder=folder, files=files, ext={"Moodroll/takes_folder": str(folder)},
                             play_state=2, play_position=5.3, cursor=1.0)  # paused: the edit cursor
    assert items[0][2] == pytest.approx(1.0)


def test_in_three_four_at_90_bpm(tmp_path):
    folder = tmp_path / "t"
    path = _take(folder, "waltz-20261201-120000.mid", onsets_qn=(0, 3, 7), ts=(3, 4))
    assert read_take(path).length == 9.0  # three 3/4 bars hold the onset at beat 7
    _, items, _ = run_script(tmp_path, LATEST, folder=folder, files=[path.name], ext={"Moodroll/takes_folder": str(folder)},
                             play_state=1, play_position=2.1, bpm=90, num=3, den=4)
    spb = 60 / 90
    assert items[0][2] == pytest.approx(2 * 3 * spb) == pytest.approx(4.0)  # 3/4 bars of 2 s: the next after 2.1 s
    assert items[0][3] == pytest.approx(9.0 * spb)


def test_default_folder_is_the_apps(tmp_path):
    home = tmp_path / "home"
    folder = home / "Music" / "Moodroll Takes"
    _take(folder, "take-20261201-090000.mid")
    calls, items, _ = run_script(tmp_path, LATEST, folder=folder, files=["take-20261201-090000.mid"], home=home)
    assert items and items[0][0] == str(folder / "take-20261201-090000.mid")
    assert ["GetExtState", "Moodroll", "takes_folder"] in calls


def test_no_track_selected_or_no_takes_says_so(tmp_path, takes):
    folder, files = takes
    calls, items, _ = run_script(tmp_path, LATEST, folder=folder, files=files, ext={"Moodroll/takes_folder": str(folder)},
                                 selected=None)
    assert items == [] and any(c[0] == "ShowMessageBox" and c[1].startswith("Select a track first") for c in calls)
    assert not any(c[0] == "InsertMedia" for c in calls)
    calls, items, _ = run_script(tmp_path, LATEST, folder=tmp_path / "empty", files=[],
                                 ext={"Moodroll/takes_folder": str(tmp_path / "empty")})
    assert items == [] and any(c[0] == "ShowMessageBox" and c[1].startswith("No takes in") for c in calls)


def test_take_from_file(tmp_path, takes):
    folder, _ = takes
    chosen = shutil.copy(EXAMPLES / "example.mid", tmp_path / "any.mid")
    calls, items, _ = run_script(tmp_path, FROM_FILE, folder=folder, chosen=str(chosen), cursor=2.0, selected=3)
    assert ["GetUserFileNameForRead", str(tmp_path / "home" / "Music" / "Moodroll Takes"),
            "Moodroll: insert take from file", "*.mid"] in calls
    assert items[0][:3] == (str(chosen), 3, 2.0)
    assert items[0][3] == pytest.approx(read_take(chosen).length * 0.5)
    _, items, _ = run_script(tmp_path, FROM_FILE, folder=folder, chosen=None)  # cancelled
    assert items == []
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"RIFF....")
    calls, items, _ = run_script(tmp_path, FROM_FILE, folder=folder, chosen=str(junk))
    assert items == [] and any(c[0] == "ShowMessageBox" and "is not a MIDI file" in c[1] for c in calls)


def test_lua_length_reader_agrees_with_the_engine(tmp_path):
    """The script's own SMF reader (running status, metas, sysex) gives engine/takes/clip.py's length."""
    rs = tmp_path / "running.mid"  # hand-made: running status, a sysex, a 6/8 time signature, 960 ticks/quarter
    body = bytes([0x00, 0xFF, 0x58, 0x04, 6, 3, 24, 8,  0x00, 0xF0, 0x03, 0x7E, 0x01, 0xF7,
                  0x00, 0x90, 60, 100,  0x83, 0x60, 64, 100,  0x00, 60, 0,  0xBC, 0x00, 64, 0,  0x00, 0xFF, 0x2F, 0x00])
    rs.write_bytes(b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") +
                   (960).to_bytes(2, "big") + b"MTrk" + len(body).to_bytes(4, "big") + body)
    for path in (EXAMPLES / "example.mid", rs, _take(tmp_path, "late.mid", onsets_qn=(0, 15.99))):
        _, items, _ = run_script(tmp_path, FROM_FILE, folder=tmp_path, chosen=str(path), bpm=60)
        assert items[0][3] == pytest.approx(read_take(path).length), path
    assert read_take(rs).length == 3.0  # 6/8: one bar = 3 quarters holds the onset at 0.5 quarters
