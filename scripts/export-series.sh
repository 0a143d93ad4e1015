#!/bin/bash
# Turn patches/ plus the overlay files into a git format-patch series on the
# pristine base, in $WORK/series/.  Each patch becomes one commit: its diff,
# plus the overlay files its header names on "Overlay:" lines, with the
# header's From, Subject and message (DEP-3 fields dropped).
#
#   --verify  also apply the exported series with git am to a fresh copy
#             of the base and check that the result is exactly the
#             assembled tree.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
OUT=$WORK/series
GIT=$WORK/series-git
verify=
[ "${1:-}" = --verify ] && verify=1


tarball=$("$here/scripts/fetch-base.sh")
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
export GIT_COMMITTER_NAME="QEMU series export" GIT_COMMITTER_EMAIL="series@localhost"
gitq() { git -c init.defaultBranch=base -c user.name=export -c gc.auto=0 \
             -c user.email=series@localhost -c core.autocrlf=false "$@"; }

base_repo() {
    rm -rf "$1"
    mkdir -p "$1"
    tar -C "$1" --strip-components=1 -xf "$tarball"
    (cd "$1" && gitq init -q && gitq add -A -f &&
     gitq commit -q -m "QEMU $BASE_VERSION ($BASE_TARBALL)" && gitq tag pristine)
}

base_repo "$GIT"

patches=$(series_patches)
claimed=$(mktemp)
trap 'rm -f "$claimed"' EXIT
n=0
for p in $patches; do
    f=$here/patches/$p
    from=$(sed -n '1,/^---$/{/^From: /{s///p;q}}' "$f")
    subject=$(sed -n '1,/^---$/{/^Subject: /{s/^Subject: \(\[PATCH[^]]*\] \)\{0,1\}//p;q}}' "$f")
    [ -n "$from" ] && [ -n "$subject" ] || die "$p: header needs From: and Subject:"
    grep -q '^Signed-off-by: ' "$f" || die "$p: no Signed-off-by"
    # The message: header lines after Subject up to ---, without DEP-3 fields
    body=$(sed -n '/^Subject: /,/^---$/p' "$f" | sed '1d;$d' |
           { grep -v '^\(Forwarded\|Overlay\|Description\|Author\|Origin\|Bug\|Last-Update\|Applied-Upstream\):' || [ $? -eq 1 ]; } |
           cat -s | sed '1{/^$/d}')
    (cd "$GIT" && git apply --whitespace=nowarn -p1 "$f") ||
        die "$p does not apply with git apply"
    for o in $(sed -n '1,/^---$/{s/^Overlay: //p}' "$f"); do
        [ -f "$here/$o" ] || die "$p names overlay $o, which does not exist"
        mkdir -p "$GIT/$(dirname "$o")"
        cp "$here/$o" "$GIT/$o"
        echo "$o" >>"$claimed"
    done
    (cd "$GIT" && gitq add -A -f &&
     printf '%s\n\n%s\n' "$subject" "$body" |
        gitq commit -q --author="$from" -F -) || die "$p: commit failed"
    n=$((n + 1))
done

# Every overlay file must belong to a commit of the series
unclaimed=$(overlay_files | LC_ALL=C comm -23 - <(LC_ALL=C sort -u "$claimed"))
[ -z "$unclaimed" ] || die "overlay files named by no patch's Overlay: line: $(echo $unclaimed)"

# 0000-cover-letter.patch: git's shortlog and diffstat, with the subject
# and story of patches/cover-letter.txt (its first line is the subject)
rm -rf "$OUT"
(cd "$GIT" && gitq format-patch -q --no-signature --zero-commit \
     --cover-letter -o "$OUT" pristine..HEAD)
python3 - "$here/patches/cover-letter.txt" "$OUT/0000-cover-letter.patch" \
        "$from" <<'PY' ||
import re
import sys
text = open(sys.argv[1]).read().strip('\n').split('\n', 1)
subject, blurb = text[0], text[1].strip('\n') if len(text) > 1 else ''
cover = open(sys.argv[2]).read()
assert '*** SUBJECT HERE ***' in cover and '*** BLURB HERE ***' in cover
cover = cover.replace('*** SUBJECT HERE ***', subject, 1)
cover = cover.replace('*** BLURB HERE ***', blurb, 1)
cover = re.sub(r'^From: .*$', lambda m: 'From: ' + sys.argv[3], cover,
               count=1, flags=re.M)
open(sys.argv[2], 'w').write(cover)
PY
    die "cannot write the cover letter"
log "$n patches and a cover letter in $OUT"

if [ -n "$verify" ]; then
    stage=$WORK/stage
    [ -d "$stage" ] || die "no assembled tree: run make tree first"
    check=$WORK/series-check
    base_repo "$check"
    (cd "$check" && gitq am -q --keep-cr $(ls "$OUT"/*.patch |
                                             grep -v /0000-cover-letter)) \
        >/dev/null ||
        die "git am of the exported series failed"
    if ! diff -r -q -x .git -x .pc -x patches "$check" "$stage" >&2; then
        die "the series applied with git am differs from the assembled tree"
    fi
    log "git am of $n patches reproduces the assembled tree"
    rm -rf "$check"
fi
