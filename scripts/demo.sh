#!/usr/bin/env bash
# The whole demo on built-in defaults (called by `make demo` after setup):
# convert the real CRAFT weights (or reuse models/), start a local mosquitto if none is listening,
# run the daemon on the sample frames the project ships, and show what a subscriber receives.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
port="${CRAFT_EDGE_DEMO_PORT:-1883}"
frames="${CRAFT_EDGE_DEMO_FRAMES:-18}"
models=models/480x640

if [ ! -f "$models/manifest.json" ]; then
  echo "== converting craft_mlt_25k.pth into every variant (about 4 minutes on 2 cores)"
  "$bin/convert-for-device" --out models --force
else
  echo "== reusing $models (delete models/ to convert again)"
fi

listening() { "$bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; }
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; }
trap cleanup EXIT
if listening; then
  echo "== using the MQTT broker already listening on localhost:$port"
else
  scripts/ensure-mosquitto.sh
  conf="$(mktemp -d)/mosquitto.conf"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > "$conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$conf" >/dev/null 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do listening && break; sleep 0.1; done
  echo "== started mosquitto on localhost:$port"
fi

echo "== a subscriber (craft-edge watch) prints one line per frame:"
"$bin/craft-edge" watch --broker "localhost:$port" --device-id demo --count "$frames" &
watch_pid=$!
"$bin/craft-edge" watch --broker "localhost:$port" --device-id demo --count 1 --json > .demo-message.json 2>/dev/null &
json_pid=$!
sleep 1
STATE_DIRECTORY="$PWD/.state" "$bin/craft-edge" run --model "$models" --source edge/samples --loop \
  --broker "localhost:$port" --device-id demo --max-frames "$frames" 2> .demo-daemon.log \
  || { cat .demo-daemon.log; exit 1; }
wait "$watch_pid" "$json_pid"
echo "== the first message in full (schema: edge/schema/detections-v1.schema.json):"
cat .demo-message.json
echo "== daemon log: .demo-daemon.log; conversion report: models/report.md"
