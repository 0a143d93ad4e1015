"""Markdown report and PNG plots from bench/run.py's results."""

import os

from stats import median, pct, spread


def _f(x, fmt='%.2f'):
    return '–' if x is None else fmt % x


def _ratio_cell(xs):
    if not xs:
        return '–'
    if len(xs) == 1:
        return '%.2f' % xs[0]
    return '%.2f (%.2f–%.2f)' % ((median(xs),) + spread(xs))


def accuracy_tables(res, out):
    rows = [r for r in res['accuracy'] if 'ratio' in r and r['valid']]
    keys = []
    for r in res['accuracy']:
        k = (r['accel'], r['mode'])
        if k not in keys:
            keys.append(k)
    out.append('### Summary: measured ÷ truth, median (min–max)\n')
    out.append('| accel | mode | workload | base | patched | n |')
    out.append('| --- | --- | --- | --- | --- | --- |')
    for accel, mode in keys:
        for kind in ('paced', 'looping'):
            sel = [r for r in rows if (r['accel'], r['mode'], r['kind']) ==
                   (accel, mode, kind)]
            b = [r['ratio'] for r in sel if r['build'] == 'base']
            p = [r['ratio'] for r in sel if r['build'] == 'patched']
            out.append('| %s | %s | %s | %s | %s | %d / %d |' %
                       (accel, mode, kind, _ratio_cell(b), _ratio_cell(p),
                        len(b), len(p)))
    out.append('')
    bad = [r for r in res['accuracy'] if 'error' in r or
           r.get('guest_stalled')]
    if bad:
        out.append('Measurements that produced no usable result:\n')
        out.append('| build | accel | mode | workload | rate | window | '
                   'what happened |')
        out.append('| --- | --- | --- | --- | --- | --- | --- |')
        for r in bad:
            out.append('| %s | %s | %s | %s | %d | %d ms | %s |' %
                       (r['build'], r['accel'], r['mode'], r['kind'],
                        r['rate'], r['window_ms'],
                        r.get('error') or 'the guest made no progress '
                        '(froze) during the measurement; rebooted'))
        out.append('')
    cov = [r for r in rows if 'low' in r]
    if cov:
        hit = sum(1 for r in cov if r['low'] <= r['truth'] <= r['high'])
        out.append('Page sampling (patched) reported a 95 %% interval that '
                   'covered the truth in **%d of %d** measurements '
                   '(%.0f %%).\n' % (hit, len(cov), 100.0 * hit / len(cov)))
    ov = [r for r in rows if r.get('overflows')]
    if ov:
        out.append('Dirty-ring overflows were reported in %d of %d patched '
                   'dirty-ring measurements.\n' %
                   (len(ov), len([r for r in rows if r['mode'] ==
                                  'dirty-ring' and r['build'] ==
                                  'patched'])))
    out.append('### Detail: median measured ÷ truth per rate and window\n')
    out.append('| accel | mode | workload | ≈MiB/s | window | truth MiB/s |'
               ' base | patched |')
    out.append('| --- | --- | --- | --- | --- | --- | --- | --- |')
    combos = []
    for r in rows:
        k = (r['accel'], r['mode'], r['kind'], r['rate'], r['window_ms'])
        if k not in combos:
            combos.append(k)
    for k in combos:
        sel = [r for r in rows if (r['accel'], r['mode'], r['kind'],
                                   r['rate'], r['window_ms']) == k]
        t = median([r['truth'] for r in sel])
        b = [r['ratio'] for r in sel if r['build'] == 'base']
        p = [r['ratio'] for r in sel if r['build'] == 'patched']
        out.append('| %s | %s | %s | %d | %d ms | %.1f | %s | %s |' %
                   (k + (t, _ratio_cell(b), _ratio_cell(p))))
    out.append('')


def cost_table(res, out):
    rows = res['cost']
    out.append('Guest progress = guest page writes per second during a 1 s '
               'measurement ÷ in the second before it (1.00 = no effect).  '
               'Measurement CPU = CPU time of QEMU\'s threads other than '
               'the vCPU (main loop, QMP, the measurement thread) during '
               'the 1 s measurement minus in the second before it, in ms; '
               'the work dirty logging adds to the vCPU shows in the '
               'progress.  `/proc` counts CPU time in 10 ms ticks: values '
               'within ±10 ms are below its resolution.\n')
    out.append('| accel | mode | guest RAM | sample-pages | progress base |'
               ' progress patched | CPU ms base | CPU ms patched |')
    out.append('| --- | --- | --- | --- | --- | --- | --- | --- |')
    keys = []
    for r in rows:
        k = (r['accel'], r['mode'], r['mem_mb'], r['sample_pages'])
        if k not in keys:
            keys.append(k)
    for k in keys:
        cells = []
        for field in ('progress', 'cpu_ms'):
            for build in ('base', 'patched'):
                r = [x for x in rows if (x['accel'], x['mode'], x['mem_mb'],
                                         x['sample_pages']) == k and
                     x['build'] == build]
                cells.append((_f(r[0][field]) if field == 'progress' else
                              _f(r[0][field], '%.1f'))
                             if r and field in r[0]
                             else (r[0].get('error', '–')[:40] if r else '–'))
        out.append('| %s | %s | %d MiB | %s | %s | %s | %s | %s |' %
                   (k[0], k[1], k[2], k[3] or '–', *cells))
    out.append('')


def boot_table(res, out):
    rows = res['boot_stall']
    out.append('| build | measurement at boot | first guest write (s after '
               'start) | window ended (s) | guest pages/s afterwards |')
    out.append('| --- | --- | --- | --- | --- |')
    for r in rows:
        out.append('| %s | %s | %s | %s | %s |' %
                   (r['build'], 'dirty-ring 1 s' if r['measure_at_boot']
                    else 'none', _f(r['first_write_s']) if r['first_write_s']
                    else 'never (15 s)', _f(r['window_end_s']),
                    _f(r.get('pages_per_s_after'), '%.0f')))
    out.append('')


def colo_section(res, out):
    rows = [r for r in res['colo'] if 'pauses_ms' in r]
    for r in res['colo']:
        if 'error' in r:
            out.append('- %s round %d failed: %s' % (r['build'], r['round'],
                                                    r['error']))
    allp = {b: [p for r in rows if r['build'] == b for p in r['pauses_ms']]
            for b in ('base', 'patched')}
    out.append('| build | checkpoints | pause p50 (ms) | p90 | p99 | '
               'checkpoints/s |')
    out.append('| --- | --- | --- | --- | --- | --- |')
    for b in ('base', 'patched'):
        rate = median([r['checkpoints_per_s'] for r in rows
                       if r['build'] == b and r['checkpoints_per_s']])
        out.append('| %s | %d | %s | %s | %s | %s |' %
                   (b, len(allp[b]), _f(median(allp[b])),
                    _f(pct(allp[b], 90)), _f(pct(allp[b], 99)),
                    _f(rate)))
    out.append('')
    ratios = []
    for rnd in sorted({r['round'] for r in rows}):
        b = [r for r in rows if r['round'] == rnd and r['build'] == 'base']
        p = [r for r in rows if r['round'] == rnd and r['build'] == 'patched']
        if b and p:
            ratios.append(median(p[0]['pauses_ms']) /
                          median(b[0]['pauses_ms']))
    if allp['base'] and allp['patched']:
        res['colo_ratio'] = median(allp['patched']) / median(allp['base'])
        out.append('**Patched ÷ base median pause: %.3f** (per round: %s; '
                   'target ≤ 1.01).\n' %
                   (res['colo_ratio'],
                    ', '.join('%.3f' % x for x in ratios)))
    h = res.get('hook')
    if h:
        out.append('Recorder hooks, micro-benchmark (`bench/hook-bench.c`, '
                   '%d iterations): **%.0f ns per checkpoint** (%d hook '
                   'calls), %.1f ns per hook call.\n' %
                   (h['iterations'], h['ns_per_checkpoint'],
                    h['calls_per_checkpoint'], h['ns_per_call']))


def latency_table(res, out):
    out.append('Both builds run at once and their calls alternate.\n')
    out.append('| build | command | calls | p50 (µs) | p99 (µs) |')
    out.append('| --- | --- | --- | --- | --- |')
    for r in res['latency']:
        out.append('| %s | %s | %d | %.0f | %.0f |' %
                   (r['build'], r['command'], r['calls'], r['p50_us'],
                    r['p99_us']))
    out.append('')


def plots(res, outdir):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    rows = [r for r in res['accuracy'] if 'ratio' in r and r['valid']]
    keys = []
    for r in rows:
        if (r['accel'], r['mode']) not in keys:
            keys.append((r['accel'], r['mode']))
    if keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 4),
                                 squeeze=False)
        for ax, (accel, mode) in zip(axes[0], keys):
            for build, mk, col in (('base', 'x', 'tab:red'),
                                   ('patched', 'o', 'tab:blue')):
                sel = [r for r in rows if (r['accel'], r['mode'],
                                           r['build']) == (accel, mode, build)]
                ax.scatter([r['truth'] for r in sel],
                           [max(r['measured'], 0.1) for r in sel],
                           marker=mk, color=col, label=build, alpha=0.7)
            lim = [0.1, 20000]
            ax.plot(lim, lim, color='gray', lw=0.8)
            ax.set_xscale('log')
            ax.set_yscale('log')
            ax.set_xlim(0.5, 2000)
            ax.set_ylim(0.1, 20000)
            ax.set_title('%s, %s' % (accel, mode))
            ax.set_xlabel('truth (MiB/s)')
            ax.set_ylabel('measured (MiB/s)')
            ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, 'accuracy.png'), dpi=80)
        plt.close(fig)
        made.append('accuracy.png')
    colo = [r for r in res['colo'] if 'pauses_ms' in r]
    if colo:
        fig, ax = plt.subplots(figsize=(6, 4))
        data = [[p for r in colo if r['build'] == b for p in r['pauses_ms']]
                for b in ('base', 'patched')]
        ax.boxplot(data, labels=['base', 'patched'])
        ax.set_ylabel('checkpoint pause (ms), STOP to RESUME')
        ax.set_title('COLO primary checkpoint pause')
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, 'colo-pause.png'), dpi=80)
        plt.close(fig)
        made.append('colo-pause.png')
    return made


def write(res, outdir):
    m = res['machine']
    out = ['# make bench: dirty-rate and COLO recorder, base vs patched\n',
           'Unpatched QEMU 10.2.2 ("base") and this series ("patched"), '
           'built with the same configure options and run side by side in '
           'one invocation.%s\n' % (' **Quick run** (`--quick`): fewer '
                                     'rates, windows and repeats.'
                                     if res['quick'] else ''),
           '- command: `%s`' % res['command'],
           '- date: %s, duration %d s' % (res['date'], res['duration_s']),
           '- machine: %s, %d CPUs, %.0f GiB RAM, %s, kernel %s, KVM: %s\n'
           % (m['cpu'], m['cpus'], m['mem_gib'], m['os'], m['kernel'],
              m['kvm'])]
    for r in res.get('reruns', []):
        out.append('- step(s) `%s` rerun on %s with `%s`%s' %
                   (r['steps'], r['date'], r['command'],
                    ' (quick)' if r['quick'] else ''))
    if res.get('reruns'):
        out.append('')
    if res['errors']:
        out.append('**Steps that failed:** ' + '; '.join(res['errors']) +
                   '\n')
    made = plots(res, outdir)
    out.append('## Dirty-rate accuracy\n')
    out.append('The guest (`tests/qtest/migration/dirty-guest`) counts its '
               'page writes at a fixed guest-physical address that the host '
               'reads over qtest.  *Paced*: N new pages every 1 ms tick (or '
               'every T ticks), never repeating a page within the window, so '
               'the truth is the guest\'s write rate.  *Looping*: a region '
               'of rate × window rewritten as fast as the guest can, so the '
               'truth is region ÷ window while events are many more.  A '
               'looping measurement counts only if the guest rewrote the '
               'region at least twice in the window.\n')
    if 'accuracy.png' in made:
        out.append('![measured vs truth](accuracy.png)\n\nLog-log; a result of 0 MiB/s is drawn at 0.1.\n')
    accuracy_tables(res, out)
    out.append('## Dirty-rate cost\n')
    cost_table(res, out)
    out.append('### Dirty-ring measurement started during firmware boot\n')
    boot_table(res, out)
    out.append('## COLO checkpoint recorder overhead\n')
    out.append('Two KVM guests (64 MiB, the primary rewriting 16 MiB), '
               'COLO with `x-checkpoint-delay` 200 ms; the pause is the time '
               'from the primary\'s STOP event to its RESUME event, which '
               'both builds emit.\n')
    if 'colo-pause.png' in made:
        out.append('![pause distribution](colo-pause.png)\n')
    colo_section(res, out)
    out.append('## Query latency\n')
    latency_table(res, out)
    with open(os.path.join(outdir, 'report.md'), 'w') as f:
        f.write('\n'.join(out) + '\n')
