#!/usr/bin/env bash
# Prove the .deb on this machine (root, Debian/Ubuntu): install it with apt, use the installed
# programs with no virtualenv or checkout on PATH, measure, then remove it and look for leftovers.
#
#     bash desktop/packaging/linux/check_installed.sh [dist/moodroll_<v>_amd64.deb] [screenshot.png]
#
# Checks: `moodroll generate` writes a valid .mid; `moodroll ports` / `moodroll live` reach a
# private JACK server (dummy driver); `moodroll-app` shows its window under Xvfb (screenshot,
# launch-to-window time over 5 starts); `apt-get remove --purge` leaves no file behind.
# Needs: jackd2, xvfb, x11-utils (xwininfo), imagemagick (import); the first apt-get installs them.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DEB="$(realpath "${1:-$(ls dist/moodroll_*_amd64.deb | tail -1)}")"
SHOT="$(realpath -m "${2:-docs/figures/installed_app.png}")"
WORK="$(mktemp -d)"; JACKPID=""; XPID=""
cleanup() { [ -n "$JACKPID" ] && kill "$JACKPID" 2>/dev/null; [ -n "$XPID" ] && kill "$XPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PYCHECK="$PWD/.venv/bin/python"  # the checker's mido (reads the .mid); the program runs without it
CLEAN=(env -i PATH=/usr/bin:/bin HOME="$WORK/home" LANG=C.UTF-8)  # no venv, no PYTHONPATH
mkdir -p "$WORK/home" "$(dirname "$SHOT")"
ok() { echo "ok: $*"; }

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends jackd2 xvfb x11-utils imagemagick >/dev/null
apt-get install -y -qq "$DEB" >/dev/null
ok "apt-get install $(basename "$DEB"): $(dpkg-query -W -f='${Version}, Installed-Size ${Installed-Size} KiB' moodroll)"
echo "   /opt/moodroll: $(du -sh /opt/moodroll | cut -f1); which: $(cd "$WORK" && "${CLEAN[@]}" which moodroll moodroll-app | tr '\n' ' ')"
KB=$(dpkg-query -W -f='${Installed-Size}' moodroll); MB=$(( KB * 1024 / 1000000 ))
[ "$MB" -le 250 ] && ok "installed size ${MB} MB (10^6 bytes) <= 250 MB" \
  || echo "size: installed ${MB} MB (10^6 bytes), over the 250 MB aim by $(( MB - 250 )) MB (docs/install.md)"
"${CLEAN[@]}" moodroll bench --quick 2>"$WORK/bench.txt" && { echo "moodroll bench is inside the installed program"; exit 1; }
grep -q "not part of the installed program" "$WORK/bench.txt" || { cat "$WORK/bench.txt"; exit 1; }
ok "no bench harness inside: $(cat "$WORK/bench.txt")"

cd "$WORK"
"${CLEAN[@]}" moodroll generate /opt/moodroll/_internal/assets/examples/sunrise.jpg -o "$WORK/x.mid" --seed 1
"$PYCHECK" - "$WORK/x.mid" <<'PY'
import sys, mido
m = mido.MidiFile(sys.argv[1]); n = sum(x.type == "note_on" and x.velocity > 0 for x in m)
assert n > 0, "no notes"; print(f"ok: moodroll generate wrote valid MIDI: {n} notes, {m.length:.1f} s")
PY

# JACK: a private dummy server; a second `moodroll live` records what the first one plays.
NAME="moodroll-pkg-$$"
JACK_NO_AUDIO_RESERVATION=1 jackd -n "$NAME" -d dummy -r 48000 -p 256 >"$WORK/jackd.log" 2>&1 & JACKPID=$!
for _ in $(seq 100); do JACK_DEFAULT_SERVER="$NAME" jack_lsp >/dev/null 2>&1 && break; sleep 0.1; done
J=("${CLEAN[@]}" JACK_DEFAULT_SERVER="$NAME" JACK_NO_START_SERVER=1)
"${J[@]}" moodroll ports --midi-api jack | tee "$WORK/ports.txt" | head -8
grep -q "^jack:" "$WORK/ports.txt" && ok "moodroll ports reaches JACK server $NAME"
"${J[@]}" moodroll live --valence 7 --arousal 6 --bars 2 --bpm 120 --seed 3 --midi-api jack \
  --capture "$WORK/live.mid" --capture-bars 2 2>"$WORK/live.txt" || { cat "$WORK/live.txt"; exit 1; }
sed 's/^/   /' "$WORK/live.txt"
grep -q "played 2 bars" "$WORK/live.txt" && ok "moodroll live played to the virtual JACK port"

# The app under Xvfb: screenshot once the window is up, then launch-to-window time.
Xvfb :77 -screen 0 1600x900x24 -nolisten tcp -noreset >/dev/null 2>&1 & XPID=$!
for _ in $(seq 100); do xwininfo -display :77 -root >/dev/null 2>&1 && break; sleep 0.05; done
X=("${J[@]}" DISPLAY=:77 MOODROLL_MIDI_API=jack)
# The main window: the one with the app's WM_CLASS and a real size (Qt's helper windows are 1x1).
main_window() {
  local w; w=$(xwininfo -display :77 -root -tree 2>/dev/null | grep '"Moodroll.*("moodroll-app"' | grep -v ' 1x1+' | awk '{print $1}' | head -1)
  [ -n "$w" ] && xwininfo -display :77 -id "$w" 2>/dev/null | grep -q 'Map State: IsViewable' && echo "$w"
  return 0
}
times=(); cpus=()
for i in 1 2 3 4 5; do
  t0=$(date +%s.%N)
  "${X[@]}" moodroll-app $([ "$i" = 1 ] && echo /opt/moodroll/_internal/assets/examples/sunrise.jpg) \
    >"$WORK/app$i.log" 2>&1 & APP=$!
  until [ -n "$(main_window)" ]; do
    kill -0 $APP 2>/dev/null || { cat "$WORK/app$i.log"; echo "moodroll-app exited"; exit 1; }
    sleep 0.01
  done
  t1=$(date +%s.%N); read -r -a st < /proc/$APP/stat  # utime + stime (all threads) in clock ticks
  times+=("$(printf '%.2f' "$(echo "$t1 - $t0" | bc)")"); cpus+=("$(printf '%.2f' "$(echo "(${st[13]} + ${st[14]}) / $(getconf CLK_TCK)" | bc -l)")")
  if [ "$i" = 1 ]; then  # the model loads behind the shown window: give it a moment, then grab the window
    sleep 8; import -display :77 -window "$(main_window)" "$SHOT"; ok "screenshot $SHOT"
  fi
  kill $APP; wait $APP 2>/dev/null || true
done
echo "ok: launch-to-window, 5 starts (first cold): wall s ${times[*]}; CPU s ${cpus[*]}; load $(cut -d' ' -f1-3 /proc/loadavg)"

cd /
apt-get remove --purge -y -qq moodroll >/dev/null
left=$(ls -d /opt/moodroll /usr/bin/moodroll /usr/bin/moodroll-app /usr/share/applications/moodroll.desktop \
       /usr/share/icons/hicolor/*/apps/moodroll.* /usr/share/doc/moodroll 2>/dev/null || true)
[ -z "$left" ] && ! dpkg -s moodroll >/dev/null 2>&1 && ok "apt-get remove --purge moodroll left nothing behind" \
  || { echo "left behind: $left"; exit 1; }
