#!/bin/bash
# Write work done in the assembled tree back into the repository:
#  - `quilt refresh` of the topmost applied patch (the usual quilt
#    workflow: quilt push/pop to the patch, edit, make refresh);
#  - overlay files edited in the tree are copied back;
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
for d in $OVERLAY_DIRS; do
    [ -d "$d" ] || continue
    while IFS= read -r f; do
        if [ -f "$here/$f" ]; then
            cmp -s "$f" "$here/$f" && continue
        elif [ -e "$STAGE/$f" ] || grep -qxF "$f" <<<"$patched"; then
            continue
        fi
        mkdir -p "$here/$(dirname "$f")"
        cp "$f" "$here/$f"
        log "overlay $f"
        n=$((n + 1))
    done < <(find "$d" -type f ! -name '*~' ! -name '.*' ! -name '*.orig' \
             ! -name '*.rej')
done
log "$n overlay files written back"
FORCE=1 "$here/scripts/assemble.sh"
