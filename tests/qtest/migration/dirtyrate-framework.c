/*
 * The dirty-rate qtests' fixture and the measurements they share.
 *
 * The guest (migration/dirty-guest) rewrites a region of known size over
 * and over, many times a second, so the unique pages it dirties in a
 * window are the whole region: the true rate is region / window.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "dirtyrate-framework.h"

const DirtyrateAccel dirtyrate_tcg = { "tcg", "tcg", 0 };
const DirtyrateAccel dirtyrate_kvm = { "kvm", "kvm", 0 };
const DirtyrateAccel dirtyrate_kvm_ring = { "kvm-dirty-ring", "kvm", 4096 };

typedef struct DirtyrateTest {
    DirtyrateCase c;
    DirtyrateTestFn fn;
    DirtyrateGuestTestFn guest_fn;
} DirtyrateTest;

DirtyGuestOpts dirtyrate_guest_opts(const DirtyrateCase *c)
{
    DirtyGuestOpts opts = {
        .accel = c->ac->accel,
        .dirty_ring_size = c->ac->dirty_ring_size,
        .region_pages = c->region_mib * MiB / DIRTY_GUEST_PAGE_SIZE,
        .vcpus = c->vcpus,
        .extra_args = c->extra_args,
    };

    return opts;
}

static void run_test(const void *opaque)
{
    const DirtyrateTest *t = opaque;
    DirtyGuestOpts opts;
    DirtyGuest *dg;

    if (t->fn) {
        t->fn(&t->c);
        return;
    }
    opts = dirtyrate_guest_opts(&t->c);
    dg = dirty_guest_start_or_skip(&opts);
    if (!dg) {
        return;
    }
    t->guest_fn(dg, &t->c);
    dirty_guest_quit(dg);
}

static void add_test(const char *what, const DirtyrateCase *c,
                     DirtyrateTestFn fn, DirtyrateGuestTestFn guest_fn)
{
    g_autofree char *path = g_strdup_printf("/dirtyrate/%s/%s", c->ac->name,
                                            what);
    DirtyrateTest *t = g_new0(DirtyrateTest, 1);

    t->c = *c;
    t->fn = fn;
    t->guest_fn = guest_fn;
    qtest_add_data_func_full(path, t, run_test, g_free);
}

void dirtyrate_add_case(const char *what, const DirtyrateCase *c,
                        DirtyrateTestFn fn)
{
    add_test(what, c, fn, NULL);
}

void dirtyrate_add_guest_case(const char *what, const DirtyrateCase *c,
                              DirtyrateGuestTestFn fn)
{
    add_test(what, c, NULL, fn);
}

void dirtyrate_add_mode_cases(const char *what, const DirtyrateCase *cases,
                              int n, DirtyrateGuestTestFn fn)
{
    int i;

    for (i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf(
            "%s/%s", dirtyrate_mode_name(cases[i].mode), what);

        add_test(path, &cases[i], NULL, fn);
    }
}

QDict *dirtyrate_try_measure(DirtyGuest *dg, const char *mode, int64_t ms,
                             int64_t sample_pages, double *truth,
                             bool *valid)
{
    DirtyGuestStats before, after;
    QDict *info;
    int64_t window;
    gint64 t0, t1;

    dirty_guest_read(dg, &before);
    t0 = g_get_monotonic_time();
    dirtyrate_calc(dg->qts, mode, ms, sample_pages);
    info = dirtyrate_wait(dg->qts);
    t1 = g_get_monotonic_time();
    dirty_guest_read(dg, &after);

    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==,
                    dirtyrate_mode_name(mode));
    window = qdict_get_int(info, "calc-time");
    g_assert_cmpint(window, >=, ms);
    *valid = (double)(after.writes - before.writes) * window * 1000 /
             (t1 - t0) >= 2.0 * dg->opts.region_pages;

    *truth = dirtyrate_mib_per_s(dirty_guest_region_bytes(dg), window);
    g_test_message("%s: measured %" PRId64 " MiB/s, truth %.1f MiB/s "
                   "(%" PRIu64 " page writes, window %" PRId64 " ms)",
                   dirtyrate_mode_name(mode),
                   qdict_get_int(info, "dirty-rate"), *truth,
                   after.writes - before.writes, window);
    return info;
}

int64_t dirtyrate_fit_window(DirtyGuest *dg, int64_t min)
{
    double speed = dirty_guest_write_rate(dg, 300);
    int64_t ms = 3000.0 * dg->opts.region_pages / MAX(speed, 1);

    ms = MIN(MAX(ms, min), 60000);
    g_test_message("guest writes %.0f pages/s: %" PRId64 " ms windows for "
                   "%" PRIu32 " pages", speed, ms, dg->opts.region_pages);
    return ms;
}

QDict *dirtyrate_measure(DirtyGuest *dg, const char *mode, int64_t min_ms,
                         int64_t sample_pages, double *truth)
{
    QDict *info = NULL;
    bool valid = false;
    int i;

    for (i = 0; i < DIRTYRATE_MEASURE_TRIES && !valid; i++) {
        qobject_unref(info);
        info = dirtyrate_try_measure(dg, mode, dirtyrate_fit_window(dg, min_ms),
                                     sample_pages, truth, &valid);
        if (!valid) {
            g_test_message("measuring again: the guest stalled");
        }
    }
    g_assert_true(valid);
    return info;
}

void dirtyrate_fit_region(DirtyGuest *dg, int64_t ms, uint32_t max)
{
    dirtyrate_set_region_for(dg, dirty_guest_write_rate(dg, 300), ms, max);
}

void dirtyrate_set_region_for(DirtyGuest *dg, double speed, int64_t ms,
                              uint32_t max)
{
    uint32_t pages = MAX(MIN(max, speed * ms / 1000 / 3), 256);

    g_test_message("guest writes %.0f pages/s: a region of %" PRIu32
                   " pages for %" PRId64 " ms windows", speed, pages, ms);
    dirty_guest_set_region_pages(dg, pages);
}

double dirtyrate_sampling_tolerance(DirtyGuest *dg, double truth,
                                    int64_t sample_pages_per_gb)
{
    double ram_mib = (double)dirty_guest_ram_bytes(dg) / MiB;
    double samples = sample_pages_per_gb * ram_mib / 1024;
    double p = (double)dirty_guest_region_bytes(dg) /
               dirty_guest_ram_bytes(dg);
    double window_s = ram_mib * p / truth;

    return 4.5 * sqrt(p * (1 - p) / samples) * ram_mib / window_s + 1;
}

QDict *dirtyrate_measure_counting(DirtyGuest *dg, const char *mode,
                                  int64_t ms, double *truth)
{
    uint32_t max_pages = dg->opts.region_pages;
    QDict *info = NULL;
    bool valid = false;
    int i;

    for (i = 0; i < DIRTYRATE_MEASURE_TRIES; i++) {
        double rate;

        if (i > 0 && !valid) {
            /* the host runs the guest slower now: a region it can keep */
            dirtyrate_fit_region(dg, ms, max_pages);
        }
        qobject_unref(info);
        info = dirtyrate_try_measure(dg, mode, ms, 0, truth, &valid);
        /*
         * However slowly the guest ran, it dirtied no more than its
         * region (and its statistics page): an over-count fails at once,
         * whatever size of region the host allows.  Not after a ring
         * overflow: a recovered ring can deliver pages of an earlier,
         * larger region.
         */
        if (!qdict_haskey(info, "dirty-ring-overflows") ||
            !qdict_get_uint(info, "dirty-ring-overflows")) {
            g_assert_cmpuint(qdict_get_uint(info, "dirty-pages"), <=,
                             dg->opts.region_pages * 105 / 100);
        }
        rate = qdict_get_int(info, "dirty-rate");
        if (valid && (fabs(rate - *truth) <= *truth * 0.05 + 0.5 ||
                      !qdict_haskey(info, "dirty-ring-overflows") ||
                      !qdict_get_uint(info, "dirty-ring-overflows"))) {
            break;
        }
        g_test_message("measuring again: %s", valid ? "the ring overflowed"
                                                    : "the guest stalled");
    }
    g_assert_true(valid);
    return info;
}

void dirtyrate_assert_counted_pages(DirtyGuest *dg, QDict *info,
                                    double truth)
{
    uint64_t pages = qdict_get_uint(info, "dirty-pages");
    uint64_t region = dg->opts.region_pages;
    double rate = qdict_get_int(info, "dirty-rate");

    /* the region, the guest's statistics page and little else */
    g_assert_cmpuint(pages, >=, region * 95 / 100);
    g_assert_cmpuint(pages, <=, region * 105 / 100);
    g_assert_cmpfloat(fabs(rate - truth), <=, truth * 0.05 + 0.5);
}
