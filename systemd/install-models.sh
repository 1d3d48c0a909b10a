#!/usr/bin/env bash
# Copy a model folder into a parent folder, replacing an earlier copy of the same name:
#
#   systemd/install-models.sh SRC_DIR DEST_PARENT      -> DEST_PARENT/$(basename SRC_DIR)
#
# `cp -r SRC DEST` copies into DEST when DEST already exists (a reinstall would nest
# DEST/480x640/480x640); this copies beside it first, then swaps the new folder in.
set -euo pipefail
[ $# -eq 2 ] || { echo "install-models.sh: usage: SRC_DIR DEST_PARENT" >&2; exit 2; }
src="${1%/}"
dest="$2/$(basename "$src")"
rm -rf "$dest.new" "$dest.old"
cp -r "$src" "$dest.new"
[ ! -e "$dest" ] || mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old"
