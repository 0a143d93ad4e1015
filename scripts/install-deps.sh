#!/bin/bash
# Install what building, testing, benchmarking (python3-matplotlib for
# the plots of make bench) and documenting (python3-sphinx and its Read the
# Docs theme for make docs) the patched QEMU needs, from Debian.
#
# Idempotent: checks first and is silent when everything is present.
# Runs as root, or through sudo otherwise.  Debian 12 (bookworm) needs
# bookworm-backports for meson >= 1.5, which QEMU 10.2 requires.
set -euo pipefail

PKGS="build-essential pkg-config ninja-build python3 python3-venv
      libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev libslirp-dev
      flex bison device-tree-compiler quilt xz-utils git rsync bzip2
      seabios ipxe-qemu qemu-system-data dpkg-dev python3-matplotlib
      python3-sphinx python3-sphinx-rtd-theme"
BACKPORT_PKGS="meson python3-pycotap"
MESON_MIN=1.5.0

SUDO=
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive

missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done

meson_ok() {
    command -v meson >/dev/null 2>&1 &&
        dpkg --compare-versions "$(meson --version)" ge "$MESON_MIN" &&
        /usr/bin/python3 -c 'import pycotap' 2>/dev/null
}

if [ -z "$missing" ] && meson_ok; then
    exit 0
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
updated=
apt_update() {
    [ -n "$updated" ] && return 0
    echo "deps: apt-get update"
    $SUDO apt-get update -qq
    updated=1
}

if ! meson_ok; then
    if [ "$codename" = bookworm ]; then
        list=/etc/apt/sources.list.d/bookworm-backports.list
        if ! grep -rqs "bookworm-backports" /etc/apt/sources.list \
                /etc/apt/sources.list.d/; then
            echo "deps: adding bookworm-backports to $list"
            echo "deb http://deb.debian.org/debian bookworm-backports main" |
                $SUDO tee "$list" >/dev/null
        fi
        apt_update
        echo "deps: installing $BACKPORT_PKGS from bookworm-backports" \
             "(meson >= $MESON_MIN)"
        # shellcheck disable=SC2086
        $SUDO apt-get install -y -qq -t bookworm-backports \
            $BACKPORT_PKGS >/dev/null
    else
        apt_update
        # shellcheck disable=SC2086
        $SUDO apt-get install -y -qq $BACKPORT_PKGS >/dev/null
    fi
    if ! meson_ok; then
        echo "deps: meson >= $MESON_MIN with python3-pycotap is required;" \
             "found: $(meson --version 2>/dev/null || echo none)" >&2
        exit 1
    fi
fi

if [ -n "$missing" ]; then
    apt_update
    echo "deps: installing:$missing"
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
echo "deps: all build and run-time packages present"
