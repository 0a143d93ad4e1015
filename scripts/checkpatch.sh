#!/bin/bash
# QEMU's scripts/checkpatch.pl, from the assembled tree, on every patch in
# patches/series and every overlay file, and on the final form of the
# files that patches create (grown files).  Fails on any error or warning.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
cp=$TREE/scripts/checkpatch.pl
[ -f "$cp" ] || die "no assembled tree at $TREE: run make tree"

bad=0
checked=0
run() {
    local what=$1 out
    shift
    checked=$((checked + 1))
    if ! out=$(cd "$TREE" && perl "$cp" --terse --no-summary "$@" 2>&1) ||
       grep -q 'WARNING\|ERROR' <<<"$out"; then
        echo "$out" | sed "s|^|checkpatch: $what: |"
        bad=$((bad + 1))
    fi
}

patches=$(series_patches)
for p in $patches; do
    run "$p" "$here/patches/$p"
done
for f in $( (overlay_files; grown_files) | LC_ALL=C sort); do
    case "$f" in
    *.c|*.h|*.S|*.json|*.rst|*.py)
        # relative to the tree, so path-based rules (tests/...) apply
        cmp -s "$here/$f" "$TREE/$f" || die "$f: tree is stale, run make tree"
        run "$f" -f "$f" ;;
    esac
done
if [ "$bad" -gt 0 ]; then
    die "$bad of $checked files have checkpatch errors or warnings"
fi
log "$checked patches and overlay files clean"
