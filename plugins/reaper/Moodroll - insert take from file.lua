-- @description Moodroll: insert take from file
-- @about
--   Choose a .mid (a Moodroll take, or any MIDI file) and insert it as a MIDI item on the selected
--   track: at the edit cursor, or at the next bar line while playing. See plugins/reaper/README.md.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local M = dofile(dir .. "moodroll_common.lua")

local ok, path = reaper.GetUserFileNameForRead(M.takes_folder(), "Moodroll: insert take from file", "*.mid")
if ok and path and path ~= "" then
  M.insert(path)
end
