#!/bin/bash
# Obtain and verify the pristine QEMU 10.2.2 base tarball.
#
# Sources, in order:
#   1. $QEMU_TARBALL, if set;
#   2. the local download cache ($CACHE_DIR);
#   3. Debian's archive: apt-get source --download-only qemu=$DEB_VERSION,
#      with a private deb-src list for sid (the system's apt setup is not
#      touched);
#   4. ../shared/cache/ beside the checkout.
# The first one whose SHA-256 matches is copied into the cache; its path
# is printed on stdout.  Debian's own debian/patches are never applied.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
CACHE_DIR=${CACHE_DIR:-$WORK/cache}
SHARED_CACHE=${SHARED_CACHE:-$here/../shared/cache}
want=$CACHE_DIR/$BASE_TARBALL


verify() {
    [ -f "$1" ] && echo "$BASE_SHA256  $1" | sha256sum -c --status -
}

# use_copy FILE WHAT: copy a verified FILE into the cache, print its path
# there and exit
use_copy() {
    local part

    part=$(mktemp "$want.XXXXXX") || die "cannot write to $CACHE_DIR"
    cp -f "$1" "$part" && chmod 644 "$part" && mv -f "$part" "$want" ||
        { rm -f "$part"; die "cannot copy $1 into $CACHE_DIR"; }
    log "using $2"
    echo "$want"
    exit 0
}

mkdir -p "$CACHE_DIR"
tried=()

if [ -n "${QEMU_TARBALL:-}" ]; then
    tried+=("\$QEMU_TARBALL=$QEMU_TARBALL")
    verify "$QEMU_TARBALL" && use_copy "$QEMU_TARBALL" "\$QEMU_TARBALL ($QEMU_TARBALL)"
    log "\$QEMU_TARBALL does not match sha256 $BASE_SHA256, ignored"
fi

tried+=("cache $want")
if verify "$want"; then
    echo "$want"
    exit 0
fi
rm -f "$want"

if [ -z "${NO_APT_SOURCE:-}" ] && command -v apt-get >/dev/null; then
    tried+=("apt-get source qemu=$DEB_VERSION (deb-src $DEB_SOURCE_SUITE)")
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lists/partial" "$tmp/dl"
    echo "deb-src $DEB_MIRROR $DEB_SOURCE_SUITE main" > "$tmp/sources.list"
    aptopts=(-o "Dir::Etc::SourceList=$tmp/sources.list"
             -o "Dir::Etc::SourceParts=/nonexistent"
             -o "Dir::State::Lists=$tmp/lists"
             -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
    log "trying Debian's archive ($DEB_SOURCE_SUITE source index)"
    if timeout 300 apt-get -qq "${aptopts[@]}" update >"$tmp/log" 2>&1 &&
       (cd "$tmp/dl" && timeout 600 apt-get -qq "${aptopts[@]}" source \
            --download-only "qemu=$DEB_VERSION" >>"$tmp/log" 2>&1) &&
       verify "$tmp/dl/$BASE_TARBALL"; then
        mv "$tmp/dl/$BASE_TARBALL" "$want"
        log "downloaded $BASE_TARBALL from Debian's archive"
        echo "$want"
        exit 0
    fi
    log "Debian's archive did not serve qemu $DEB_VERSION" \
        "($(tail -n 1 "$tmp/log" 2>/dev/null))"
fi

tried+=("$SHARED_CACHE/$BASE_TARBALL")
verify "$SHARED_CACHE/$BASE_TARBALL" &&
    use_copy "$SHARED_CACHE/$BASE_TARBALL" "$SHARED_CACHE/$BASE_TARBALL"

{
    echo "$_me: no copy of $BASE_TARBALL with sha256 $BASE_SHA256 found."
    echo "$_me: tried:"
    for t in "${tried[@]}"; do
        echo "$_me:   - $t"
    done
    echo "$_me: supply one with QEMU_TARBALL=/path/to/$BASE_TARBALL make"
} >&2
exit 1
