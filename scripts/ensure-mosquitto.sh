#!/usr/bin/env bash
# Install Debian's mosquitto if it is not there (the tests and the demo start their own brokers).
set -euo pipefail
if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi
echo "installing mosquitto (Debian package)"
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd=sudo
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq mosquitto >/dev/null
