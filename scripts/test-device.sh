#!/usr/bin/env bash
# The device code's tests with what a Raspberry Pi gets from `pip install .[device]`: a second venv
# (.venv-device) holding only the device and test extras at the newest versions their ranges allow
# (numpy 2.x, opencv 4.1x, ai-edge-litert 2.x), no converter stack. Every test not marked
# `converter` runs there, on models converted once by the converter venv:
#
#   scripts/test-device.sh [MODELS_DIR] [pytest args...]
#
# MODELS_DIR (default .test-models) is the folder the main test run converts into when
# CRAFT_EDGE_TEST_MODELS points at it (see tests/conftest.py); it must already hold the models.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
models="${1:-.test-models}"
[ $# -gt 0 ] && shift
python="${PYTHON:-python3}"
venv="${DEVICE_VENV:-.venv-device}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
fi
# Non-editable and upgraded each time: the newest versions the ranges allow, as on a fresh Pi.
"$venv/bin/pip" install --quiet --upgrade '.[device,test]'
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
print("device venv:", ", ".join(f"{p} {version(p)}" for p in
      ("numpy", "opencv-python-headless", "ai-edge-litert", "paho-mqtt", "PyYAML")))
PY
models="$(cd "$models" 2>/dev/null && pwd)" || { echo "test-device.sh: no converted models in ${1:-.test-models}" \
  "(run the main test suite with CRAFT_EDGE_TEST_MODELS=${1:-.test-models} first)" >&2; exit 2; }
# The tests import edge/ from this checkout (as the main run does); the venv supplies the dependencies.
CRAFT_EDGE_TEST_MODELS="$models" "$venv/bin/python" -m pytest -q -m "not converter" "$@"
