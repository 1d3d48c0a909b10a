#!/usr/bin/env bash
# Copy a model folder (convert-for-device's output, or one model folder in it) to DEST, replacing
# an earlier copy there:
#
#   systemd/install-models.sh SRC_DIR DEST_DIR      -> DEST_DIR holds what SRC_DIR holds
#
# `cp -r SRC DEST` copies into DEST when DEST already exists (a reinstall would nest
# DEST/models); this copies beside it first, then swaps the new folder in.
set -euo pipefail
[ $# -eq 2 ] || { echo "install-models.sh: usage: SRC_DIR DEST_DIR" >&2; exit 2; }
src="${1%/}"
dest="${2%/}"
rm -rf "$dest.new" "$dest.old"
cp -r "$src" "$dest.new"
[ ! -e "$dest" ] || mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old"
