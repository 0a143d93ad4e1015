#!/bin/bash
# Write work done in the assembled tree back into the repository:
#  - `quilt refresh` of the topmost applied patch (the usual quilt
#    workflow: quilt push/pop to the patch, edit, make refresh);
#  - overlay files edited in the tree since the last assembly are copied
#    back (a file edited in both places is reported, not copied);
#  - new files created in the overlay directories, and not part of any
#    patch, become overlay files.
# Then the tree is re-assembled, which changes nothing but the snapshot.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
export QUILTRC=$here/scripts/quiltrc


[ -d "$TREE" ] || { log "no tree at $TREE: run make tree"; exit 1; }
cd "$TREE"

if top=$(quilt top 2>/dev/null); then
    if out=$(quilt refresh 2>&1); then
        case "$out" in
        *"unchanged"*) ;;
        *) log "$top: $out" ;;
        esac
    else
        log "quilt refresh $top failed: $out"
        exit 1
    fi
fi

patched=$(quilt files --combine - 2>/dev/null | sort -u || true)
n=0
conflicts=
for d in $OVERLAY_DIRS; do
    [ -d "$d" ] || continue
    while IFS= read -r f; do
        # files of upstream or touched by a patch are not overlay files
        if grep -qxF "$f" <<<"$patched" ||
           { [ -f "$STAGE/$f" ] && [ ! -f "$here/$f" ]; }; then
            continue
        fi
        if [ -f "$STAGE/$f" ]; then
            # edited in the tree since the last assembly?
            cmp -s "$f" "$STAGE/$f" && continue
            if ! cmp -s "$here/$f" "$STAGE/$f"; then
                conflicts="$conflicts $f"
                continue
            fi
        fi
        mkdir -p "$here/$(dirname "$f")"
        cp "$f" "$here/$f"
        log "overlay $f"
        n=$((n + 1))
    done < <(find "$d" -type f ! -name '*~' ! -name '.*' ! -name '*.orig' \
             ! -name '*.rej')
done
if [ -n "$conflicts" ]; then
    die "edited both in the tree and in the repository, not copied:$conflicts"
fi
log "$n overlay files written back"
FORCE=1 "$here/scripts/assemble.sh"
