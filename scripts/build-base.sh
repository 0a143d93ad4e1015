#!/bin/bash
# Build unpatched QEMU 10.2.2 next to the patched tree, for `make bench`:
# the same tarball and the same configure options (scripts/build.sh), in
# $WORK/base.  Only the 0xx patches are applied: they make the Debian +ds
# tarball build at all and change nothing at run time.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
tarball=$("$here/scripts/fetch-base.sh")
BASE_TREE=$WORK/base

all=$(series_patches)
fixups=$(echo "$all" | grep '^0' || [ $? -eq 1 ])
stamp="$(sha256sum "$tarball" | cut -c1-16) $(cd "$here/patches" &&
         cat $fixups | sha256sum | cut -c1-16)"
if [ "$(cat "$BASE_TREE/.bench-base" 2>/dev/null)" != "$stamp" ]; then
    log "unpacking the unpatched base into $BASE_TREE"
    rm -rf "$BASE_TREE"
    mkdir -p "$BASE_TREE"
    tar -C "$BASE_TREE" --strip-components=1 -xf "$tarball"
    for p in $fixups; do
        patch -d "$BASE_TREE" -p1 -s -F0 <"$here/patches/$p"
    done
    echo "$stamp" >"$BASE_TREE/.bench-base"
fi
TREE=$BASE_TREE exec "$here/scripts/build.sh" qemu-system-x86_64
