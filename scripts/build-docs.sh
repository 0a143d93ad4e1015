#!/bin/bash
# Build QEMU's documentation (the HTML manual and the man pages) from the
# assembled tree with Sphinx, in its own build directory, and fail on any
# Sphinx warning.
#
# The build directory is configured for the docs and as little else as
# meson allows: no emulators, tools or guest agent, no optional features.
# --enable-werror makes docs/meson.build run sphinx-build with -W (every
# warning is an error) and -Dkerneldoc_werror=1; -W stops at the first
# warning, so when the build fails the failing sphinx-build command is run
# again with --keep-going into a scratch directory to list every warning.
# The QMP reference (docs/interop/qemu-qmp-ref.rst) is rendered from the
# QAPI schema, so the schema's doc comments are checked too.
#
# Environment:
#   BUILD_DIR   the build directory (default $TREE/build-docs; a relative
#               name is taken below $TREE)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
B=${BUILD_DIR:-$TREE/build-docs}
case $B in /*) ;; *) B=$TREE/$B ;; esac
[ -f "$TREE/configure" ] || die "no assembled tree at $TREE: run make tree"

CONFIGURE_OPTS="--enable-docs --enable-werror --without-default-features
  --disable-system --disable-user --disable-tools --disable-guest-agent
  --disable-rust --disable-install-blobs --disable-download
  --python=/usr/bin/python3"
TARGETS="sphinxdocs man"

configure_tree "$TREE" "$B" "$CONFIGURE_OPTS"

# Rerun the sphinx-build command that ninja reported as failed (the line
# after FAILED: in the log) with --keep-going, writing into $B/docs-all,
# and print every warning it reports.
all_warnings() {
    local cmd arg out=$B/docs-all args=() prev=
    cmd=$(sed -n '/^FAILED:/{n;p;q}' "$B/ninja.log")
    case $cmd in *sphinx-build*) ;; *) return 1 ;; esac
    eval "set -- $cmd"
    for arg; do
        case $prev/$arg in
        -d/*) args+=("$out/doctrees") ;;
        */-Ddepfile=*|*/-Ddepfile_stamp=*) ;;
        */-W) args+=(-W --keep-going) ;;
        *) args+=("$arg") ;;
        esac
        prev=$arg
    done
    unset 'args[${#args[@]}-1]'
    rm -rf "$out"
    mkdir -p "$out"
    (cd "$B" && "${args[@]}" "$out/output") >"$out/log" 2>&1 || true
    grep -qi 'warning\|error' "$out/log" || return 1
    grep -i 'warning\|error' "$out/log" | sed "s|$TREE/||; s/^/docs: /" >&2
}

log "ninja $TARGETS (in $B)"
start=$(date +%s)
# shellcheck disable=SC2086
if ! ninja -C "$B" $TARGETS >"$B/ninja.log" 2>&1; then
    if grep -q '^Warning, treated as error:' "$B/ninja.log"; then
        log "Sphinx warned; listing every warning (paths in $TREE):"
        all_warnings ||
            grep -A1 '^Warning, treated as error:' "$B/ninja.log" |
            sed "s|$TREE/||; s/^/docs: /" >&2
    else
        grep -v '^\[' "$B/ninja.log" | tail -n 40 | cut -c1-300 >&2
    fi
    log "failed after $(( $(date +%s) - start ))s; full log in $B/ninja.log"
    exit 1
fi

# Every page of ours must be in the manual (a page missing from all
# toctrees warns, a page that is not there at all does not), and the
# QMP reference must include our schema.
manual=$B/docs/manual
missing=
for f in $(overlay_files; grown_files); do
    case $f in
    docs/*.rst)
        page=${f#docs/}
        [ -f "$manual/${page%.rst}.html" ] || missing="$missing $f" ;;
    esac
done
[ -z "$missing" ] || die "not in the HTML manual:$missing"
grep -q 'ColoCheckpointInfo' "$manual/interop/qemu-qmp-ref.html" ||
    die "qapi/colo-recorder.json is not in the QMP reference"

rm -rf "$B/docs-all"
log "done in $(( $(date +%s) - start ))s, no Sphinx warnings:" \
    "$manual/index.html and man pages in $B/docs"
