#!/usr/bin/env bash
# Issue 10 proof: every test that uses real ports, 10 runs in a row, with stress-ng loading both cores.
cd "$(dirname "$0")/.."
mkdir -p runs
stress-ng --cpu 2 --timeout 4000s >/dev/null 2>&1 &
S=$!
for i in $(seq 1 10); do
  start=$(date +%s)
  QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_stream.py tests/test_midi_ports.py \
    tests/test_clock.py tests/test_scheduling.py tests/test_live_cli.py tests/test_reaper.py tests/test_takes.py \
    tests/test_osc_server.py tests/test_desktop_app.py tests/test_desktop_session.py > runs/stress_$i.log 2>&1
  echo "run $i rc $? $(( $(date +%s) - start ))s $(tail -1 runs/stress_$i.log)" >> runs/stress_summary.txt
done
kill $S
