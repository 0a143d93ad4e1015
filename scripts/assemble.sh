#!/bin/bash
# Assemble the patched QEMU tree: pristine base + overlay files + patches.
#
# The tree is first built in a staging directory from scratch, then synced
# into $TREE by content (rsync --checksum), so files whose content did not
# change keep their mtime and ninja rebuilds only what really changed.
# Files created by a patch and changed by later ones ("grown files",
# lib.sh) come from the series; their root copies are checked against it.
# The staging copy is kept as the snapshot of the last assembly: before
# syncing, edits made in $TREE that were never written back with
# `make refresh` are detected and assembly stops instead of losing them.
# Build directories at the top of $TREE (build/, build-*/ such as
# build-san/ of make check-sanitizers) are left alone.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
tarball=$("$here/scripts/fetch-base.sh")


if [ -d "$TREE" ] && [ -d "$STAGE" ] && [ -z "${FORCE:-}" ]; then
    # a dry run from the tree to the last assembly lists what was
    # edited, and ("deleting ...") what was removed, since
    changes=$(rsync -rlcn --delete --out-format='%n' --exclude=/build/ \
              --exclude='/build-*/' --exclude=/.pc/ --exclude=/patches \
              "$TREE/" "$STAGE/") || die "cannot compare $TREE with $STAGE"
    edited=$(echo "$changes" | grep -v '/$' || [ $? -eq 1 ])
    if [ -n "$edited" ]; then
        log "files in $TREE differ from the last assembly:"
        sed -n '1,20s/^/assemble:   /p' <<<"$edited" >&2
        log "write edits back with 'make refresh' (a file deleted in the" \
            "tree: remove it from the repository or with a patch), or" \
            "discard them with 'make FORCE=1'"
        exit 1
    fi
fi

rm -rf "$STAGE.new"
mkdir -p "$STAGE.new"
tar -C "$STAGE.new" --strip-components=1 -xf "$tarball"

n=0
for f in $(overlay_files); do
    if [ -e "$STAGE.new/$f" ]; then
        log "overlay file $f exists upstream: change it with a patch"
        exit 1
    fi
    mkdir -p "$STAGE.new/$(dirname "$f")"
    cp "$here/$f" "$STAGE.new/$f"
    n=$((n + 1))
done

ln -s "$here/patches" "$STAGE.new/patches"
np=$(series_patches | wc -l)
if [ "$np" -gt 0 ]; then
    (cd "$STAGE.new" && QUILTRC=$here/scripts/quiltrc quilt push -a -q \
        >"$WORK/quilt.log" 2>&1) || {
        cat "$WORK/quilt.log" >&2
        log "patches/series does not apply to the base"
        exit 1
    }
fi

# The root copy of a grown file follows the series: refreshed here when
# it still is what the last assembly built, an error when it was edited
# (edit the file in the tree, in the patch that should change it)
for f in $(grown_files); do
    [ -f "$STAGE.new/$f" ] || die "$f: created by a patch, gone at the end"
    if sed -n 's/^Overlay: //p' "$here"/patches/*.patch | tr ' ' '\n' |
       grep -qxF "$f"; then
        die "$f is created by a patch and named on an Overlay: line"
    fi
    cmp -s "$STAGE.new/$f" "$here/$f" && continue
    if [ -f "$here/$f" ] && [ ! -f "$STAGE/$f" ]; then
        die "$f at the repository root is not what the series builds" \
            "(committed without its patch?): the patches are its source;" \
            "remove the root copy and run make tree to rewrite it"
    fi
    if [ -f "$here/$f" ] && ! cmp -s "$here/$f" "$STAGE/$f"; then
        die "$f was edited at the repository root: it grows in" \
            "patches, edit it in the tree (quilt) and make refresh," \
            "or git checkout the root copy"
    fi
    mkdir -p "$here/$(dirname "$f")"
    cp "$STAGE.new/$f" "$here/$f"
    log "grown file $f: copy at the repository root updated"
done

rm -rf "$STAGE"
mv "$STAGE.new" "$STAGE"
log "base $BASE_VERSION + $n overlay files + $np patches" \
    "($(grown_files | wc -l) files grown by patches)"

mkdir -p "$TREE"
changed=$(rsync -rlpc --delete --out-format='%n' --exclude=/build/ \
          --exclude='/build-*/' "$STAGE/" "$TREE/" |
          { grep -v '/$' || true; } | wc -l)
log "$TREE: $changed files changed"
