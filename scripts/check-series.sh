#!/bin/bash
# make check-series: every patch of the exported series builds on the ones
# before it, and passes the qtests that exist at its step.
#
#   --build-only  build every step, run no test (the quick form, for CI)
#
# The series that make series writes ($WORK/series) is applied one patch at
# a time with git am on the pristine base in $WORK/series-steps, which is
# built after each patch in one build directory, incrementally, with the
# same configure options as make build.  At a step whose tree registers a
# qtest of ours (tests/qtest/meson.build), that qtest is built and run with
# scripts/check.py; logs go to $WORK/check-series/<step>/.  Stops at the
# first step that does not apply, build or pass.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"
build_only=
[ "${1:-}" = --build-only ] && build_only=1

QTESTS="dirtyrate-test colo-recorder-test"
STEPS=$WORK/series-steps
LOGS=$WORK/check-series

"$here/scripts/export-series.sh" >/dev/null
tarball=$("$here/scripts/fetch-base.sh")
gitq() { git -c init.defaultBranch=base -c user.name=check-series -c gc.auto=0 \
             -c user.email=series@localhost -c core.autocrlf=false "$@"; }

# The base, kept between runs: only the tree is reset, so that the build
# directory (ignored by git) stays and every step builds incrementally
if [ ! -d "$STEPS/.git" ]; then
    rm -rf "$STEPS"
    mkdir -p "$STEPS"
    tar -C "$STEPS" --strip-components=1 -xf "$tarball"
    (cd "$STEPS" && gitq init -q && echo /build/ >.git/info/exclude &&
     gitq add -A -f && gitq commit -q -m "QEMU $BASE_VERSION" &&
     gitq tag pristine)
fi
(cd "$STEPS" || exit 1
 gitq am --abort >/dev/null 2>&1 || true
 gitq reset -q --hard pristine && gitq clean -q -f -d -x -e /build/)

rm -rf "$LOGS"
mkdir -p "$LOGS"
start=$(date +%s)
n=0
for p in $(ls "$WORK/series"/*.patch | grep -v /0000-cover-letter); do
    n=$((n + 1))
    name=$(basename "$p" .patch)
    (cd "$STEPS" && gitq am -q --keep-cr "$p") >"$LOGS/$name.am" 2>&1 || {
        cat "$LOGS/$name.am" >&2
        die "step $n: $name does not apply"
    }
    targets=qemu-system-x86_64
    tests=
    for t in $QTESTS; do
        if grep -q "'$t'" "$STEPS/tests/qtest/meson.build"; then
            targets="$targets tests/qtest/$t"
            tests="$tests $t"
        fi
    done
    t0=$(date +%s)
    TREE=$STEPS "$here/scripts/build.sh" $targets 2>"$LOGS/build.log" ||
        { cat "$LOGS/build.log" >&2; die "step $n: $name does not build"; }
    log "step $n: $name: built in $(( $(date +%s) - t0 )) s"
    if [ -n "$tests" ] && [ -z "$build_only" ]; then
        mkdir -p "$LOGS/$n"
        if ! TREE=$STEPS CHECK_LOGDIR=$LOGS/$n "$here/scripts/check.py" \
                --qtests-only $tests >"$LOGS/$n/check.log" 2>&1; then
            grep '^check: failed' "$LOGS/$n/check.log" >&2 || true
            die "step $n: $name fails its qtests (logs in $LOGS/$n)"
        fi
        log "step $n: $name: $(tail -n 1 "$LOGS/$n/check.log")"
    fi
done
log "$n steps apply and build$([ -n "$build_only" ] || echo ", and pass their qtests"), in $(( $(date +%s) - start )) s"
