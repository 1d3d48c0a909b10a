#!/usr/bin/env bash
# Install the Debian packages the tests and the demo need if they are not there: mosquitto (they
# start their own brokers) and the DejaVu fonts (the project's rendered words are drawn with them).
set -euo pipefail
missing=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf ] || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (Debian packages)"
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd=sudo
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
