"""Drive the dirty-guest test guest: its layout, disk, QEMU, QMP, qtest.

The guest is tests/qtest/migration/dirty-guest: a boot sector that writes
pages of a region and keeps its own count of page writes at DG_STATS,
which the host reads through the qtest protocol, so the truth does not
depend on guest timing.  layout.h is the one description of its memory;
dirty-guest-sector.h holds the sector's bytes.  Used by scripts/demo.py
and bench/run.py; any QEMU binary (patched or not) runs it the same way.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_DIR = os.path.normpath(os.path.join(HERE, '..', 'tests', 'qtest',
                                          'migration', 'dirty-guest'))
PAGE = 4096
MIB = 1 << 20


def layout():
    """The #defines of layout.h, by name."""
    defs = {}
    with open(os.path.join(GUEST_DIR, 'layout.h')) as f:
        for m in re.finditer(r'#define\s+(DG_\w+)\s+(0x[0-9a-fA-F]+|\d+)',
                             f.read()):
            defs[m.group(1)] = int(m.group(2), 0)
    return defs


L = layout()
# Guest-physical address of the parameters the guest rereads
PARAMS_ADDR = L['DG_LOAD_ADDR'] + L['DG_PARAMS_OFFSET']


def sector():
    """The boot sector's bytes, as dirty-guest-sector.h holds them."""
    with open(os.path.join(GUEST_DIR, 'dirty-guest-sector.h')) as f:
        data = bytes(int(b, 16) for b in re.findall(r'0x([0-9a-f]{2})',
                                                      f.read()))
    assert len(data) == L['DG_SECTOR_SIZE'], len(data)
    return data


def write_disk(path, region_base=L['DG_DEFAULT_REGION_BASE'],
               region_pages=L['DG_DEFAULT_REGION_PAGES'], pages_per_tick=0,
               ticks_per_batch=0):
    """Write the boot sector with these parameters as a raw disk image."""
    data = bytearray(sector())
    for off, val in ((L['DG_P_REGION_BASE'], region_base),
                     (L['DG_P_REGION_PAGES'], region_pages),
                     (L['DG_P_PAGES_PER_TICK'], pages_per_tick),
                     (L['DG_P_TICKS_PER_BATCH'], ticks_per_batch)):
        off += L['DG_PARAMS_OFFSET']
        data[off:off + 4] = val.to_bytes(4, 'little')
    with open(path, 'wb') as f:
        f.write(data)


class QMPError(Exception):
    pass


class KVMUnavailable(RuntimeError):
    """QEMU started, but without KVM."""


class Guest:
    """One QEMU process running the dirty guest."""

    def __init__(self, binary, accel='kvm', ring=0, mem_mb=256,
                 region_mb=64, pages_per_tick=0, ticks_per_batch=0,
                 incoming=None, extra=(), name='guest'):
        self.binary = binary
        self.accel = accel
        self.mem_mb = mem_mb
        self.region_base = L['DG_DEFAULT_REGION_BASE']
        self.region_pages = region_mb * MIB // PAGE
        self.events = []
        self.dir = tempfile.mkdtemp(prefix='dirtyguest-%s-' % name)
        disk = os.path.join(self.dir, 'disk.img')
        write_disk(disk, self.region_base, self.region_pages,
                   pages_per_tick, ticks_per_batch)

        qtest_path = os.path.join(self.dir, 'qtest.sock')
        qmp_path = os.path.join(self.dir, 'qmp.sock')
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(qtest_path)
        lsock.listen(1)
        accel_opt = accel + (',dirty-ring-size=%d' % ring if ring else '')
        args = [binary, '-accel', accel_opt, '-machine', 'pc',
                '-m', str(mem_mb), '-smp', '1', '-nodefaults',
                '-display', 'none', '-name', name + ',debug-threads=on',
                '-drive', 'file=%s,format=raw' % disk,
                '-qtest', 'unix:' + qtest_path,
                '-qmp', 'unix:%s,server=on,wait=off' % qmp_path]
        if accel == 'kvm':
            args += ['-cpu', 'host']
        if incoming:
            args += ['-incoming', incoming]
        args += list(extra)
        self.start_time = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir,
                                                              'stderr'), 'w'))
        lsock.settimeout(30)
        self.qtest, _ = lsock.accept()
        lsock.close()
        self.qtest_f = self.qtest.makefile('rw')
        for _ in range(300):
            try:
                self.qmp_sock = socket.socket(socket.AF_UNIX)
                self.qmp_sock.connect(qmp_path)
                break
            except OSError:
                self.qmp_sock.close()
                time.sleep(0.05)
        else:
            raise RuntimeError('no QMP socket: ' + self.stderr())
        self.qmp_f = self.qmp_sock.makefile('rw')
        self._read_qmp()                    # greeting
        self.qmp('qmp_capabilities')
        if accel == 'kvm' and not self.qmp('query-kvm')['enabled']:
            self.quit()
            raise KVMUnavailable('KVM could not be initialised')

    def stderr(self):
        with open(os.path.join(self.dir, 'stderr')) as f:
            return f.read()

    # QMP
    def _read_qmp(self):
        line = self.qmp_f.readline()
        if not line:
            raise QMPError('QEMU closed QMP: ' + self.stderr())
        rsp = json.loads(line)
        if 'event' in rsp:
            ts = rsp['timestamp']
            self.events.append((rsp['event'],
                                ts['seconds'] + ts['microseconds'] / 1e6,
                                rsp.get('data', {})))
        return rsp

    def qmp(self, cmd, **args):
        """Run QMP @cmd (underscores in argument names read as dashes)."""
        msg = {'execute': cmd}
        if args:
            msg['arguments'] = {k.replace('_', '-'): v
                                for k, v in args.items()}
        self.qmp_f.write(json.dumps(msg) + '\n')
        self.qmp_f.flush()
        while True:
            rsp = self._read_qmp()
            if 'event' in rsp:
                continue
            if 'error' in rsp:
                raise QMPError('%s: %s' % (cmd, rsp['error']['desc']))
            return rsp['return']

    def hmp(self, line):
        return self.qmp('human-monitor-command', command_line=line)

    def wait_event(self, name, timeout=60):
        """Return the first recorded event @name, reading until it comes."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev[0] == name:
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise TimeoutError(name)
            self.qmp_sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                self._read_qmp()
            except (socket.timeout, TimeoutError):
                raise TimeoutError(name)
            finally:
                self.qmp_sock.settimeout(None)

    # qtest
    def _qtest(self, line):
        self.qtest_f.write(line + '\n')
        self.qtest_f.flush()
        while True:
            rsp = self.qtest_f.readline().split()
            if rsp and rsp[0] == 'OK':
                return rsp[1:]
            if rsp and rsp[0] != 'IRQ':
                raise RuntimeError('qtest: %s -> %s' % (line, rsp))

    def readq(self, addr):
        return int(self._qtest('readq 0x%x' % addr)[0], 16)

    def readl(self, addr):
        return int(self._qtest('readl 0x%x' % addr)[0], 16)

    def writel(self, addr, val):
        self._qtest('writel 0x%x 0x%x' % (addr, val))

    # the guest's statistics and knobs
    def writes(self):
        """Page writes the guest made since boot (0 before it runs)."""
        if self.readl(L['DG_STATS'] + L['DG_ST_MAGIC']) != L['DG_MAGIC']:
            return 0
        return self.readq(L['DG_STATS'] + L['DG_ST_WRITES'])

    def passes(self):
        return self.readl(L['DG_STATS'] + L['DG_ST_PASSES'])

    def set_workload(self, pages_per_tick=0, ticks_per_batch=0,
                     region_pages=None):
        """Change what the guest does; it rereads its parameters.  The
        region, if given, is written first and the pace last."""
        if region_pages is not None:
            self.region_pages = region_pages
            self.writel(PARAMS_ADDR + L['DG_P_REGION_PAGES'], region_pages)
        self.writel(PARAMS_ADDR + L['DG_P_TICKS_PER_BATCH'], ticks_per_batch)
        self.writel(PARAMS_ADDR + L['DG_P_PAGES_PER_TICK'], pages_per_tick)

    def wait_running(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.writes() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError('guest never ran: ' + self.stderr())
            time.sleep(0.01)

    # the QEMU process
    def cpu_seconds(self):
        """CPU time QEMU used so far (user + system)."""
        with open('/proc/%d/stat' % self.proc.pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def cpu_seconds_outside_vcpus(self):
        """CPU time of all threads but the vCPUs ("CPU n/KVM" with
        debug-threads=on): the main loop, QMP, and a measurement's own
        thread.  Threads that ended still count in the process total."""
        vcpu = 0
        task = '/proc/%d/task' % self.proc.pid
        for tid in os.listdir(task):
            try:
                with open(os.path.join(task, tid, 'stat')) as f:
                    head, rest = f.read().rsplit(')', 1)
            except OSError:
                continue
            if head.split('(', 1)[1].startswith('CPU '):
                fields = rest.split()
                vcpu += int(fields[11]) + int(fields[12])
        return self.cpu_seconds() - vcpu / os.sysconf('SC_CLK_TCK')

    def quit(self):
        try:
            self.qmp_f.write(json.dumps({'execute': 'quit'}) + '\n')
            self.qmp_f.flush()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for s in (self.qtest, self.qmp_sock):
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)
