#!/bin/bash
# Build bench/hook-bench.c against the patched build: compiled with the
# flags the build used for migration/colo-recorder.c, linked with that
# object and libqemuutil.  Prints the executable's path.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$here/_work/qemu/build}
out=$B/bench-hook
obj=libsystem.a.p/migration_colo-recorder.c.o

cd "$B"
ninja "$obj" libqemuutil.a >/dev/null
cmd=$(python3 -c '
import json, sys
for e in json.load(open("compile_commands.json")):
    if e["file"].endswith("migration/colo-recorder.c"):
        print(e["command"])' | sed -e 's/ -MD -MQ [^ ]* -MF [^ ]*//' \
      -e 's/ -o [^ ]* -c [^ ]*$//')
$cmd -o "$out.o" -c "$here/bench/hook-bench.c"
# shellcheck disable=SC2046
cc -o "$out" "$out.o" "$obj" libqemuutil.a \
    $(pkg-config --libs glib-2.0 gmodule-2.0) -lm -pthread
echo "$out"
