-- Moodroll for Reaper: what the two "Moodroll: insert ..." ReaScripts share.
--
-- A take is a .mid file Moodroll wrote (the app's takes folder, `moodroll generate`, a capture).
-- insert(path) puts it on the selected track as a MIDI item: at the edit cursor when stopped, at
-- the next bar line while playing or recording, its length the whole bars that hold every note
-- onset (as Moodroll's "Send to Live" makes clips). The takes folder is the ExtState
-- "Moodroll"/"takes_folder" if set, else <home>/Music/Moodroll Takes (the app's default).
-- Plain Lua 5.3/5.4 plus the reaper API; tests/test_reaper_scripts.py runs it with lua5.4
-- against a stand-in reaper table.

local M = {}

M.SECTION = "Moodroll"
M.TITLE = "Moodroll"

local function is_windows()
  return (reaper.GetOS() or ""):find("^Win") ~= nil
end

function M.sep()
  return is_windows() and "\\" or "/"
end

function M.join(folder, name)
  local s = M.sep()
  if folder:sub(-1) == "/" or folder:sub(-1) == "\\" then return folder .. name end
  return folder .. s .. name
end

function M.takes_folder()
  local set = reaper.GetExtState(M.SECTION, "takes_folder")
  if set ~= nil and set ~= "" then return set end
  local home = os.getenv("HOME") or os.getenv("USERPROFILE") or "."
  return M.join(M.join(home, "Music"), "Moodroll Takes")
end

-- "<prefix>-YYYYmmdd-HHMMSS[-n].mid" (how the app names takes) -> a sortable key; other names sort first.
local function newness(name)
  local day, time, n = name:match("(%d%d%d%d%d%d%d%d)%-(%d%d%d%d%d%d)%-?(%d*)%.[mM][iI][dD][iI]?$")
  if not day then return "0", name end
  return day .. time .. string.format("%06d", tonumber(n ~= "" and n or "1")), name
end

function M.latest_take(folder)
  local best, best_key, best_name
  local i = 0
  while true do
    local name = reaper.EnumerateFiles(folder, i)
    if not name then break end
    i = i + 1
    local lower = name:lower()
    if name:sub(1, 1) ~= "." and (lower:match("%.mid$") or lower:match("%.midi$")) then
      local key, tie = newness(name)
      if not best or key > best_key or (key == best_key and tie > best_name) then
        best, best_key, best_name = name, key, tie
      end
    end
  end
  return best and M.join(folder, best) or nil
end

-- The take's length in quarter notes: whole bars (of its first time signature) holding every
-- onset. Reads the Standard MIDI File itself; nil, why when it is not one.
local function u32(s, i) return ((s:byte(i) * 256 + s:byte(i + 1)) * 256 + s:byte(i + 2)) * 256 + s:byte(i + 3) end
local function u16(s, i) return s:byte(i) * 256 + s:byte(i + 1) end
local function varlen(s, i)
  local v = 0
  for _ = 1, 4 do
    local b = s:byte(i)
    if not b then return nil, i end
    v = v * 128 + (b % 128)
    i = i + 1
    if b < 128 then return v, i end
  end
  return nil, i
end

function M.take_length_qn(path)
  local f = io.open(path, "rb")
  if not f then return nil, "cannot open " .. path end
  local s = f:read("a")
  f:close()
  if #s < 14 or s:sub(1, 4) ~= "MThd" then return nil, path .. " is not a MIDI file" end
  local division = u16(s, 13)
  if division == 0 or division >= 32768 then return nil, path .. ": SMPTE time is not supported" end
  local pos, last_onset, num, den = 9 + u32(s, 5), nil, nil, nil
  while pos + 7 <= #s do
    local kind, size = s:sub(pos, pos + 3), u32(s, pos + 4)
    local i, stop = pos + 8, math.min(#s, pos + 7 + size)
    if kind == "MTrk" then
      local tick, status = 0, nil
      while i <= stop do
        local dt
        dt, i = varlen(s, i)
        if not dt or i > stop then break end
        tick = tick + dt
        local b = s:byte(i)
        if b >= 128 then status = b; i = i + 1 elseif not status then break end
        if status == 0xFF then
          local meta = s:byte(i)
          local len
          len, i = varlen(s, i + 1)
          if not len then break end
          if meta == 0x58 and len >= 2 and not num then num, den = s:byte(i), 2 ^ s:byte(i + 1) end
          if meta == 0x2F then break end
          i = i + len
          status = nil
        elseif status == 0xF0 or status == 0xF7 then
          local len
          len, i = varlen(s, i)
          if not len then break end
          i = i + len
          status = nil
        else
          local hi = status // 16
          local n = (hi == 0xC or hi == 0xD) and 1 or 2
          if hi == 0x9 and (s:byte(i + 1) or 0) > 0 then
            last_onset = math.max(last_onset or 0, tick)
          end
          i = i + n
        end
      end
    end
    pos = pos + 8 + size
  end
  if not last_onset then return nil, path .. " has no notes" end
  local bar = (num or 4) * 4 / (den or 4)
  local onset_qn = last_onset / division + 1 / 64
  return math.max(1, math.ceil(onset_qn / bar)) * bar
end

-- Where a take goes: the next bar line while playing or recording, else the edit cursor.
function M.insert_position()
  local state = reaper.GetPlayState()
  if state % 2 == 1 or (state // 4) % 2 == 1 then
    local now = reaper.GetPlayPosition()
    local _, measures = reaper.TimeMap2_timeToBeats(0, now)
    return reaper.TimeMap2_beatsToTime(0, 0, measures + 1), true
  end
  return reaper.GetCursorPosition(), false
end

function M.fail(text)
  reaper.ShowMessageBox(text, M.TITLE, 0)
  return nil
end

-- Insert the take at `path` on the selected track; returns the new item (nil after telling why).
function M.insert(path)
  local track = reaper.GetSelectedTrack(0, 0)
  if not track then return M.fail("Select a track first: Moodroll inserts the take on the selected track.") end
  local length_qn, why = M.take_length_qn(path)
  if not length_qn then return M.fail(why) end
  local start, playing = M.insert_position()
  local cursor = reaper.GetCursorPosition()
  local index = math.floor(reaper.GetMediaTrackInfo_Value(track, "IP_TRACKNUMBER")) - 1
  reaper.PreventUIRefresh(1)
  reaper.Undo_BeginBlock()
  reaper.SetEditCurPos(start, false, false)
  -- 512: the high word is the track index (this track, whatever else is selected)
  local ok = reaper.InsertMedia(path, 512 + index * 65536)
  local item = ok and ok ~= 0 and reaper.GetSelectedMediaItem(0, 0) or nil
  if item then
    local stop = reaper.TimeMap_QNToTime(reaper.TimeMap_timeToQN(start) + length_qn)
    reaper.SetMediaItemInfo_Value(item, "D_POSITION", start)
    reaper.SetMediaItemInfo_Value(item, "D_LENGTH", stop - start)
    reaper.SetMediaItemInfo_Value(item, "B_LOOPSRC", 0)
  end
  if playing then reaper.SetEditCurPos(cursor, false, false) end
  reaper.Undo_EndBlock("Moodroll: insert take", -1)
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  if not item then return M.fail("Reaper could not import " .. path) end
  return item
end

return M
