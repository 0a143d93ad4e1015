#!/usr/bin/python3
"""Short demo of the patched QEMU: boot the dirty-guest boot sector, which
rewrites a 64 MiB region many times a second (true rate: 64 MiB/s for any
window), and print HMP 'info dirty_rate' after a one-second measurement in
each mode this host offers: TCG, KVM, and KVM with a dirty ring."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("WORK", os.path.join(HERE, "_work"))
QEMU = os.path.join(WORK, "qemu", "build", "qemu-system-x86_64")
GUEST_H = os.path.join(HERE, "tests/qtest/migration/dirty-guest",
                       "dirty-guest-sector.h")
LAYOUT_H = os.path.join(HERE, "tests/qtest/migration/dirty-guest", "layout.h")
REGION_MIB = 64


def layout():
    defs = {}
    for m in re.finditer(r"#define (DG_\w+)\s+(0x[0-9a-fA-F]+|\d+)",
                         open(LAYOUT_H).read()):
        defs[m.group(1)] = int(m.group(2), 0)
    return defs


def boot_sector(defs):
    data = bytearray(int(b, 16) for b in
                     re.findall(r"0x([0-9a-f]{2})", open(GUEST_H).read()))
    assert len(data) == 512
    off = defs["DG_PARAMS_OFFSET"] + defs["DG_P_REGION_PAGES"]
    data[off:off + 4] = (REGION_MIB * 256).to_bytes(4, "little")
    return bytes(data)


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(500):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.02)
        self.f = self.sock.makefile("rw")
        self.recv()
        self.cmd("qmp_capabilities")

    def recv(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        return self.recv()

    def hmp(self, line):
        return self.cmd("human-monitor-command",
                        **{"command-line": line})["return"]


def guest_writes(q, defs):
    out = q.hmp("xp /2wx 0x%x" % (defs["DG_STATS"] + defs["DG_ST_WRITES"]))
    words = re.findall(r"0x([0-9a-f]{8})", out.split(":", 1)[1])
    return int(words[0], 16) | int(words[1], 16) << 32


def run(label, accel, modes, defs, disk):
    print(f"demo: --- {label}: booting the dirty guest ({accel})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "qmp")
        cpu = ["-cpu", "host"] if accel.startswith("kvm") else []
        p = subprocess.Popen([QEMU, "-accel", accel, "-machine", "pc",
                              "-m", "256", "-nodefaults", "-display", "none",
                              "-drive", f"file={disk},format=raw",
                              "-qmp", f"unix:{sock},server=on,wait=off"]
                             + cpu, stderr=subprocess.PIPE, text=True)
        try:
            q = QMP(sock)
            if accel.startswith("kvm") and \
               not q.cmd("query-kvm")["return"]["enabled"]:
                print(f"demo: {label}: not available here, skipped")
                return
            deadline = time.monotonic() + 60
            while guest_writes(q, defs) == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("guest did not start")
                time.sleep(0.05)
            for flag, mode in modes:
                print(f"demo: (qemu) calc_dirty_rate {flag}1".replace(
                    "  ", " "), flush=True)
                print("demo:   " + q.hmp(f"calc_dirty_rate {flag}1").strip()
                      .replace("\n", "\ndemo:   "))
                while q.cmd("query-dirty-rate")["return"]["status"] in (
                        "measuring", "unstarted"):
                    time.sleep(0.05)
                print("demo: (qemu) info dirty_rate")
                for line in q.hmp("info dirty_rate").strip().splitlines():
                    print("demo:   " + line)
                # the whole region is rewritten within any window
                ms = q.cmd("query-dirty-rate",
                           **{"calc-time-unit": "millisecond"}
                           )["return"]["calc-time"]
                print(f"demo:   [truth: {REGION_MIB} MiB in {ms} ms = "
                      f"{REGION_MIB * 1000 / ms:.1f} MiB/s, {mode}]",
                      flush=True)
            q.cmd("quit")
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def main():
    start = time.monotonic()
    defs = layout()
    with tempfile.TemporaryDirectory() as tmp:
        disk = os.path.join(tmp, "dirty-guest.img")
        with open(disk, "wb") as f:
            f.write(boot_sector(defs))
        run("TCG", "tcg", [("", "page-sampling"), ("-b ", "dirty-bitmap")],
            defs, disk)
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            run("KVM", "kvm",
                [("", "page-sampling"), ("-b ", "dirty-bitmap")], defs, disk)
            run("KVM with dirty ring", "kvm,dirty-ring-size=4096",
                [("-r ", "dirty-ring")], defs, disk)
        else:
            print("demo: KVM: /dev/kvm is not usable here, skipped")
    print(f"demo: done in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
