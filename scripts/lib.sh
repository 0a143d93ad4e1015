# Shared by the scripts: configuration and helpers.  Source it.
# shellcheck shell=bash

here=${here:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
. "$here/scripts/base.conf"
WORK=${WORK:-$here/_work}
TREE=${TREE:-$WORK/qemu}
STAGE=$WORK/stage

_me=$(basename "$0" .sh)
log() { echo "$_me: $*" >&2; }
die() { log "$*"; exit 1; }

# Our new files in QEMU's layout, relative to the repo root, sorted
overlay_files() {
    (cd "$here" && for d in $OVERLAY_DIRS; do
        [ -d "$d" ] || continue
        find "$d" -type f ! -name '*~' ! -name '.*'
    done | LC_ALL=C sort)
}

# The patch names in patches/series, in order
series_patches() {
    grep -v '^\s*\(#\|$\)' "$here/patches/series" || true
}
