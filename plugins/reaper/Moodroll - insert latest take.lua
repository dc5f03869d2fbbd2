-- @description Moodroll: insert latest take
-- @about
--   The newest take in Moodroll's takes folder as a MIDI item on the selected track: at the edit
--   cursor, or at the next bar line while playing. Takes folder: ExtState "Moodroll"/"takes_folder",
--   else <home>/Music/Moodroll Takes. See plugins/reaper/README.md.
local dir = debug.getinfo(1, "S").source:match("^@?(.*[/\\])") or ""
local M = dofile(dir .. "moodroll_common.lua")

local folder = M.takes_folder()
local path = M.latest_take(folder)
if not path then
  M.fail("No takes in " .. folder .. " yet. Play something in Moodroll, or set the folder with the "
    .. "ExtState Moodroll/takes_folder (see plugins/reaper/README.md).")
else
  M.insert(path)
end
