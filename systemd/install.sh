#!/usr/bin/env bash
# Install craft-edge as a systemd service on a Raspberry Pi (64-bit Raspberry Pi OS Bookworm).
#
#   sudo systemd/install.sh [--models DIR] [--dry-run]
#
# --models DIR   convert-for-device's output folder (e.g. models), copied to
#                /var/lib/craft-edge/models, where config.yaml's model.dir points by default.
# --dry-run      print the commands instead of running them.
#
# What it does: installs python3-venv and python3-picamera2 from apt; creates the system user
# craft-edge (groups video, plugdev, apex); makes /opt/craft-edge/venv with
# --system-site-packages (so apt's picamera2/libcamera are visible) and pip-installs this
# repository's device extra; installs /etc/craft-edge/config.yaml (if absent), an empty root-only
# /etc/craft-edge/mqtt-password (if absent), the udev rule for the Coral and the unit; enables
# and starts the service. libedgetpu comes from Coral's apt repository (see README).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
models=""
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

run() {
  if [ "$dry_run" = 1 ]; then printf '%s\n' "$*"; else "$@"; fi
}

if [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo)" >&2
  exit 1
fi
if [ -n "$models" ] && [ ! -f "$models/manifest.json" ]; then
  echo "install.sh: $models has no manifest.json (give a folder written by convert-for-device)" >&2
  exit 2
fi

run apt-get install -y python3-venv python3-picamera2
getent group apex >/dev/null || run groupadd --system apex
getent group plugdev >/dev/null || run groupadd --system plugdev
id craft-edge >/dev/null 2>&1 || run useradd --system --home-dir /var/lib/craft-edge --shell /usr/sbin/nologin \
  --groups video,plugdev,apex craft-edge
run python3 -m venv --system-site-packages /opt/craft-edge/venv
run /opt/craft-edge/venv/bin/pip install --upgrade pip
# setuptools builds in $repo/build and never deletes what an older version left there
run rm -rf "$repo/build"
run /opt/craft-edge/venv/bin/pip install "$repo[device]"
run install -d -m 0755 /etc/craft-edge
[ -f /etc/craft-edge/config.yaml ] || run install -m 0644 "$repo/config.yaml" /etc/craft-edge/config.yaml
[ -f /etc/craft-edge/mqtt-password ] || run install -m 0600 /dev/null /etc/craft-edge/mqtt-password
if [ -n "$models" ]; then
  run install -d -o craft-edge -g craft-edge -m 0750 /var/lib/craft-edge
  run "$repo/systemd/install-models.sh" "$models" /var/lib/craft-edge/models
  run chown -R craft-edge:craft-edge /var/lib/craft-edge/models
fi
run install -m 0644 "$repo/systemd/99-craft-edge-coral.rules" /etc/udev/rules.d/99-craft-edge-coral.rules
run udevadm control --reload-rules
run udevadm trigger
run install -m 0644 "$repo/systemd/craft-edge.service" /etc/systemd/system/craft-edge.service
run systemctl daemon-reload
run systemctl enable --now craft-edge.service
echo "installed; follow it with: journalctl -u craft-edge -f"
