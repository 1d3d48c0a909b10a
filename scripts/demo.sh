#!/usr/bin/env bash
# The whole demo on built-in defaults (called by `make demo` after setup):
# convert the real CRAFT weights (or reuse models/), start a local mosquitto if none is listening,
# run the daemon on the sample frames the project ships, and show what a subscriber receives.
# Environment (all optional): CRAFT_EDGE_DEMO_PORT (1883), CRAFT_EDGE_DEMO_FRAMES (18),
# CRAFT_EDGE_DEMO_MODELS (models: the converter's output folder, or one model folder in it),
# CRAFT_EDGE_DEMO_DIR (.demo: state, logs, the message).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
port="${CRAFT_EDGE_DEMO_PORT:-1883}"
frames="${CRAFT_EDGE_DEMO_FRAMES:-18}"
models="${CRAFT_EDGE_DEMO_MODELS:-models}"
work="${CRAFT_EDGE_DEMO_DIR:-.demo}"
mkdir -p "$work"

if [ ! -f "$models/manifest.json" ]; then
  echo "== converting craft_mlt_25k.pth into every variant of the coarse (384x640) and the tile (288x288) model" \
    "(about 5 minutes on 2 cores)"
  "$bin/convert-for-device" --out "$models" --force
else
  echo "== reusing $models (delete it to convert again)"
fi

listening() { "$bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; }
broker_pid="" watch_pid="" json_pid=""
# Whatever way the demo ends, nothing it started stays behind (a subscriber left running would
# keep a caller that reads our output, such as CI, waiting forever).
cleanup() { for pid in $watch_pid $json_pid $broker_pid; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
if listening; then
  # Whatever listens there must answer as an MQTT broker: one line and exit 1 if it does not.
  "$bin/craft-edge" probe --broker "localhost:$port" >/dev/null
  echo "== using the MQTT broker already listening on localhost:$port"
else
  scripts/ensure-packages.sh
  conf="$(mktemp -d)/mosquitto.conf"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > "$conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$conf" >/dev/null 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do listening && break; sleep 0.1; done
  echo "== started mosquitto on localhost:$port"
fi

echo "== a subscriber (craft-edge watch) prints one line per frame:"
"$bin/craft-edge" watch --broker "localhost:$port" --device-id demo --count "$frames" 2> "$work/watch.log" &
watch_pid=$!
"$bin/craft-edge" watch --broker "localhost:$port" --device-id demo --count 1 --json > "$work/message.json" \
  2> "$work/watch-json.log" &
json_pid=$!
# Messages sent before a subscriber has subscribed never reach it: start the daemon only then.
for _ in $(seq 150); do
  grep -q watching "$work/watch.log" && grep -q watching "$work/watch-json.log" && break
  kill -0 "$watch_pid" "$json_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q watching "$work/watch.log" && grep -q watching "$work/watch-json.log" \
  || { cat "$work/watch.log" "$work/watch-json.log" >&2; echo "demo: the subscribers did not start" >&2; exit 1; }
cat "$work/watch.log"
# Its own config: an installed /etc/craft-edge/config.yaml must not change the demo.
printf '# the demo runs on built-in defaults and its command-line options, with reading on\nrecognition: {enabled: true}\n' \
  > "$work/config.yaml"
STATE_DIRECTORY="$(cd "$work" && pwd)/state" timeout 600 "$bin/craft-edge" run --config "$work/config.yaml" \
  --model "$models" --source edge/samples --loop --broker "localhost:$port" --device-id demo \
  --max-frames "$frames" 2> "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }
# The daemon exits once the broker has acknowledged every message; the subscribers follow within seconds.
for _ in $(seq 300); do
  kill -0 "$watch_pid" 2>/dev/null || kill -0 "$json_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$watch_pid" 2>/dev/null || kill -0 "$json_pid" 2>/dev/null; then
  kill "$watch_pid" "$json_pid" 2>/dev/null || true
  echo "demo: the subscriber did not receive all $frames messages within 30 s" >&2
  exit 1
fi
wait "$watch_pid" "$json_pid"
echo "== the first message in full (schema: edge/messaging/schema/detections-v3.schema.json):"
cat "$work/message.json"
echo "== daemon log: $work/daemon.log; conversion report: $models/report.md"
