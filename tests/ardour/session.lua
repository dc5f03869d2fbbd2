-- Drives a headless Ardour (ardour7-lua) for tests/test_ardour.py.
--   ardour7-lua session.lua create DIR NAME BPM   a session (Ardour's own dummy backend): tempo
--                                                 BPM in 4/4, one MIDI track "Moodroll", no
--                                                 instrument; Ardour is not the JACK timebase master
--   ardour7-lua session.lua run DIR NAME CLIENT   that session on the JACK server named by
--                                                 JACK_DEFAULT_SERVER as JACK client CLIENT,
--                                                 sending MIDI clock; then commands on stdin:
--     roll   arm the track, record and roll from the session start
--     stop   stop, then print the recorded notes: "note QUARTERS LENGTH PITCH VELOCITY"
--     quit   close the session
-- Every reply ends with a line "ok"; an error prints "error ..." and exits non-zero.

local function say (...) print (...) io.stdout:flush () end
local function fail (msg) say ("error " .. msg) os.exit (1) end

local function beats (b)  -- Temporal.Beats -> quarter notes (its str () is "BEATS:TICKS")
	local q, t = b:str ():match ("^(-?%d+):(-?%d+)$")
	return tonumber (q) + tonumber (t) / Temporal.ticks_per_beat
end

local function create (dir, name, bpm)
	if not AudioEngine:set_backend ("None (Dummy)", "", "") then fail ("no dummy backend") end
	local s = create_session (dir, name, 48000)
	if not s then fail ("could not create the session") end
	Session:cfg ():set_jack_time_master (false)
	local tm = Temporal.TempoMap.fetch_writable ()
	tm:set_tempo (Temporal.Tempo (bpm, bpm, 4), Temporal.timepos_t (0))
	Temporal.TempoMap.update (tm)
	local tl = Session:new_midi_track (ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1),
		ARDOUR.ChanCount (ARDOUR.DataType ("midi"), 1), true, ARDOUR.PluginInfo (), nil, nil, 1,
		"Moodroll", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, false)
	if tl:size () ~= 1 then fail ("no MIDI track") end
	Session:save_state ("", false, false, false, false, false)
	close_session ()
	say ("ok")
end

local function track ()
	for r in Session:get_routes ():iter () do
		if r:name () == "Moodroll" then return r:to_track () end
	end
	fail ("the session has no track Moodroll")
end

local function wait (pred, seconds)
	for _ = 1, seconds * 100 do
		if pred () then return true end
		ARDOUR.LuaAPI.usleep (10000)
	end
	return false
end

local function dump (t)
	for r in t:playlist ():region_list ():iter () do
		local mr = r:to_midiregion ()
		if not mr:isnil () then
			local origin = (r:position ():ticks () - r:start ():ticks ()) / Temporal.ticks_per_beat
			for n in ARDOUR.LuaAPI.note_list (mr:model ()):iter () do
				say (string.format ("note %.6f %.6f %d %d", origin + beats (n:time ()), beats (n:length ()),
					n:note (), n:velocity ()))
			end
		end
	end
end

local function run (dir, name, client)
	ARDOUR.config ():set_send_midi_clock (true)
	if not AudioEngine:set_backend ("JACK", client, "") then fail ("no JACK backend") end
	local s = load_session (dir, name)
	if not s or not AudioEngine:running () then fail ("could not start the session on JACK") end
	local t = track ()
	say ("input " .. client .. ":" .. t:input ():midi (0):name ())
	say ("ok")
	while true do
		local cmd = io.read ("l")
		if cmd == nil or cmd == "quit" then break end
		if cmd == "roll" then
			t:rec_enable_control ():set_value (1, PBD.GroupControlDisposition.NoGroup)
			Session:maybe_enable_record (false)
			Session:request_locate (0, false, ARDOUR.LocateTransportDisposition.MustStop, ARDOUR.TransportRequestSource.TRS_UI)
			Session:request_roll (ARDOUR.TransportRequestSource.TRS_UI)
			if not wait (function () return Session:transport_rolling () end, 10) then fail ("did not roll") end
		elseif cmd == "stop" then
			Session:request_stop (false, false, ARDOUR.TransportRequestSource.TRS_UI)
			if not wait (function () return not Session:transport_rolling () end, 10) then fail ("did not stop") end
			Session:disable_record (false, false)
			wait (function () return false end, 0.5)  -- the butler writes the captured data
			dump (t)
		else
			fail ("unknown command " .. cmd)
		end
		if not AudioEngine:running () then fail ("the JACK engine stopped") end
		say ("ok")
	end
	close_session ()
end

local mode = arg[1]
if mode == "create" then create (arg[2], arg[3], tonumber (arg[4]))
elseif mode == "run" then run (arg[2], arg[3], arg[4])
else fail ("usage: create DIR NAME BPM | run DIR NAME CLIENT") end
