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

# New files that a patch creates (a diff from /dev/null) and later
# patches change, sorted: the series is their source.  The copy at the
# repository root is their final form, for reading; assemble keeps it in
# step with what the series builds.
grown_files() {
    local p d
    for p in $(series_patches); do
        sed -n '/^--- \/dev\/null$/{n;s|^+++ b/||p}' "$here/patches/$p"
    done | LC_ALL=C sort -u | while IFS= read -r p; do
        # only ours: a new file of QEMU's elsewhere has no root copy
        for d in $OVERLAY_DIRS; do
            case "$p" in "$d"/*) echo "$p"; break ;; esac
        done
    done
}

# Our new files in QEMU's layout that are copied into the tree whole,
# relative to the repo root, sorted: every file under OVERLAY_DIRS that
# is not a grown file
overlay_files() {
    (cd "$here" && for d in $OVERLAY_DIRS; do
        [ -d "$d" ] || continue
        find "$d" -type f ! -name '*~' ! -name '.*' \
            ! -name '*.orig' ! -name '*.rej'
    done | LC_ALL=C sort | LC_ALL=C comm -23 - <(grown_files))
}

# The patch names in patches/series, in order
series_patches() {
    # grep exits 1 when nothing is selected, 2 when it cannot read
    grep -v '^\s*\(#\|$\)' "$here/patches/series" || [ $? -eq 1 ]
}

# configure_tree TREE BUILD OPTS: configure TREE in BUILD with OPTS (one
# string, split on whitespace), unless BUILD was last configured with the
# same options; a failed configure prints its log's tail and exits.
configure_tree() {
    local tree=$1 b=$2 opts=$3 id
    id=$(echo $opts | sha256sum | cut -c1-16)
    if [ -f "$b/build.ninja" ] &&
       [ "$(cat "$b/.configure-id" 2>/dev/null)" = "$id" ]; then
        return 0
    fi
    log "configuring $tree in $b ($(echo $opts))"
    rm -rf "$b"
    mkdir -p "$b"
    # shellcheck disable=SC2086
    (cd "$b" && "$tree/configure" $opts >configure.log 2>&1) || {
        tail -n 30 "$b/configure.log" >&2
        die "configure failed; full log in $b/configure.log"
    }
    echo "$id" >"$b/.configure-id"
}
