#!/usr/bin/env python3
"""make bench: dirty-rate accuracy and cost, COLO recorder overhead and
query latency, unpatched QEMU 10.2.2 ("base") against this series
("patched"), both built the same way and run side by side.

Writes bench/results/report.md, results.json and PNG plots.  See
bench/README.md for what each number means.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from stats import median, pct

HERE = os.path.dirname(os.path.abspath(__file__))
# the guest driver, shared with scripts/demo.py
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'scripts'))
import dirtyguest as G  # noqa: E402

MIB = G.MIB
PAGE = G.PAGE

# Paced workloads: (pages per batch, ticks per batch) for about N MiB/s
PACE = {1: (1, 4), 10: (5, 2), 100: (25, 1), 500: (128, 1)}


def log(msg):
    print('bench: ' + msg, flush=True)


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.bins = {'base': args.base, 'patched': args.patched}
        self.res = {'accuracy': [], 'cost': [], 'boot_stall': [],
                    'colo': [], 'latency': [], 'hook': None, 'errors': []}

    # ------------------------------------------------------------------
    # dirty-rate measurement, polled the same way on both builds
    def measure(self, g, mode, ms, sample_pages=None, poll=0.005):
        args = {'calc_time': ms, 'calc_time_unit': 'millisecond'}
        if mode != 'page-sampling':
            args['mode'] = mode
        if sample_pages:
            args['sample_pages'] = sample_pages
        w0, t0 = g.writes(), time.monotonic()
        c0 = g.cpu_seconds_outside_vcpus()
        g.qmp('calc-dirty-rate', **args)
        # The base sets 'measuring' from its thread, some time after the
        # command returned: polling at once could read the previous
        # result.  No measurement ends before its window, so wait that
        # long first, the same on both builds.
        time.sleep(ms / 1000)
        deadline = t0 + ms / 1000 + 30
        while True:
            info = g.qmp('query-dirty-rate', calc_time_unit='millisecond')
            if info['status'] != 'measuring':
                break
            if time.monotonic() > deadline:
                raise TimeoutError('measurement never ended')
            time.sleep(poll)
        t1 = time.monotonic()
        c1 = g.cpu_seconds_outside_vcpus()
        w1 = g.writes()
        return info, w0, w1, t1 - t0, c1 - c0

    def boot(self, build, accel, ring=0, mem_mb=256, region_mb=64, **kw):
        g = G.Guest(self.bins[build], accel=accel, ring=ring, mem_mb=mem_mb,
                    region_mb=region_mb, name='%s-%s' % (build, accel), **kw)
        g.wait_running()
        return g

    # ------------------------------------------------------------------
    def configs(self):
        """(accel, mode, dirty ring size) to measure"""
        return [('kvm', 'page-sampling', 0), ('kvm', 'dirty-bitmap', 0),
                ('kvm', 'dirty-ring', 4096),
                ('tcg', 'page-sampling', 0), ('tcg', 'dirty-bitmap', 0)]

    def accuracy(self):
        windows = [100, 1000] if self.quick else [100, 1000, 10000]
        rates = [1, 10, 100] if self.quick else [1, 10, 100, 500]
        repeats = 2 if self.quick else 3
        mem = 512 if self.quick else 1024
        usable = mem - 8
        for accel, mode, ring in self.configs():
            for build in ('base', 'patched'):
                g = None
                for kind in ('paced', 'looping'):
                    for rate in rates:
                        for ms in windows:
                            region = (usable if kind == 'paced'
                                      else rate * ms / 1000)
                            if kind == 'paced' and rate * ms / 1000 > \
                                    0.8 * usable:
                                continue
                            if region > usable or region * MIB < 16 * PAGE:
                                continue
                            for rep in range(repeats):
                                if g is None:
                                    g = self.boot(build, accel, ring, mem,
                                                  region_mb=16)
                                g = self.accuracy_one(g, build, accel, mode,
                                                      ring, kind, rate, ms,
                                                      region, mem)
                if g:
                    g.quit()

    def accuracy_one(self, g, build, accel, mode, ring, kind, rate, ms,
                     region_mb, mem):
        row = {'build': build, 'accel': accel, 'mode': mode, 'kind': kind,
               'rate': rate, 'window_ms': ms}
        pages = int(region_mb * MIB // PAGE)
        if kind == 'paced':
            ppt, tpb = PACE[rate]
            g.set_workload(pages_per_tick=0)
            g.set_workload(pages_per_tick=ppt, ticks_per_batch=tpb,
                           region_pages=pages)
        else:
            g.set_workload(pages_per_tick=0, region_pages=pages)
        time.sleep(0.05)
        try:
            info, w0, w1, elapsed, _ = self.measure(g, mode, ms)
        except (G.QMPError, TimeoutError) as e:
            row['error'] = str(e)
            self.res['accuracy'].append(row)
            log('  %s' % row)
            g.quit()
            return None
        calc_ms = info['calc-time']
        row['calc_ms'] = calc_ms
        row['measured'] = info.get('dirty-rate')
        if kind == 'paced':
            truth = (w1 - w0) / elapsed * PAGE / MIB
            valid = w1 > w0
        else:
            truth = pages * PAGE / MIB / (calc_ms / 1000)
            # the whole region rewritten at least twice over the window
            valid = (w1 - w0) * calc_ms / 1000 / elapsed >= 2 * pages
        row['truth'] = truth
        row['valid'] = bool(valid)
        row['guest_stalled'] = w1 == w0
        if 'dirty-rate-low' in info:
            row['low'] = info['dirty-rate-low']
            row['high'] = info['dirty-rate-high']
        if 'dirty-ring-overflows' in info:
            row['overflows'] = info['dirty-ring-overflows']
        if row['measured'] is not None and truth > 0:
            row['ratio'] = row['measured'] / truth
        self.res['accuracy'].append(row)
        log('  accuracy %-7s %s %-13s %-7s %3d MiB/s %5d ms: '
            'measured %s truth %.1f%s' %
            (build, accel, mode, kind, rate, ms, row['measured'], truth,
             '' if valid else ' (guest too slow: not counted)'))
        if row['guest_stalled']:
            # a frozen guest tells nothing more: start a fresh one
            log('  guest made no progress during the measurement; '
                'rebooting it')
            g.quit()
            return None
        return g

    # ------------------------------------------------------------------
    def cost(self):
        mems = [256, 1024] if self.quick else [256, 1024, 4096]
        for accel, mode, ring in self.configs():
            for mem in mems:
                samples = [None]
                if mode == 'page-sampling' and mem == 1024:
                    samples = [512, 16384]
                for sp in samples:
                    for build in ('base', 'patched'):
                        self.cost_one(build, accel, mode, ring, mem, sp)

    def cost_one(self, build, accel, mode, ring, mem, sp):
        row = {'build': build, 'accel': accel, 'mode': mode, 'mem_mb': mem,
               'sample_pages': sp}
        try:
            g = self.boot(build, accel, ring, mem, region_mb=64)
        except Exception as e:
            row['error'] = str(e)
            self.res['cost'].append(row)
            return
        try:
            rates_out, rates_in, cpu_out, cpu_in = [], [], [], []
            for _ in range(2 if self.quick else 3):
                w0, t0 = g.writes(), time.monotonic()
                c0 = g.cpu_seconds_outside_vcpus()
                time.sleep(1)
                w1, t1 = g.writes(), time.monotonic()
                c1 = g.cpu_seconds_outside_vcpus()
                rates_out.append((w1 - w0) / (t1 - t0))
                cpu_out.append((c1 - c0) / (t1 - t0))
                info, w0, w1, el, cpu = self.measure(g, mode, 1000, sp,
                                                     poll=0.05)
                rates_in.append((w1 - w0) / el)
                cpu_in.append(cpu / el)
                if w1 == w0:
                    raise RuntimeError('the guest froze during the '
                                       'measurement')
            row['progress'] = median(rates_in) / median(rates_out)
            row['cpu_ms'] = (median(cpu_in) - median(cpu_out)) * 1000
            row['guest_pages_per_s'] = median(rates_out)
        except Exception as e:
            row['error'] = str(e)
        g.quit()
        self.res['cost'].append(row)
        log('  cost %-7s %s %-13s %5d MiB%s: %s' %
            (build, accel, mode, mem,
             ' sample-pages %d' % sp if sp else '',
             'progress %.3f, measurement CPU %.1f ms' %
             (row['progress'], row['cpu_ms'])
             if 'progress' in row else row.get('error')))

    def boot_stall(self):
        """A dirty-ring measurement started while the firmware boots."""
        for rep in range(2 if self.quick else 3):
            for build in ('base', 'patched'):
                for measure in (False, True):
                    row = {'build': build, 'measure_at_boot': measure}
                    g = G.Guest(self.bins[build], accel='kvm', ring=4096,
                                mem_mb=256, region_mb=16, name='boot')
                    t0 = g.start_time
                    end = None
                    if measure:
                        g.qmp('calc-dirty-rate', calc_time=1,
                              mode='dirty-ring')
                        window_start = time.monotonic()
                    deadline = time.monotonic() + 15
                    first = None
                    while time.monotonic() < deadline:
                        if measure and end is None and \
                                time.monotonic() - window_start >= 1:
                            st = g.qmp('query-dirty-rate')['status']
                            if st != 'measuring':
                                end = time.monotonic()
                        w = g.writes()
                        if w and first is None:
                            first = time.monotonic()
                        if first and (end or not measure):
                            break
                        time.sleep(0.01)
                    row['first_write_s'] = first - t0 if first else None
                    row['window_end_s'] = end - t0 if end else None
                    if first:
                        # progress over the next second
                        w0, t1 = g.writes(), time.monotonic()
                        time.sleep(1)
                        row['pages_per_s_after'] = ((g.writes() - w0) /
                                                    (time.monotonic() - t1))
                    g.quit()
                    self.res['boot_stall'].append(row)
                    log('  boot %-7s %s: first guest write %s%s' %
                        (build, 'with a ring measurement' if measure else
                         'without measurement',
                         'at %.2f s' % row['first_write_s']
                         if first else 'never (within 15 s)',
                         ', window ended at %.2f s' % row['window_end_s']
                         if end else ''))

    # ------------------------------------------------------------------
    def colo_run(self, build, n):
        d = os.path.join('/tmp', 'bench-colo-%d' % os.getpid())
        os.makedirs(d, exist_ok=True)
        uri = 'unix:%s/colo.sock' % d
        sec = G.Guest(self.bins[build], accel='kvm', mem_mb=64, region_mb=16,
                      incoming=uri, name='colo-sec')
        pri = self.boot(build, 'kvm', 0, 64, region_mb=16)
        try:
            for g in (sec, pri):
                g.qmp('migrate-set-capabilities', capabilities=[
                    {'capability': 'x-colo', 'state': True}])
            pri.qmp('migrate-set-parameters', x_checkpoint_delay=200)
            pri.qmp('migrate', uri=uri)
            pauses, resumes = [], []
            stop = None
            deadline = time.monotonic() + 60 + n
            while len(pauses) < n and time.monotonic() < deadline:
                ev = pri.wait_event('STOP' if stop is None else 'RESUME',
                                    timeout=30)
                if ev[0] == 'STOP':
                    stop = ev[1]
                else:
                    pauses.append(ev[1] - stop)
                    resumes.append(ev[1])
                    stop = None
            # the first STOP/RESUME pair is the initial migration
            pauses, resumes = pauses[1:], resumes[1:]
            rate = ((len(resumes) - 1) / (resumes[-1] - resumes[0])
                    if len(resumes) > 1 else None)
            return pauses, rate
        finally:
            pri.quit()
            sec.quit()

    def colo(self):
        n = 40 if self.quick else 100
        rounds = 2 if self.quick else 4
        for r in range(rounds):
            for build in ('base', 'patched'):
                row = {'build': build, 'round': r}
                try:
                    pauses, rate = self.colo_run(build, n)
                    row['pauses_ms'] = [p * 1000 for p in pauses]
                    row['checkpoints_per_s'] = rate
                    log('  colo %-7s round %d: %d checkpoints, median pause '
                        '%.2f ms, %.2f checkpoints/s' %
                        (build, r, len(pauses),
                         median(row['pauses_ms']), rate or 0))
                except Exception as e:
                    row['error'] = str(e)
                    log('  colo %s: %s' % (build, e))
                self.res['colo'].append(row)

    def hook(self):
        exe = self.args.hook_bench
        if not exe or not os.path.exists(exe):
            return
        out = subprocess.run([exe, '2000000'], capture_output=True,
                             text=True, check=True).stdout
        self.res['hook'] = json.loads(out)
        log('  hook: %s' % out.strip())

    def latency(self):
        """Both builds run at once, their guests stopped (two busy vCPUs
        would take both of the machine's CPUs); their calls alternate,
        each going first every other time, so that a change in the
        machine's load hits both alike."""
        calls = 300 if self.quick else 1000
        guests = {b: self.boot(b, 'kvm', 0, 256, region_mb=64)
                  for b in ('base', 'patched')}
        for g in guests.values():
            self.measure(g, 'dirty-bitmap', 100)
            g.qmp('stop')
        for cmd in ('query-dirty-rate', 'query-status', 'info_checkpoint'):
            builds = [b for b in guests
                      if b == 'patched' or cmd != 'info_checkpoint']
            ts = {b: [] for b in builds}
            for i in range(calls):
                for b in (builds if i % 2 else builds[::-1]):
                    t0 = time.perf_counter()
                    guests[b].qmp(cmd)
                    ts[b].append((time.perf_counter() - t0) * 1e6)
            for b in builds:
                row = {'build': b, 'command': cmd, 'calls': calls,
                       'p50_us': pct(ts[b], 50), 'p99_us': pct(ts[b], 99)}
                self.res['latency'].append(row)
                log('  latency %-7s %-17s p50 %.0f us, p99 %.0f us' %
                    (b, cmd, row['p50_us'], row['p99_us']))
        for g in guests.values():
            g.quit()

    def run(self):
        steps = [('dirty-rate accuracy', self.accuracy),
                 ('dirty-rate cost', self.cost),
                 ('dirty-ring measurement during firmware boot',
                  self.boot_stall),
                 ('COLO checkpoint pause, base vs patched', self.colo),
                 ('recorder hook micro-benchmark', self.hook),
                 ('query latency', self.latency)]
        only = self.args.only.split(',') if self.args.only else None
        for i, (name, fn) in enumerate(steps):
            if only and fn.__name__ not in only:
                continue
            log('[%d/%d] %s' % (i + 1, len(steps), name))
            t = time.monotonic()
            try:
                fn()
            except Exception as e:
                self.res['errors'].append('%s: %r' % (name, e))
                log('  FAILED: %r' % e)
            log('  (%.0f s)' % (time.monotonic() - t))
        return self.res


def machine():
    cpu = ''
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    kvm = 'kvm_pvm' if os.path.exists('/sys/module/kvm_pvm') else \
        ('kvm' if os.path.exists('/dev/kvm') else 'none')
    return {'cpu': cpu, 'cpus': os.cpu_count(), 'mem_gib': round(mem, 1),
            'kernel': platform.release(), 'kvm': kvm,
            'os': platform.freedesktop_os_release().get('PRETTY_NAME', '')}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--base', required=True)
    ap.add_argument('--patched', required=True)
    ap.add_argument('--hook-bench')
    ap.add_argument('--only', help='comma-separated steps (method names)')
    ap.add_argument('--out', default=os.path.join(HERE, 'results'))
    ap.add_argument('--command', default='make bench')
    args = ap.parse_args()

    start = time.time()
    res = Bench(args).run()
    res['machine'] = machine()
    res['command'] = args.command
    res['quick'] = args.quick
    res['date'] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(start))
    res['duration_s'] = round(time.time() - start)
    os.makedirs(args.out, exist_ok=True)
    old_path = os.path.join(args.out, 'results.json')
    if args.only and os.path.exists(old_path):
        # rerun of some steps: keep the other steps' results
        with open(old_path) as f:
            old = json.load(f)
        for step in args.only.split(','):
            old[step] = res[step]
        # the data of an earlier rerun of the same steps is gone
        old['reruns'] = [r for r in old.get('reruns', [])
                         if r['steps'] != args.only]
        old['reruns'].append(
            {'steps': args.only, 'date': res['date'],
             'command': args.command, 'quick': args.quick})
        old['errors'] = old.get('errors', []) + res['errors']
        res = old
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(res, f, indent=1)
    import report
    report.write(res, args.out)
    log('report: %s' % os.path.join(args.out, 'report.md'))
    return 1 if res['errors'] else 0


if __name__ == '__main__':
    sys.exit(main())
