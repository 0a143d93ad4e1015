#!/bin/bash
# Configure (once, or when the options change) and build the assembled tree
# incrementally with ninja.  Arguments are extra ninja targets.
#
# Environment:
#   BUILD_DIR   the build directory (default $TREE/build; a relative name
#               is taken below $TREE, e.g. BUILD_DIR=build-san)
#   SANITIZERS  space-separated sanitizers to build with: asan, ubsan
#               (configure --enable-asan / --enable-ubsan); part of the
#               configure id, so changing them reconfigures
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
B=${BUILD_DIR:-$TREE/build}
case $B in /*) ;; *) B=$TREE/$B ;; esac

SANITIZER_OPTS=
for s in ${SANITIZERS:-}; do
    case $s in
    asan|ubsan) SANITIZER_OPTS="$SANITIZER_OPTS --enable-$s" ;;
    *) die "unknown sanitizer '$s' in SANITIZERS (asan, ubsan)" ;;
    esac
done

# Firmware comes from Debian's seabios, ipxe-qemu and qemu-system-data, as
# in Debian's own qemu package, so the +ds tarball needs no blobs.
FIRMWARE_DIRS="/usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu"
CONFIGURE_OPTS="--target-list=x86_64-softmmu --enable-kvm --enable-tcg
  --enable-replication --python=/usr/bin/python3 --disable-docs
  --disable-tools --disable-user --disable-rust --disable-install-blobs
  --disable-download --enable-fdt=system --enable-werror
  --firmwarepath=$(echo $FIRMWARE_DIRS | tr ' ' :)
  ${EXTRA_CONFIGURE_OPTS:-}$SANITIZER_OPTS"


configure_tree "$TREE" "$B" "$CONFIGURE_OPTS"

# From the build directory QEMU looks for data files below qemu-bundle/
# (see get_relocated_path()): point the firmware path there at the system
# firmware so the build's binary boots without -L.
for d in $FIRMWARE_DIRS; do
    mkdir -p "$B/qemu-bundle$(dirname "$d")"
    ln -sfn "$d" "$B/qemu-bundle$d"
done

log "ninja ${*:-qemu-system-x86_64}"
start=$(date +%s)
if ! ninja -C "$B" ${*:-qemu-system-x86_64} >"$B/ninja.log" 2>&1; then
    grep -v '^FAILED:' "$B/ninja.log" | grep -B2 -A12 -m3 'error' |
        cut -c1-300 >&2 || tail -n 40 "$B/ninja.log" | cut -c1-300 >&2
    log "ninja failed; full log in $B/ninja.log"
    exit 1
fi
log "done in $(( $(date +%s) - start ))s ($(grep -c '^\[' "$B/ninja.log" || true) steps)"
