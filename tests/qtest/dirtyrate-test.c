/*
 * QTest for guest dirty-rate measurement: calc-dirty-rate,
 * query-dirty-rate and their HMP counterparts, in page-sampling,
 * dirty-bitmap and dirty-ring modes, under TCG and KVM.
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
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnull.h"
#include "qapi/error.h"
#include "migration/dirty-guest.h"
#include "migration/dirtyrate-qmp.h"

#define MAX_SAMPLE_PAGES    16384

typedef struct AccelCase {
    const char *name;           /* in test paths */
    const char *accel;
    unsigned dirty_ring_size;
} AccelCase;

static const AccelCase accel_tcg = { "tcg", "tcg", 0 };
static const AccelCase accel_kvm = { "kvm", "kvm", 0 };
static const AccelCase accel_kvm_ring = { "kvm-dirty-ring", "kvm", 4096 };

static char *hmp(QTestState *qts, const char *cmd);
static void wait_for_status(QTestState *qts, const char *status);

/* Start a guest with @opts, or skip the test saying why it cannot run */
static DirtyGuest *start_guest_opts(const DirtyGuestOpts *opts)
{
    g_autofree char *why = NULL;
    DirtyGuest *dg;

    if (!dirty_guest_can_run(opts, &why)) {
        g_test_skip(why);
        return NULL;
    }
    dg = dirty_guest_start(opts, &why);
    if (!dg) {
        g_test_skip(why);
    }
    return dg;
}

static DirtyGuest *start_guest(const AccelCase *ac, uint32_t region_pages)
{
    DirtyGuestOpts opts = {
        .accel = ac->accel,
        .dirty_ring_size = ac->dirty_ring_size,
        .region_pages = region_pages,
    };

    return start_guest_opts(&opts);
}

/*
 * Measure with @mode over @ms.  Returns the result; *truth gets the true
 * MiB/s, region / window, and *valid whether that truth holds: whether the
 * guest wrote fast enough to rewrite its whole region twice per window
 * over the interval around it (a host hiccup can stall it).
 */
static QDict *try_measure_rewriting_guest(DirtyGuest *dg, const char *mode,
                                          int64_t ms, int64_t sample_pages,
                                          double *truth, bool *valid)
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
                    mode ? mode : "page-sampling");
    window = qdict_get_int(info, "calc-time");
    g_assert_cmpint(window, >=, ms);
    *valid = (double)(after.writes - before.writes) * window * 1000 /
             (t1 - t0) >= 2.0 * dg->opts.region_pages;

    *truth = dirtyrate_mib_per_s(dirty_guest_region_bytes(dg), window);
    g_test_message("%s: measured %" PRId64 " MiB/s, truth %.1f MiB/s "
                   "(%" PRIu64 " page writes, window %" PRId64 " ms)",
                   mode ? mode : "page-sampling",
                   qdict_get_int(info, "dirty-rate"), *truth,
                   after.writes - before.writes, window);
    return info;
}

/*
 * How often a measurement is repeated when the host demonstrably stalled
 * the guest (the truth did not hold); never for any other reason.
 */
#define MEASURE_TRIES 5

/* The same, repeated until the truth holds */
static QDict *measure_rewriting_guest(DirtyGuest *dg, const char *mode,
                                      int64_t ms, int64_t sample_pages,
                                      double *truth)
{
    QDict *info = NULL;
    bool valid = false;
    int i;

    for (i = 0; i < MEASURE_TRIES && !valid; i++) {
        qobject_unref(info);
        info = try_measure_rewriting_guest(dg, mode, ms, sample_pages,
                                           truth, &valid);
        if (!valid) {
            g_test_message("measuring again: the guest stalled");
        }
    }
    g_assert_true(valid);
    return info;
}

/*
 * The truth of a measurement, region / window, holds only if the guest
 * rewrites its whole region within the window.  Size the region from the
 * speed the guest shows on this host now, so that it is rewritten three
 * times per @ms window, up to @max pages.
 */
static void fit_region(DirtyGuest *dg, int64_t ms, uint32_t max)
{
    double speed = dirty_guest_write_rate(dg, 300);
    uint32_t pages = MAX(MIN(max, speed * ms / 1000 / 3), 256);

    g_test_message("guest writes %.0f pages/s: a region of %" PRIu32
                   " pages for %" PRId64 " ms windows", speed, pages, ms);
    dirty_guest_set_region_pages(dg, pages);
}

/*
 * The window in which the guest rewrites its whole region three times at
 * the speed it shows now: at least @min ms, at most the longest allowed.
 */
static int64_t fit_window(DirtyGuest *dg, int64_t min)
{
    double speed = dirty_guest_write_rate(dg, 300);
    int64_t ms = 3000.0 * dg->opts.region_pages / MAX(speed, 1);

    ms = MIN(MAX(ms, min), 60000);
    g_test_message("guest writes %.0f pages/s: %" PRId64 " ms windows for "
                   "%" PRIu32 " pages", speed, ms, dg->opts.region_pages);
    return ms;
}

/*
 * Page sampling picks @samples pages; the fraction found dirty estimates
 * region / RAM.  Accept four and a half standard deviations of that
 * binomial estimate, plus one for the integer MiB/s in the result.
 */
static double sampling_tolerance(DirtyGuest *dg, double truth,
                                 int64_t sample_pages_per_gb)
{
    double ram_mib = (double)dirty_guest_ram_bytes(dg) / MiB;
    double samples = sample_pages_per_gb * ram_mib / 1024;
    double p = (double)dirty_guest_region_bytes(dg) /
               dirty_guest_ram_bytes(dg);
    double window_s = ram_mib * p / truth;

    return 4.5 * sqrt(p * (1 - p) / samples) * ram_mib / window_s + 1;
}

/*
 * At the maximum sample-pages, with a guest that dirties three quarters
 * of its RAM, sampling error is about 1 % (one standard deviation): the
 * estimate must be within 5 % of the truth and inside its own interval.
 */
static void test_sampling_matches_guest(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 192 * MiB / DIRTY_GUEST_PAGE_SIZE);
    double truth, tol;
    int64_t rate;
    QDict *info;

    if (!dg) {
        return;
    }
    info = measure_rewriting_guest(dg, NULL, fit_window(dg, 1000),
                                   MAX_SAMPLE_PAGES, &truth);
    g_assert_cmpint(qdict_get_int(info, "sample-pages"), ==,
                    MAX_SAMPLE_PAGES);
    rate = qdict_get_int(info, "dirty-rate");
    tol = sampling_tolerance(dg, truth, MAX_SAMPLE_PAGES);
    g_assert_cmpfloat(fabs(rate - truth), <=, tol);
    g_assert_cmpfloat(fabs(rate - truth), <=, truth * 0.05 + 1);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate-low"), <=, rate);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate-high"), >=, rate);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * Many short page-sampling measurements: the reported 95 % interval must
 * cover the truth in most of them.  Runs are independent draws, so at 95 %
 * coverage 51 or more of 60 fail to happen about once in 2000 runs.  A run
 * in which the guest was stalled (its truth is unknown) is repeated, up to
 * COVERAGE_MAX_TRIES runs in all.
 */
#define COVERAGE_RUNS       60
#define COVERAGE_MIN_HITS   51
#define COVERAGE_MAX_TRIES  90

static void test_sampling_interval_covers_truth(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    int runs = 0, tries = 0, hits = 0;

    if (!dg) {
        return;
    }
    fit_region(dg, 100, dg->opts.region_pages);
    while (runs < COVERAGE_RUNS) {
        double truth;
        bool valid;
        QDict *info = try_measure_rewriting_guest(dg, NULL, 100, 512,
                                                  &truth, &valid);
        int64_t low = qdict_get_int(info, "dirty-rate-low");
        int64_t high = qdict_get_int(info, "dirty-rate-high");
        int64_t rate = qdict_get_int(info, "dirty-rate");

        /* 512 pages per GiB of the 256 MiB that get samples */
        g_assert_cmpuint(qdict_get_uint(info, "sampled-pages"), ==, 128);
        g_assert_cmpuint(qdict_get_uint(info, "dirty-samples"), <=, 128);
        g_assert_cmpint(low, <=, rate);
        g_assert_cmpint(rate, <=, high);
        qobject_unref(info);
        g_assert_cmpint(++tries, <=, COVERAGE_MAX_TRIES);
        if (!valid) {
            continue;
        }
        runs++;
        if (low <= truth && truth <= high) {
            hits++;
        }
    }
    g_test_message("interval covered the truth in %d of %d measurements "
                   "(%d repeated: guest stalled)", hits, COVERAGE_RUNS,
                   tries - runs);
    g_assert_cmpint(hits, >=, COVERAGE_MIN_HITS);
    dirty_guest_quit(dg);
}

/*
 * What libvirt sends (calc-time in seconds, no mode) and reads: the
 * members it knows keep their names and types; page sampling adds only the
 * documented new ones.
 */
static void test_old_style_call_members(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    static const char *const members[] = {
        "status", "start-time", "calc-time", "calc-time-unit",
        "sample-pages", "mode", "dirty-rate",
        "sampled-pages", "dirty-samples", "dirty-rate-low", "dirty-rate-high",
    };
    const QDictEntry *e;
    QDict *info;
    int i;

    if (!dg) {
        return;
    }
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': { 'calc-time': 1 } }");
    info = dirtyrate_wait(dg->qts);
    qobject_unref(info);
    info = qtest_qmp_assert_success_ref(dg->qts,
                                        "{ 'execute': 'query-dirty-rate' }");
    for (e = qdict_first(info); e; e = qdict_next(info, e)) {
        for (i = 0; i < ARRAY_SIZE(members); i++) {
            if (g_str_equal(qdict_entry_key(e), members[i])) {
                break;
            }
        }
        if (i == ARRAY_SIZE(members)) {
            g_error("unexpected member %s", qdict_entry_key(e));
        }
    }
    g_assert_cmpint(qdict_size(info), ==, ARRAY_SIZE(members));
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "page-sampling");
    g_assert_cmpstr(qdict_get_str(info, "calc-time-unit"), ==, "second");
    g_assert_cmpint(qdict_get_int(info, "calc-time"), ==, 1);
    g_assert_cmpint(qdict_get_int(info, "sample-pages"), ==, 512);
    g_assert_cmpint(qdict_get_int(info, "start-time"), >, 0);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate"), >, 0);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/* The guest-physical address of the VGA device's framebuffer BAR */
static uint64_t vga_framebuffer(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-pci' }");
    QList *buses = qdict_get_qlist(rsp, "return");
    QDict *bus = qobject_to(QDict, qlist_entry_obj(qlist_first(buses)));
    const QListEntry *d, *r;
    uint64_t addr = 0;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(bus, "devices"), d) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(d));
        QDict *cls = qdict_get_qdict(dev, "class_info");

        if (qdict_get_int(cls, "class") != 0x300) {
            continue;
        }
        QLIST_FOREACH_ENTRY(qdict_get_qlist(dev, "regions"), r) {
            QDict *reg = qobject_to(QDict, qlist_entry_obj(r));

            if (qdict_get_int(reg, "bar") == 0) {
                addr = qdict_get_int(reg, "address");
            }
        }
    }
    qobject_unref(rsp);
    g_assert_cmphex(addr, !=, 0);
    return addr;
}

/*
 * The guest rewrites only the last page of the VGA framebuffer, RAMBlock
 * vga.vram (16 MiB).  Upstream drew sample pages from [0, pages - 1) and
 * so never found that page dirty.  At the maximum sample-pages the block
 * gets 256 samples of its 4096 pages per measurement, the last page with
 * a probability of 6 %.  Up to 300 measurements must find it dirty at
 * least once; they all miss with a probability below 1e-8.
 */
#define LAST_PAGE_MAX_TRIES 300
#define VGA_VRAM_SIZE       (16 * MiB)

static void test_sampling_finds_the_last_page(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuestOpts opts = {
        .accel = ac->accel,
        .region_pages = 1,
        .extra_args = "-device VGA",
    };
    uint32_t params = DG_LOAD_ADDR + DG_PARAMS_OFFSET;
    g_autofree char *why = NULL;
    DirtyGuestStats st;
    DirtyGuest *dg;
    int tries;

    if (!dirty_guest_can_run(&opts, &why)) {
        g_test_skip(why);
        return;
    }
    dg = dirty_guest_start(&opts, &why);
    g_assert_nonnull(dg);
    qtest_writel(dg->qts, params + DG_P_REGION_BASE,
                 vga_framebuffer(dg->qts) + VGA_VRAM_SIZE -
                 DIRTY_GUEST_PAGE_SIZE);
    dirty_guest_read(dg, &st);
    dirty_guest_wait_writes(dg, st.writes + 1000);

    for (tries = 1; tries <= LAST_PAGE_MAX_TRIES; tries++) {
        const QListEntry *e;
        uint64_t dirty = 0;
        bool seen = false;
        QDict *info;

        qtest_qmp_assert_success(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                                 "'arguments': { 'calc-time': 100, "
                                 "'calc-time-unit': 'millisecond', "
                                 "'sample-pages': %d, 'per-block': true } }",
                                 MAX_SAMPLE_PAGES);
        info = dirtyrate_wait(dg->qts);
        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "blocks"), e) {
            QDict *b = qobject_to(QDict, qlist_entry_obj(e));

            if (g_str_has_suffix(qdict_get_str(b, "idstr"), "/vga.vram")) {
                seen = true;
                g_assert_cmpuint(qdict_get_uint(b, "sampled-pages"), ==,
                                 VGA_VRAM_SIZE / MiB * MAX_SAMPLE_PAGES /
                                 1024);
                dirty = qdict_get_uint(b, "dirty-samples");
            }
        }
        qobject_unref(info);
        g_assert_true(seen);
        /* one page is dirty: it is sampled at most once or twice */
        g_assert_cmpuint(dirty, <=, 2);
        if (dirty) {
            break;
        }
    }
    g_test_message("the last page read dirty after %d measurements", tries);
    g_assert_cmpint(tries, <=, LAST_PAGE_MAX_TRIES);
    dirty_guest_quit(dg);
}

static void test_sampling_zero_when_stopped(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    DirtyGuestStats before, after;
    QDict *info;

    if (!dg) {
        return;
    }
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'stop' }");
    dirty_guest_read(dg, &before);
    dirtyrate_calc(dg->qts, NULL, 500, MAX_SAMPLE_PAGES);
    info = dirtyrate_wait(dg->qts);
    dirty_guest_read(dg, &after);

    g_assert_cmpuint(after.writes, ==, before.writes);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpint(qdict_get_int(info, "dirty-rate"), ==, 0);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

static void test_bitmap_matches_guest(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    double truth;
    QDict *info;

    if (!dg) {
        return;
    }
    fit_region(dg, 1000, dg->opts.region_pages);
    info = measure_rewriting_guest(dg, "dirty-bitmap", 1000, 0, &truth);
    /* within 5 %, and one for the integer MiB/s */
    g_assert_cmpfloat(fabs(qdict_get_int(info, "dirty-rate") - truth), <=,
                      truth * 0.05 + 1);
    g_assert_false(qdict_haskey(info, "vcpu-dirty-rate"));
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * Measure in a counting mode, up to MEASURE_TRIES times: again when the host
 * stalled the guest (the truth is unknown), or when the host overflowed
 * the dirty ring (a host bug that makes the count approximate, see
 * dirty-ring-overflows) and the count is off.  A count that is off
 * without an overflow fails at once.
 */
static QDict *measure_counting(DirtyGuest *dg, const char *mode, int64_t ms,
                               double *truth)
{
    QDict *info = NULL;
    bool valid = false;
    int i;

    for (i = 0; i < MEASURE_TRIES; i++) {
        double rate;

        qobject_unref(info);
        info = try_measure_rewriting_guest(dg, mode, ms, 0, truth, &valid);
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

/*
 * The guest rewrites its region many times a second: the ring sees every
 * rewrite of a harvested page again (event-rate, the sum of the vCPUs'
 * rates), dirty-rate only the unique pages.
 */
static void test_ring_vcpu_rates_sum(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    const QListEntry *e;
    int64_t sum = 0, rate;
    int nvcpu = 0;
    double truth;
    QDict *info;

    if (!dg) {
        return;
    }
    info = measure_counting(dg, "dirty-ring", 1000, &truth);
    g_assert_true(qdict_haskey(info, "vcpu-dirty-rate"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "vcpu-dirty-rate"), e) {
        QDict *vcpu = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(qdict_get_int(vcpu, "id"), ==, nvcpu);
        sum += qdict_get_int(vcpu, "dirty-rate");
        nvcpu++;
    }
    g_assert_cmpint(nvcpu, ==, 1);
    rate = qdict_get_int(info, "dirty-rate");
    g_test_message("event-rate %" PRId64 " MiB/s, dirty-rate %" PRId64
                   " MiB/s, %" PRIu64 " ring overflows", sum, rate,
                   qdict_get_uint(info, "dirty-ring-overflows"));
    g_assert_cmpint(sum, ==, qdict_get_int(info, "event-rate"));
    /* each unique page pushed an entry; both are rounded */
    g_assert_cmpint(sum + 1, >=, rate);
    g_assert_cmpfloat(fabs(rate - truth), <=, truth * 0.05 + 0.5);
    /* the region is rewritten many times: the events are many more */
    g_assert_cmpint(sum, >, 2 * rate);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * Accuracy of the counting modes: the guest rewrites a region of
 * @region_mib over and over, so the truth is region / window whatever the
 * window; several region sizes and windows give rates from 6 to 80 MiB/s
 * where the guest is fast enough (a slower guest gets a smaller region,
 * see fit_region()).  A measurement in which the host stalled the guest
 * (its truth unknown) is repeated.
 */
typedef struct AccuracyCase {
    const AccelCase *ac;
    const char *mode;
    int64_t ms;
    uint32_t region_mib;
    unsigned vcpus;             /* 0: 1 */
} AccuracyCase;

static void assert_counted_pages(DirtyGuest *dg, QDict *info, double truth)
{
    uint64_t pages = qdict_get_uint(info, "dirty-pages");
    uint64_t region = dg->opts.region_pages;
    double rate = qdict_get_int(info, "dirty-rate");

    /* the region, the guest's statistics page and little else */
    g_assert_cmpuint(pages, >=, region * 95 / 100);
    g_assert_cmpuint(pages, <=, region * 105 / 100);
    g_assert_cmpfloat(fabs(rate - truth), <=, truth * 0.05 + 0.5);
}

static void test_counting_accuracy(const void *opaque)
{
    const AccuracyCase *c = opaque;
    DirtyGuest *dg = start_guest(c->ac, c->region_mib * MiB /
                                        DIRTY_GUEST_PAGE_SIZE);
    double truth;
    QDict *info;

    if (!dg) {
        return;
    }
    fit_region(dg, c->ms, dg->opts.region_pages);
    info = measure_counting(dg, c->mode, c->ms, &truth);
    assert_counted_pages(dg, info, truth);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * How a test migration that should still run ended, from @rsp
 * (query-migrate): MIG_RUNNING if it did not; MIG_RING_FAILED if it
 * failed because a KVM dirty ring lost entries, the only failure a test
 * migration may have, on a host whose kernel overflows the ring (the
 * reference host does, many times a second); MIG_COMPLETED if the guest
 * dirtied nothing for a whole pass, which a loaded host that did not run
 * its vCPU can cause and a 1 ms downtime limit then lets through.  Any
 * other end is an error.
 */
enum {
    MIG_RUNNING = 0,
    MIG_RING_FAILED = -1,
    MIG_COMPLETED = -2,
};

static int migration_ended(QDict *rsp)
{
    const char *status = qdict_get_str(rsp, "status");

    if (g_str_equal(status, "failed") && qdict_haskey(rsp, "error-desc") &&
        strstr(qdict_get_str(rsp, "error-desc"), "dirty ring overflowed")) {
        g_test_message("the migration failed: %s",
                       qdict_get_str(rsp, "error-desc"));
        return MIG_RING_FAILED;
    }
    if (g_str_equal(status, "completed")) {
        g_test_message("the migration completed: the guest went quiet");
        return MIG_COMPLETED;
    }
    if (!g_str_equal(status, "active") && !g_str_equal(status, "setup")) {
        g_autoptr(GString) json = qobject_to_json(QOBJECT(rsp));

        g_error("migration not active: %s", json->str);
    }
    return MIG_RUNNING;
}

/*
 * Syncs of the dirty log so far, or how the migration ended (see
 * migration_ended())
 */
static int64_t migration_sync_count(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                    "{ 'execute': 'query-migrate' }");
    int64_t n = migration_ended(rsp);

    if (!n && qdict_haskey(rsp, "ram")) {
        n = qdict_get_int(qdict_get_qdict(rsp, "ram"), "dirty-sync-count");
    }
    qobject_unref(rsp);
    return n;
}

/*
 * Start a migration that does not converge (the guest dirties far more
 * than a 1 ms downtime allows) and syncs the dirty log several times a
 * second, and wait for its second sync.  It starts slowly: until its
 * first bandwidth estimate, 100 ms in, its threshold is 0 and a first
 * pass that has ended completes it at once.  Returns MIG_RUNNING, or
 * MIG_RING_FAILED; one that completed is restarted.
 */
static int start_endless_migration(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    int64_t n;

    do {
        qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                                 " 'arguments': { 'downtime-limit': 1,"
                                 " 'max-bandwidth': 16777216 } }");
        qtest_qmp_assert_success(qts, "{ 'execute': 'migrate', 'arguments': "
                                 "{ 'uri': 'exec:cat >/dev/null' } }");
        for (;;) {
            QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-migrate' }");

            n = migration_ended(rsp);
            if (!n && qdict_haskey(rsp, "total-time") &&
                qdict_get_int(rsp, "total-time") >= 300) {
                qobject_unref(rsp);
                break;
            }
            qobject_unref(rsp);
            if (n) {
                break;
            }
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(20 * 1000);
        }
        if (!n) {
            qtest_qmp_assert_success(qts, "{ 'execute': "
                                     "'migrate-set-parameters', 'arguments':"
                                     " { 'max-bandwidth': 268435456 } }");
            while ((n = migration_sync_count(qts)) >= 0 && n < 2) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_usleep(10 * 1000);
            }
            n = MIN(n, MIG_RUNNING);
        }
        if (n == MIG_COMPLETED) {
            qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
        }
    } while (n == MIG_COMPLETED);
    return n;
}

/* Cancel a migration started by start_endless_migration(), if it runs */
static void stop_migration(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate_cancel' }");
    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-migrate' }");
        const char *status = qdict_get_str(rsp, "status");
        bool over = g_str_equal(status, "cancelled") ||
                    g_str_equal(status, "completed") ||
                    g_str_equal(status, "failed");

        qobject_unref(rsp);
        if (over) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
}

/*
 * Measuring while a migration runs is supported in every mode but
 * dirty-bitmap without KVM (see test_bitmap_excludes_migration).  The
 * migration syncs the dirty log several times within the window; each sync
 * reports the pages dirtied since the previous one, which upstream added
 * up: a 64 MiB/s guest read several times that.
 */
static void test_measure_during_migration(const void *opaque)
{
    const AccuracyCase *c = opaque;
    DirtyGuest *dg = start_guest(c->ac, c->region_mib * MiB /
                                        DIRTY_GUEST_PAGE_SIZE);
    int64_t syncs = 0, n;
    bool valid = false, failed = false;
    QDict *info = NULL;
    double truth;
    int i;

    if (!dg) {
        return;
    }
    fit_region(dg, c->ms, dg->opts.region_pages);
    failed = start_endless_migration(dg->qts) == MIG_RING_FAILED;
    for (i = 0; i < MEASURE_TRIES && !valid && !failed; i++) {
        int64_t before = migration_sync_count(dg->qts);

        qobject_unref(info);
        info = try_measure_rewriting_guest(dg, c->mode, c->ms,
                                           c->mode ? 0 : MAX_SAMPLE_PAGES,
                                           &truth, &valid);
        n = migration_sync_count(dg->qts);
        if (before == MIG_COMPLETED || n == MIG_COMPLETED) {
            /* not measured during a migration: again, with a new one */
            valid = false;
            failed = start_endless_migration(dg->qts) == MIG_RING_FAILED;
            continue;
        }
        failed = before < 0 || n < 0;
        syncs = n - before;
    }
    if (failed) {
        /*
         * Only a ring overflow (a host kernel bug) ends the migration:
         * it fails rather than lose pages, and whatever ran meanwhile
         * completed.  Nothing more can be measured during it.
         */
        g_assert_nonnull(c->mode);
        g_assert_cmpstr(c->mode, ==, "dirty-ring");
        if (info) {
            g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        }
        qobject_unref(info);
        dirty_guest_quit(dg);
        return;
    }
    g_test_message("%" PRId64 " migration syncs during the measurement",
                   syncs);
    g_assert_true(valid);
    if (!c->mode) {
        g_assert_cmpfloat(fabs(qdict_get_int(info, "dirty-rate") - truth),
                          <=, sampling_tolerance(dg, truth,
                                                 MAX_SAMPLE_PAGES));
    } else if (g_str_equal(c->mode, "dirty-ring") &&
               qdict_get_uint(info, "dirty-ring-overflows")) {
        /* lost entries make the count a lower bound, not all memory */
        g_assert_cmpfloat(qdict_get_int(info, "dirty-rate"), <=,
                          truth * 1.05 + 0.5);
    } else {
        g_assert_cmpint(syncs, >=, 2);
        assert_counted_pages(dg, info, truth);
    }
    qobject_unref(info);
    stop_migration(dg->qts);
    dirty_guest_quit(dg);
}

/* Poll query-migrate on @qts until the migration is past its setup */
static void wait_migration_past_setup(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-migrate' }");
        bool setup = g_str_equal(qdict_get_str(rsp, "status"), "setup");

        qobject_unref(rsp);
        if (!setup) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
}

/* Poll query-migrate on @qts until the migration ends; its status */
static char *wait_migration_end(QTestState *qts, char **error)
{
    gint64 deadline = g_get_monotonic_time() + 120 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-migrate' }");
        const char *status = qdict_get_str(rsp, "status");

        if (g_str_equal(status, "completed") ||
            g_str_equal(status, "failed")) {
            char *ret = g_strdup(status);

            *error = qdict_haskey(rsp, "error-desc") ?
                     g_strdup(qdict_get_str(rsp, "error-desc")) : NULL;
            qobject_unref(rsp);
            return ret;
        }
        qobject_unref(rsp);
        if (g_get_monotonic_time() > deadline) {
            g_error("migration still not over after 120 s");
        }
        g_usleep(10 * 1000);
    }
}

/*
 * A real migration to a second QEMU, with a measurement in @mode (none if
 * NULL) running through it, the guest dirtying memory all along.  When it
 * completes, the destination's RAM must equal the source's byte for byte,
 * both stopped, and the destination guest must go on.  A migration may
 * only fail for a stated reason that leaves the guest running on the
 * source: a KVM dirty ring that lost entries (this host's kernel bug).
 */
static void test_migration_loses_nothing(const void *opaque)
{
    const AccuracyCase *c = opaque;
    g_autofree char *why = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *status = NULL;
    g_autofree char *error = NULL;
    g_autofree char *overflow_log = NULL;
    DirtyGuestOpts opts = {
        .accel = c->ac->accel,
        .dirty_ring_size = c->ac->dirty_ring_size,
        .mem_mb = 128,
        .shared_ram = true,
        .vcpus = c->vcpus,
    };
    DirtyGuest *src = start_guest_opts(&opts), *dst;
    DirtyGuestStats st;
    uint64_t differ;

    if (!src) {
        return;
    }
    dir = g_dir_make_tmp("dirtyrate-migration-XXXXXX", NULL);
    uri = g_strdup_printf("unix:%s/migrate.sock", dir);
    opts.incoming = uri;
    opts.start_stopped = true;
    dst = dirty_guest_start(&opts, &why);
    g_assert_nonnull(dst);

    if (c->ms) {
        dirtyrate_calc(src->qts, c->mode, c->ms,
                       c->mode ? 0 : MAX_SAMPLE_PAGES);
    }
    qtest_qmp_assert_success(src->qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'downtime-limit': 2000,"
                             " 'max-bandwidth': 10737418240 } }");
    qtest_qmp_assert_success(src->qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    if (c->ac->dirty_ring_size) {
        /*
         * Every overflow once the migration took its baseline in setup
         * (not before: one during setup is fine), see below
         */
        wait_migration_past_setup(src->qts);
        overflow_log = g_strdup_printf("%s/overflows.log", dir);
        g_free(qtest_hmp(src->qts, "logfile %s", overflow_log));
        g_free(qtest_hmp(src->qts, "trace-event kvm_dirty_ring_overflow on"));
    }
    status = wait_migration_end(src->qts, &error);
    if (c->ms) {
        QDict *info = dirtyrate_wait(src->qts);

        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        qobject_unref(info);
    }

    if (g_str_equal(status, "failed")) {
        g_test_message("migration failed: %s", error ? error : "?");
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error, "dirty ring overflowed"));
        /* the guest goes on where it was; the destination gave up */
        dirty_guest_wait_writes(src, 1000);
        qtest_set_expected_status(dst->qts, 1);
    } else {
        differ = dirty_guest_ram_differences(src, dst);
        g_test_message("%" PRIu64 " pages differ", differ);
        g_assert_cmpuint(differ, ==, 0);
        qtest_qmp_assert_success(dst->qts, "{ 'execute': 'cont' }");
        dirty_guest_read(dst, &st);
        dirty_guest_wait_writes(dst, 1000);
    }
    dirty_guest_quit(dst);
    dirty_guest_quit(src);

    /*
     * A ring that overflowed while the migration tracked dirty pages may
     * have lost pages that no memory comparison is sure to catch (they
     * may have been rewritten and resent since): such a migration must
     * fail.  (One that failed for it may have overflowed before the log
     * was switched on.)
     */
    if (overflow_log) {
        g_autofree char *text = NULL;
        unsigned overflows = 0;
        const char *p;

        g_assert_true(g_file_get_contents(overflow_log, &text, NULL, NULL));
        for (p = text; (p = strstr(p, "kvm_dirty_ring_overflow ")); p++) {
            overflows++;
        }
        g_test_message("%u ring overflows since the migration started",
                       overflows);
        if (g_str_equal(status, "completed")) {
            g_assert_cmpuint(overflows, ==, 0);
        }
        unlink(overflow_log);
    }
    rmdir(dir);
}

/*
 * per-block: true lists every migratable RAMBlock; the guest's region is
 * in pc.ram, which carries (nearly) all of the rate.
 */
static void test_per_block(const void *opaque)
{
    const AccuracyCase *c = opaque;
    DirtyGuest *dg = start_guest(c->ac, 0);
    g_autofree char *out = NULL;
    uint64_t pages = 0, samples = 0;
    const QListEntry *e;
    bool ram = false;
    QDict *info;

    if (!dg) {
        return;
    }
    if (c->mode) {
        qtest_qmp_assert_success(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                                 "'arguments': { 'calc-time': 1, "
                                 "'per-block': true, 'mode': %s } }",
                                 c->mode);
    } else {
        qtest_qmp_assert_success(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                                 "'arguments': { 'calc-time': 1, "
                                 "'per-block': true } }");
    }
    info = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "blocks"), e) {
        QDict *b = qobject_to(QDict, qlist_entry_obj(e));
        const char *id = qdict_get_str(b, "idstr");

        g_assert_cmpuint(qdict_get_uint(b, "size"), >, 0);
        if (c->mode) {
            g_assert_false(qdict_haskey(b, "sampled-pages"));
            pages += qdict_get_uint(b, "dirty-pages");
        } else {
            g_assert_false(qdict_haskey(b, "dirty-pages"));
            g_assert_cmpuint(qdict_get_uint(b, "dirty-samples"), <=,
                             qdict_get_uint(b, "sampled-pages"));
            samples += qdict_get_uint(b, "sampled-pages");
        }
        if (g_str_equal(id, "pc.ram")) {
            ram = true;
            g_assert_cmpuint(qdict_get_uint(b, "size"), ==,
                             dirty_guest_ram_bytes(dg));
            g_assert_cmpint(qdict_get_int(b, "dirty-rate"), >=,
                            qdict_get_int(info, "dirty-rate") * 9 / 10);
        }
    }
    g_assert_true(ram);
    if (c->mode) {
        /* pages outside migratable blocks are not listed */
        g_assert_cmpuint(pages, <=, qdict_get_uint(info, "dirty-pages"));
        g_assert_cmpuint(pages, >=, dg->opts.region_pages);
    } else {
        g_assert_cmpuint(samples, ==, qdict_get_uint(info, "sampled-pages"));
    }

    out = hmp(dg->qts, "info dirty_rate");
    g_test_message("%s", out);
    g_assert_nonnull(strstr(out, "\npc.ram "));
    qobject_unref(info);

    /* without per-block, no list */
    dirtyrate_calc(dg->qts, c->mode, 100, 0);
    info = dirtyrate_wait(dg->qts);
    g_assert_false(qdict_haskey(info, "blocks"));
    qobject_unref(info);

    /* HMP: calc_dirty_rate -p */
    g_free(out);
    out = hmp(dg->qts, c->mode ? (g_str_equal(c->mode, "dirty-ring") ?
                                  "calc_dirty_rate -r -m -p 200" :
                                  "calc_dirty_rate -b -m -p 200") :
                                 "calc_dirty_rate -m -p 200");
    g_assert_nonnull(strstr(out, "Starting dirty rate measurement"));
    info = dirtyrate_wait(dg->qts);
    g_assert_true(qdict_haskey(info, "blocks"));
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * Whether the guest writes at @min page writes per second or more in one
 * of three half-second windows: a frozen guest never does, while a guest
 * the host merely stalled for a moment does in the next window.
 */
static bool guest_reaches_rate(DirtyGuest *dg, double min, double *seen)
{
    int i;

    for (i = 0; i < 3; i++) {
        *seen = dirty_guest_write_rate(dg, 500);
        if (*seen >= min) {
            return true;
        }
    }
    return false;
}

/*
 * A guest that dirties memory faster than the ring drains must keep
 * running through and after dirty-ring measurements (it used to freeze
 * for good when the host overflowed the ring), and a dirty limit must
 * still throttle it and let go of it.
 */
static void test_ring_guest_keeps_running(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    double before, during;
    QDict *info;
    int i;

    if (!dg) {
        return;
    }
    before = dirty_guest_write_rate(dg, 1000);
    g_test_message("guest: %.0f page writes/s before", before);
    g_assert_cmpfloat(before, >, 0);

    for (i = 0; i < 3; i++) {
        double after;

        dirtyrate_calc(dg->qts, "dirty-ring", 1000, 0);
        info = dirtyrate_wait(dg->qts);
        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        qobject_unref(info);
        g_assert_true(guest_reaches_rate(dg, before / 2, &after));
        g_test_message("guest: %.0f page writes/s after measurement %d",
                       after, i + 1);
    }

    /* the limit takes effect within a few of its one-second periods */
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'set-vcpu-dirty-limit',"
                             " 'arguments': { 'dirty-rate': 1 } }");
    for (i = 0; i < 20; i++) {
        during = dirty_guest_write_rate(dg, 500);
        if (during < before / 2) {
            break;
        }
    }
    g_test_message("guest: %.0f page writes/s under a 1 MB/s dirty limit",
                   during);
    g_assert_cmpfloat(during, <, before / 2);
    qtest_qmp_assert_success(dg->qts,
                             "{ 'execute': 'cancel-vcpu-dirty-limit' }");
    g_assert_true(guest_reaches_rate(dg, before / 2, &during));
    dirty_guest_quit(dg);
}

/*
 * A vCPU plugged during a dirty-ring measurement: the measurement starts
 * its window again for the new set of vCPUs.  It used to stop the dirty
 * log a second time, which asserts (QEMU aborted), and to index its
 * per-vCPU records past their end.
 */
static void test_ring_vcpu_hotplug(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuestOpts opts = {
        .accel = ac->accel,
        .dirty_ring_size = ac->dirty_ring_size,
        .extra_args = "-smp 1,maxcpus=2",
    };
    const QListEntry *e;
    QDict *rsp, *props = NULL, *info;
    DirtyGuest *dg = start_guest_opts(&opts);
    int nvcpu = 0;

    if (!dg) {
        return;
    }
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'query-hotpluggable-cpus' }");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *slot = qobject_to(QDict, qlist_entry_obj(e));

        if (!qdict_haskey(slot, "qom-path")) {
            props = qdict_clone_shallow(qdict_get_qdict(slot, "props"));
            qdict_put_str(props, "driver", qdict_get_str(slot, "type"));
            qdict_put_str(props, "id", "hotplugged");
        }
    }
    qobject_unref(rsp);
    g_assert_nonnull(props);

    /*
     * Plug it well inside the window: the measurement notices a vCPU
     * set that changed between the window's start and its end.
     */
    dirtyrate_calc(dg->qts, "dirty-ring", 5000, 0);
    wait_for_status(dg->qts, "measuring");
    g_usleep(G_USEC_PER_SEC);
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'device_add', "
                             "'arguments': %p }", props);
    info = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "vcpu-dirty-rate"), e) {
        QDict *vcpu = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(qdict_get_int(vcpu, "id"), ==, nvcpu);
        nvcpu++;
    }
    g_assert_cmpint(nvcpu, ==, 2);
    qobject_unref(info);

    /* and the next measurement works as usual */
    dirtyrate_calc(dg->qts, "dirty-ring", 200, 0);
    info = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    qobject_unref(info);
    dirty_guest_quit(dg);
}

/*
 * Four vCPUs that all dirty memory fill their rings together: without a
 * dirty limit, the first to get the BQL reaps every ring and the others
 * then find nothing to collect.  None of them may take its ring for
 * stuck (a "recovery" of a healthy ring hands KVM slots it never
 * published, and the ring is full for good): every vCPU keeps writing
 * through and after ring measurements, and each has its rate.
 */
static void test_ring_busy_vcpus_keep_running(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuestOpts opts = {
        .accel = ac->accel,
        .dirty_ring_size = ac->dirty_ring_size,
        .vcpus = 4,
    };
    DirtyGuest *dg = start_guest_opts(&opts);
    int i, m;

    if (!dg) {
        return;
    }
    for (m = 0; m < 3; m++) {
        DirtyGuestStats a, b;
        const QListEntry *e;
        QDict *info;
        int n = 0;

        dirty_guest_read(dg, &a);
        dirtyrate_calc(dg->qts, "dirty-ring", 1000, 0);
        info = dirtyrate_wait(dg->qts);
        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "vcpu-dirty-rate"), e) {
            n++;
        }
        g_assert_cmpint(n, ==, 4);
        g_test_message("measurement %d: %" PRId64 " MiB/s, %" PRIu64
                       " ring overflows", m + 1,
                       qdict_get_int(info, "dirty-rate"),
                       qdict_get_uint(info, "dirty-ring-overflows"));
        qobject_unref(info);

        /* every vCPU wrote during it, and goes on writing after it */
        dirty_guest_read(dg, &b);
        for (i = 0; i < 4; i++) {
            g_assert_cmpuint(b.vcpu_writes[i], >, a.vcpu_writes[i]);
        }
        dirty_guest_wait_running(dg);
    }
    dirty_guest_quit(dg);
}

/*
 * Stands in for a healthy host with many busy vCPUs, which this one is
 * not (its rings overflow, and the stalls that follow hide a misjudged
 * one): with x-dirty-ring-reap-first, every ring-full exit finds its
 * ring already reaped, as it does when vCPUs fill their rings together
 * and another one takes the BQL first.  Such an exit made progress:
 * taking it for a stall ran the overflow recovery on healthy rings,
 * which handed KVM slots it never published.  The trace event
 * kvm_dirty_ring_reaped_first says how each exit was judged.
 */
static void test_ring_reaped_by_another_vcpu_is_no_stall(const void *opaque)
{
    const AccelCase *ac = opaque;
    g_autofree char *log = NULL;
    g_autofree char *args = NULL;
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    DirtyGuestOpts opts = {
        .accel = ac->accel,
        .dirty_ring_size = ac->dirty_ring_size,
        .accel_props = "x-dirty-ring-reap-first=on",
        .vcpus = 4,
    };
    DirtyGuest *dg;
    unsigned raced = 0, misjudged = 0;
    int fd, i;

    fd = g_file_open_tmp("dirtyrate-trace-XXXXXX", &log, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    args = g_strdup_printf("-trace kvm_dirty_ring_reaped_first -D %s", log);
    opts.extra_args = args;
    dg = start_guest_opts(&opts);
    if (!dg) {
        unlink(log);
        return;
    }
    for (i = 0; i < 2; i++) {
        DirtyGuestStats a, b;
        QDict *info;
        int v;

        dirty_guest_read(dg, &a);
        dirtyrate_calc(dg->qts, "dirty-ring", 1000, 0);
        info = dirtyrate_wait(dg->qts);
        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        qobject_unref(info);
        dirty_guest_read(dg, &b);
        for (v = 0; v < 4; v++) {
            g_assert_cmpuint(b.vcpu_writes[v], >, a.vcpu_writes[v]);
        }
    }
    dirty_guest_quit(dg);

    g_assert_true(g_file_get_contents(log, &text, NULL, NULL));
    unlink(log);
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        const char *ev = strstr(lines[i], "kvm_dirty_ring_reaped_first ");
        int vcpu, progress, stalled;

        if (!ev || sscanf(ev, "kvm_dirty_ring_reaped_first vcpu %d: reaped "
                          "before its full exit was handled (progress %d), "
                          "counted as a stall %d",
                          &vcpu, &progress, &stalled) != 3) {
            continue;
        }
        if (progress) {
            raced++;
            misjudged += stalled;
        }
    }
    g_test_message("%u ring-full exits found their ring reaped by another, "
                   "%u of them counted as a stall", raced, misjudged);
    /* the race was produced, or the test proves nothing */
    g_assert_cmpuint(raced, >, 0);
    g_assert_cmpuint(misjudged, ==, 0);
}

/* The members of a result that no rejected command may change */
static void assert_same_result(QDict *a, QDict *b)
{
    static const char *const keys[] = {
        "status", "start-time", "calc-time", "calc-time-unit",
        "sample-pages", "mode", "dirty-rate",
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(keys); i++) {
        QObject *va = qdict_get(a, keys[i]);
        QObject *vb = qdict_get(b, keys[i]);

        g_assert(va && vb);
        g_assert_true(qobject_is_equal(va, vb));
    }
}

static void assert_calc_fails(QTestState *qts, QDict *before,
                              const char *expect, const char *args)
{
    QDict *rsp, *after;
    const char *desc;

    rsp = qtest_qmp(qts, "{ 'execute': 'calc-dirty-rate', 'arguments': %p }",
                    qobject_from_json(args, &error_abort));
    g_assert_true(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    if (!strstr(desc, expect)) {
        g_error("calc-dirty-rate %s: error '%s', expected '%s'",
                args, desc, expect);
    }
    qobject_unref(rsp);

    after = dirtyrate_query(qts);
    assert_same_result(before, after);
    qobject_unref(after);
}

/*
 * Without KVM, dirty-bitmap mode shares the migration dirty bitmap: a
 * measurement blocks migration, and a running migration refuses it.
 */
static void test_bitmap_excludes_migration(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *rsp, *info;
    const char *desc;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, "dirty-bitmap", 2000, 0);
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'migrate', 'arguments': "
                    "{ 'uri': 'exec:cat >/dev/null' } }");
    g_assert_true(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    g_assert_nonnull(strstr(desc, "dirty-bitmap dirty rate measurement"));
    qobject_unref(rsp);
    info = dirtyrate_wait(dg->qts);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate"), >, 0);

    /* A slow migration that stays active while we try to measure */
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'max-bandwidth': 65536 } }");
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': 'exec:cat >/dev/null' } }");
    assert_calc_fails(dg->qts, info, "while a migration or COLO is running",
                      "{ 'calc-time': 1, 'mode': 'dirty-bitmap' }");
    qobject_unref(info);
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'migrate_cancel' }");
    dirty_guest_quit(dg);
}

static void test_query_before_calc(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *info;

    if (!dg) {
        return;
    }
    info = dirtyrate_query(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "unstarted");
    g_assert_false(qdict_haskey(info, "dirty-rate"));
    g_assert_false(qdict_haskey(info, "vcpu-dirty-rate"));
    qobject_unref(info);
    dirty_guest_quit(dg);
}

static void test_bad_input_keeps_result(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    const char *range = "Calculation time is out of range [50ms, 60000ms]";
    const char *spages = "sample-pages is out of range[128, 16384]";
    QDict *prev;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, NULL, 100, 0);
    prev = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(prev, "status"), ==, "measured");

    assert_calc_fails(dg->qts, prev, range, "{ 'calc-time': 0 }");
    assert_calc_fails(dg->qts, prev, range, "{ 'calc-time': -1 }");
    assert_calc_fails(dg->qts, prev, range, "{ 'calc-time': 61 }");
    /* huge values must not wrap into range when turned into ms */
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': 18446744073709602 }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': 9223372036854775807 }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': -9223372036854775808 }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': -18446744073709551 }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': 9223372036854775807, "
                      "'calc-time-unit': 'millisecond' }");
    assert_calc_fails(dg->qts, prev, "'calc-time'",
                      "{ 'calc-time': 18446744073709551615 }");
    assert_calc_fails(dg->qts, prev, "'calc-time'",
                      "{ 'calc-time': '1' }");
    assert_calc_fails(dg->qts, prev, "'calc-time'",
                      "{ 'calc-time': 1.5 }");
    assert_calc_fails(dg->qts, prev, "'calc-time-unit'",
                      "{ 'calc-time': 1, 'calc-time-unit': 'hour' }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': 49, 'calc-time-unit': 'millisecond' }");
    assert_calc_fails(dg->qts, prev, range,
                      "{ 'calc-time': 60001, "
                      "'calc-time-unit': 'millisecond' }");
    assert_calc_fails(dg->qts, prev, spages,
                      "{ 'calc-time': 1, 'sample-pages': 127 }");
    assert_calc_fails(dg->qts, prev, spages,
                      "{ 'calc-time': 1, 'sample-pages': 16385 }");
    assert_calc_fails(dg->qts, prev, spages,
                      "{ 'calc-time': 1, 'sample-pages': 0 }");
    assert_calc_fails(dg->qts, prev, spages,
                      "{ 'calc-time': 1, 'sample-pages': -1 }");
    assert_calc_fails(dg->qts, prev, spages,
                      "{ 'calc-time': 1, "
                      "'sample-pages': 9223372036854775807 }");
    assert_calc_fails(dg->qts, prev, "'per-block'",
                      "{ 'calc-time': 1, 'per-block': 1 }");
    assert_calc_fails(dg->qts, prev, "'calc-time'", "{ }");
    assert_calc_fails(dg->qts, prev,
                      "sample-pages is used only in page-sampling mode",
                      "{ 'calc-time': 1, 'sample-pages': 512, "
                      "'mode': 'dirty-bitmap' }");
    assert_calc_fails(dg->qts, prev, "mode dirty-ring is not enabled",
                      "{ 'calc-time': 1, 'mode': 'dirty-ring' }");
    assert_calc_fails(dg->qts, prev, "'mode'",
                      "{ 'calc-time': 1, 'mode': 'dirty-everything' }");
    qobject_unref(prev);
    dirty_guest_quit(dg);
}

/* What no rejected command may change: the dirty rate and the recorder */
static QDict *monitored_state(QTestState *qts)
{
    QDict *state = qdict_new();

    qdict_put(state, "dirty-rate", dirtyrate_query(qts));
    qdict_put(state, "checkpoint",
              qtest_qmp_assert_success_ref(qts,
                                           "{ 'execute': 'info_checkpoint' }"));
    return state;
}

static void assert_state_unchanged(QDict *before, QDict *after)
{
    QDict *cb = qdict_get_qdict(before, "checkpoint");
    QDict *ca = qdict_get_qdict(after, "checkpoint");

    assert_same_result(qdict_get_qdict(before, "dirty-rate"),
                       qdict_get_qdict(after, "dirty-rate"));
    g_assert_cmpint(qdict_get_int(cb, "tot_num"), ==,
                    qdict_get_int(ca, "tot_num"));
    g_assert_cmpstr(qdict_get_str(cb, "role"), ==, qdict_get_str(ca, "role"));
}

/* Send @cmd with @args (JSON); it must fail, naming @expect if not NULL */
static void assert_command_fails(QTestState *qts, QDict *before,
                                 const char *cmd, const char *args,
                                 const char *expect)
{
    QDict *rsp, *after;
    const char *desc;

    rsp = qtest_qmp(qts, "{ 'execute': %s, 'arguments': %p }", cmd,
                    qobject_from_json(args, &error_abort));
    if (!qdict_haskey(rsp, "error")) {
        g_error("%s %s was accepted", cmd, args);
    }
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    if (expect && !strstr(desc, expect)) {
        g_error("%s %s: error '%s', expected '%s'", cmd, args, desc, expect);
    }
    qobject_unref(rsp);
    after = monitored_state(qts);
    assert_state_unchanged(before, after);
    qobject_unref(after);
}

/* JSON values of every type but @json_type (query-qmp-schema's names) */
static const char *const *wrong_values(const char *json_type)
{
    static const char *const for_int[] = {
        "'1'", "true", "1.5", "{}", "[]", "null",
        "18446744073709551616", NULL
    };
    static const char *const for_string[] = {
        "1", "true", "{}", "[]", "null", "'no-such-value'", NULL
    };
    static const char *const for_bool[] = {
        "1", "'true'", "{}", "[]", "null", NULL
    };
    static const char *const for_other[] = { "1", "'x'", "null", NULL };

    if (g_str_equal(json_type, "int")) {
        return for_int;
    } else if (g_str_equal(json_type, "string")) {
        return for_string;
    } else if (g_str_equal(json_type, "boolean")) {
        return for_bool;
    }
    return for_other;
}

static const char *json_type_of(GHashTable *types, const char *name)
{
    QDict *t = g_hash_table_lookup(types, name);
    const char *meta = qdict_get_str(t, "meta-type");

    if (g_str_equal(meta, "builtin")) {
        return qdict_get_str(t, "json-type");
    } else if (g_str_equal(meta, "enum")) {
        return "string";
    }
    return meta;
}

/*
 * Every argument of every command this series adds or changes, given a
 * value of the wrong type, and every command given an argument it does
 * not have: a clear error, and nothing changes.  The arguments and their
 * types come from query-qmp-schema, so new members are covered as they
 * are added.  Out-of-range values are in test_bad_input_keeps_result.
 */
static void test_bad_input_table(const void *opaque)
{
    static const struct {
        const char *name;
        const char *base;           /* valid arguments to start from */
    } commands[] = {
        { "calc-dirty-rate", "{ 'calc-time': 1 }" },
        { "query-dirty-rate", "{}" },
        { "cancel-dirty-rate", "{}" },
        { "info_checkpoint", "{}" },
        { "reset_checkpoint", "{}" },
    };
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    g_autoptr(GHashTable) types = NULL;
    const QListEntry *e;
    QDict *schema, *before;
    int i, checked = 0;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, NULL, 100, 0);
    qobject_unref(dirtyrate_wait(dg->qts));
    before = monitored_state(dg->qts);

    schema = qtest_qmp(dg->qts, "{ 'execute': 'query-qmp-schema' }");
    types = g_hash_table_new(g_str_hash, g_str_equal);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(schema, "return"), e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));

        g_hash_table_insert(types, (gpointer)qdict_get_str(t, "name"), t);
    }

    for (i = 0; i < ARRAY_SIZE(commands); i++) {
        QDict *cmd = g_hash_table_lookup(types, commands[i].name);
        QDict *args;
        g_autofree char *extra = NULL;

        g_assert_nonnull(cmd);
        args = g_hash_table_lookup(types, qdict_get_str(cmd, "arg-type"));
        QLIST_FOREACH_ENTRY(qdict_get_qlist(args, "members"), e) {
            QDict *m = qobject_to(QDict, qlist_entry_obj(e));
            const char *member = qdict_get_str(m, "name");
            const char *const *v;

            for (v = wrong_values(json_type_of(types,
                                               qdict_get_str(m, "type")));
                 *v; v++) {
                QDict *call = qobject_to(QDict,
                    qobject_from_json(commands[i].base, &error_abort));
                g_autoptr(GString) json = NULL;

                qdict_put_obj(call, member,
                              qobject_from_json(*v, &error_abort));
                json = qobject_to_json(QOBJECT(call));
                assert_command_fails(dg->qts, before, commands[i].name,
                                     json->str, NULL);
                qobject_unref(call);
                checked++;
            }
        }
        extra = g_strdup_printf("%.*s%s'no-such-argument': 1 }",
                                (int)strlen(commands[i].base) - 1,
                                commands[i].base,
                                strlen(commands[i].base) > 2 ? ", " : "");
        assert_command_fails(dg->qts, before, commands[i].name, extra,
                             "no-such-argument");
        checked++;
    }
    g_test_message("%d bad calls refused", checked);
    qobject_unref(schema);
    qobject_unref(before);
    dirty_guest_quit(dg);
}

/*
 * HMP: bad numbers and flags print an error and start nothing.  A
 * sample count of -1 is a number like any other, not "the default".
 */
static void test_hmp_bad_input(const void *opaque)
{
    static const char *const bad[] = {
        "calc_dirty_rate 0", "calc_dirty_rate -1", "calc_dirty_rate 61",
        "calc_dirty_rate -m 49", "calc_dirty_rate -m 60001",
        "calc_dirty_rate 18446744073709602",
        "calc_dirty_rate 99999999999999999999",
        "calc_dirty_rate x", "calc_dirty_rate 1 0", "calc_dirty_rate 1 -1",
        "calc_dirty_rate 1 16385", "calc_dirty_rate -r 1",
        "calc_dirty_rate -r -b 1", "calc_dirty_rate -b 1 512",
    };
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *before;
    int i;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, NULL, 100, 0);
    qobject_unref(dirtyrate_wait(dg->qts));
    before = monitored_state(dg->qts);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *out = hmp(dg->qts, bad[i]);
        QDict *after = monitored_state(dg->qts);

        g_test_message("%s: %s", bad[i], out);
        g_assert_null(strstr(out, "Starting dirty rate measurement"));
        g_assert_cmpstr(out, !=, "");
        assert_state_unchanged(before, after);
        qobject_unref(after);
    }
    qobject_unref(before);
    dirty_guest_quit(dg);
}

static void wait_for_status(QTestState *qts, const char *status)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    for (;;) {
        QDict *info = dirtyrate_query(qts);
        bool match = g_str_equal(qdict_get_str(info, "status"), status);

        qobject_unref(info);
        if (match) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

/*
 * @rsp, the answer to a second calc-dirty-rate, refuses it because a
 * measurement is running; the running one, a 1000 ms page-sampling
 * measurement, then completes with its own parameters.
 */
static void assert_first_calc_wins(QTestState *qts, QDict *rsp)
{
    QDict *info;

    g_assert_true(qdict_haskey(rsp, "error"));
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "already being measured"));
    qobject_unref(rsp);

    info = dirtyrate_wait(qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "page-sampling");
    g_assert_cmpint(qdict_get_int(info, "calc-time"), >=, 1000);
    qobject_unref(info);
}

static void test_second_calc_refused(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *rsp;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, NULL, 1000, 0);
    wait_for_status(dg->qts, "measuring");
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                    "'arguments': { 'calc-time': 100, "
                    "'calc-time-unit': 'millisecond', "
                    "'mode': 'dirty-bitmap' } }");
    assert_first_calc_wins(dg->qts, rsp);
    dirty_guest_quit(dg);
}

/*
 * Two calc-dirty-rate commands sent back to back, without waiting for the
 * first to answer: the second must be refused, and the measurement must
 * run with the first one's parameters.
 */
static void test_back_to_back_calc_refused(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *first;

    if (!dg) {
        return;
    }
    qtest_qmp_send(dg->qts, "{ 'execute': 'calc-dirty-rate', 'arguments': "
                   "{ 'calc-time': 1000, 'calc-time-unit': 'millisecond' } }");
    qtest_qmp_send(dg->qts, "{ 'execute': 'calc-dirty-rate', 'arguments': "
                   "{ 'calc-time': 100, 'calc-time-unit': 'millisecond', "
                   "'mode': 'dirty-bitmap' } }");
    first = qtest_qmp_receive(dg->qts);
    g_assert_true(qdict_haskey(first, "return"));
    qobject_unref(first);
    assert_first_calc_wins(dg->qts, qtest_qmp_receive(dg->qts));
    dirty_guest_quit(dg);
}

/* A measurement announces its end with DIRTY_RATE_COMPLETED */
static void test_completion_event(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *ev, *data, *info;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, "dirty-bitmap", 200, 0);
    ev = qtest_qmp_eventwait_ref(dg->qts, "DIRTY_RATE_COMPLETED");
    data = qdict_get_qdict(ev, "data");
    info = dirtyrate_query(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_false(qdict_get_bool(data, "cancelled"));
    g_assert_false(qdict_haskey(info, "cancelled"));
    g_assert_cmpstr(qdict_get_str(data, "mode"), ==, "dirty-bitmap");
    /* the same length, in the same unit, as query-dirty-rate says */
    g_assert_cmpstr(qdict_get_str(data, "calc-time-unit"), ==,
                    qdict_get_str(info, "calc-time-unit"));
    g_assert_cmpint(qdict_get_int(data, "calc-time"), ==,
                    qdict_get_int(info, "calc-time"));
    g_assert_cmpint(qdict_get_int(data, "calc-time"), >=, 200);
    g_assert_cmpint(qdict_get_int(data, "dirty-rate"), ==,
                    qdict_get_int(info, "dirty-rate"));
    g_assert_cmpint(qdict_get_int(data, "dirty-rate"), >, 0);
    qobject_unref(info);
    qobject_unref(ev);
    dirty_guest_quit(dg);
}

/*
 * The statuses libvirt (9.0 to current) accepts: anything else fails
 * "virsh domstats --dirtyrate" with "Unknown dirty rate status".
 */
static void assert_libvirt_status(QDict *info)
{
    const char *status = qdict_get_str(info, "status");

    g_assert_true(g_str_equal(status, "unstarted") ||
                  g_str_equal(status, "measuring") ||
                  g_str_equal(status, "measured"));
}

/*
 * cancel-dirty-rate ends a 60 s window at once, and nothing else; the
 * status stays one that libvirt knows.
 */
static void test_cancel(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *rsp, *ev, *info;
    gint64 t0;

    if (!dg) {
        return;
    }
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'cancel-dirty-rate' }");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "no dirty rate measurement is running"));
    qobject_unref(rsp);

    t0 = g_get_monotonic_time();
    dirtyrate_calc(dg->qts, "dirty-bitmap", 60000, 0);
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'cancel-dirty-rate' }");
    ev = qtest_qmp_eventwait_ref(dg->qts, "DIRTY_RATE_COMPLETED");
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 30 * G_USEC_PER_SEC);
    g_assert_true(qdict_get_bool(qdict_get_qdict(ev, "data"), "cancelled"));
    g_assert_false(qdict_haskey(qdict_get_qdict(ev, "data"), "dirty-rate"));
    qobject_unref(ev);

    info = dirtyrate_query(dg->qts);
    assert_libvirt_status(info);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "unstarted");
    g_assert_true(qdict_get_bool(info, "cancelled"));
    g_assert_false(qdict_haskey(info, "dirty-rate"));
    qobject_unref(info);

    /* nothing runs any more: a second cancel is refused */
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'cancel-dirty-rate' }");
    g_assert_true(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);

    /* the next measurement is not cut short by the old cancel */
    dirtyrate_calc(dg->qts, "dirty-bitmap", 300, 0);
    info = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_false(qdict_haskey(info, "cancelled"));
    g_assert_cmpint(qdict_get_int(info, "calc-time"), >=, 300);
    qobject_unref(info);
    dirty_guest_quit(dg);
}

static void test_ring_refuses_bitmap(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    QDict *prev;

    if (!dg) {
        return;
    }
    dirtyrate_calc(dg->qts, "dirty-ring", 100, 0);
    prev = dirtyrate_wait(dg->qts);
    assert_calc_fails(dg->qts, prev, "mode dirty-bitmap is not enabled",
                      "{ 'calc-time': 1, 'mode': 'dirty-bitmap' }");
    qobject_unref(prev);
    dirty_guest_quit(dg);
}

/* Run an HMP command; the output with "\r\n" line ends turned into "\n" */
static char *hmp(QTestState *qts, const char *cmd)
{
    char *out = qtest_hmp(qts, "%s", cmd);
    char *r, *w;

    for (r = w = out; *r; r++) {
        if (*r != '\r') {
            *w++ = *r;
        }
    }
    *w = 0;
    return out;
}

/* The number after @label in HMP output, or -1 */
static int64_t hmp_number(const char *out, const char *label)
{
    const char *p = strstr(out, label);

    if (!p || !g_ascii_isdigit(p[strlen(label)])) {
        return -1;
    }
    return g_ascii_strtoll(p + strlen(label), NULL, 10);
}

/*
 * calc_dirty_rate @flags @period, then check that info dirty_rate shows
 * what query-dirty-rate returns, in the units it names.
 */
static void hmp_measure(DirtyGuest *dg, const char *flags, const char *period,
                        const char *mode)
{
    g_autofree char *out = NULL;
    g_autofree char *info_out = NULL;
    g_autofree char *expect = g_strdup_printf("Mode: %s\n", mode);
    g_autofree char *cmd = g_strdup_printf("calc_dirty_rate %s %s", flags,
                                           period);
    g_autofree char *started = NULL;
    bool ms = strstr(flags, "-m") != NULL;
    QDict *info;

    started = g_strdup_printf("Starting dirty rate measurement with period "
                              "%s %s", period, ms ? "ms" : "seconds");
    out = hmp(dg->qts, cmd);
    g_assert_nonnull(strstr(out, started));
    info = dirtyrate_wait(dg->qts);
    info_out = hmp(dg->qts, "info dirty_rate");
    g_test_message("info dirty_rate after '%s': %s", cmd, info_out);
    g_assert_nonnull(strstr(info_out, "Status: measured\n"));
    g_assert_nonnull(strstr(info_out, expect));
    g_assert_cmpint(hmp_number(info_out, "Dirty rate: "), ==,
                    qdict_get_int(info, "dirty-rate"));
    g_assert_cmpint(hmp_number(info_out, "Dirty rate: "), >, 0);
    /* the period in milliseconds, the start time in seconds */
    g_assert_nonnull(strstr(info_out, " (ms)\nMode"));
    g_assert_cmpint(hmp_number(info_out, "Period: "), ==,
                    qdict_get_int(info, "calc-time"));
    g_assert_cmpint(qdict_get_int(info, "calc-time"), >=,
                    g_ascii_strtoll(period, NULL, 10) * (ms ? 1 : 1000));
    g_assert_nonnull(strstr(info_out, " (s)\n"));
    g_assert_cmpint(hmp_number(info_out, "Start Time: "), ==,
                    qdict_get_int(info, "start-time"));
    if (g_str_equal(mode, "dirty-ring")) {
        g_assert_nonnull(strstr(info_out, "vcpu[0], Dirty rate: "));
    }
    qobject_unref(info);
}

static void test_hmp(const void *opaque)
{
    const AccelCase *ac = opaque;
    DirtyGuest *dg = start_guest(ac, 0);
    g_autofree char *out = NULL;
    g_autofree char *both = NULL;
    g_autofree char *bad = NULL;

    if (!dg) {
        return;
    }
    out = hmp(dg->qts, "info dirty_rate");
    g_assert_nonnull(strstr(out, "Status: unstarted\n"));
    g_assert_nonnull(strstr(out, "Dirty rate: (not ready)\n"));

    bad = hmp(dg->qts, "calc_dirty_rate 0");
    g_assert_nonnull(strstr(bad, "Incorrect period length specified!"));
    both = hmp(dg->qts, "calc_dirty_rate -r -b 1");
    g_assert_nonnull(strstr(both, "Either dirty ring or dirty bitmap"));

    hmp_measure(dg, "", "1", "page-sampling");
    hmp_measure(dg, "-m", "300", "page-sampling");
    if (ac->dirty_ring_size) {
        hmp_measure(dg, "-r", "1", "dirty-ring");
    } else {
        g_autofree char *ring = hmp(dg->qts, "calc_dirty_rate -r 1");

        g_assert_nonnull(strstr(ring, "mode dirty-ring is not enabled"));
        hmp_measure(dg, "-b", "1", "dirty-bitmap");
        hmp_measure(dg, "-b -m", "250", "dirty-bitmap");
    }
    dirty_guest_quit(dg);
}

static void add_test(const char *what, const AccelCase *ac,
                     void (*fn)(const void *))
{
    g_autofree char *path = g_strdup_printf("/dirtyrate/%s/%s", ac->name,
                                            what);

    qtest_add_data_func(path, ac, fn);
}

static void add_case(const char *what, const AccuracyCase *c,
                     void (*fn)(const void *))
{
    g_autofree char *path = g_strdup_printf("/dirtyrate/%s/%s", c->ac->name,
                                            what);

    qtest_add_data_func(path, c, fn);
}

int main(int argc, char **argv)
{
    static const AccelCase *const plain[] = { &accel_tcg, &accel_kvm };
    static const AccuracyCase counting[] = {
        { &accel_tcg, "dirty-bitmap" },
        { &accel_kvm, "dirty-bitmap" },
        { &accel_kvm_ring, "dirty-ring" },
    };
    static const AccuracyCase all_modes[] = {
        { &accel_tcg, NULL, 1000, 64 },
        { &accel_tcg, "dirty-bitmap", 1000, 64 },
        { &accel_kvm, NULL, 1000, 64 },
        { &accel_kvm, "dirty-bitmap", 1000, 64 },
        { &accel_kvm_ring, "dirty-ring", 1000, 64 },
    };
    /* ms 0: no measurement */
    static const AccuracyCase migrating[] = {
        { &accel_tcg, NULL, 0 },
        { &accel_tcg, NULL, 5000 },
        { &accel_kvm, NULL, 0 },
        { &accel_kvm, NULL, 5000 },
        { &accel_kvm, "dirty-bitmap", 5000 },
        { &accel_kvm_ring, NULL, 0 },
        { &accel_kvm_ring, "dirty-ring", 5000 },
        { &accel_tcg, NULL, 5000, 0, 4 },
        { &accel_kvm, "dirty-bitmap", 5000, 0, 4 },
        { &accel_kvm_ring, "dirty-ring", 5000, 0, 4 },
    };
    int i;

    g_test_init(&argc, &argv, NULL);

    for (i = 0; i < ARRAY_SIZE(plain); i++) {
        add_test("page-sampling/matches-guest-within-sampling-error",
                 plain[i], test_sampling_matches_guest);
        add_test("page-sampling/reads-zero-while-guest-is-stopped",
                 plain[i], test_sampling_zero_when_stopped);
        add_test("dirty-bitmap/matches-guest-within-5-percent",
                 plain[i], test_bitmap_matches_guest);
        add_test("hmp/calc-and-info-show-the-result", plain[i], test_hmp);
    }
    add_test("dirty-bitmap/excludes-a-running-migration", &accel_tcg,
             test_bitmap_excludes_migration);
    add_test("dirty-ring/unique-pages-and-vcpu-event-rates", &accel_kvm_ring,
             test_ring_vcpu_rates_sum);
    add_test("dirty-ring/guest-keeps-running-through-measurements",
             &accel_kvm_ring, test_ring_guest_keeps_running);
    add_test("dirty-ring/refuses-dirty-bitmap-mode", &accel_kvm_ring,
             test_ring_refuses_bitmap);
    add_test("dirty-ring/vcpu-plugged-during-a-measurement", &accel_kvm_ring,
             test_ring_vcpu_hotplug);
    add_test("dirty-ring/four-busy-vcpus-keep-running", &accel_kvm_ring,
             test_ring_busy_vcpus_keep_running);
    add_test("dirty-ring/a-ring-reaped-by-another-vcpu-is-no-stall",
             &accel_kvm_ring, test_ring_reaped_by_another_vcpu_is_no_stall);
    add_test("hmp/calc-and-info-show-the-result", &accel_kvm_ring,
             test_hmp);

    for (i = 0; i < ARRAY_SIZE(counting); i++) {
        static const struct {
            int64_t ms;
            uint32_t region_mib;
        } rates[] = { { 100, 8 }, { 1000, 8 }, { 1000, 64 }, { 10000, 64 } };
        int j;

        for (j = 0; j < ARRAY_SIZE(rates); j++) {
            AccuracyCase *c = g_new0(AccuracyCase, 1);
            g_autofree char *what = NULL;

            c->ac = counting[i].ac;
            c->mode = counting[i].mode;
            c->ms = rates[j].ms;
            c->region_mib = rates[j].region_mib;
            what = g_strdup_printf("%s/accuracy/up-to-%" PRIu32 "MiB-in-%"
                                   PRId64 "ms", c->mode, c->region_mib,
                                   c->ms);
            add_case(what, c, test_counting_accuracy);
        }
    }
    for (i = 0; i < ARRAY_SIZE(all_modes); i++) {
        const AccuracyCase *c = &all_modes[i];
        const char *mode = c->mode ? c->mode : "page-sampling";
        g_autofree char *what = g_strdup_printf("%s/per-block", mode);

        add_case(what, c, test_per_block);
        g_free(what);
        what = g_strdup_printf("%s/during-a-migration", mode);
        if (c->ac != &accel_tcg || !c->mode) {
            add_case(what, c, test_measure_during_migration);
        }
    }

    for (i = 0; i < ARRAY_SIZE(migrating); i++) {
        const AccuracyCase *c = &migrating[i];
        g_autofree char *what = g_strdup_printf(
            "migration/%s%s/destination-memory-equals-source",
            c->ms ? (c->mode ? c->mode : "page-sampling") : "no-measurement",
            c->vcpus > 1 ? "-4-vcpus" : "");

        add_case(what, c, test_migration_loses_nothing);
    }

    add_test("page-sampling/interval-covers-the-truth-in-most-runs",
             &accel_tcg, test_sampling_interval_covers_truth);
    add_test("page-sampling/finds-the-last-page-of-a-block-dirty",
             &accel_tcg, test_sampling_finds_the_last_page);
    add_test("page-sampling/old-style-call-keeps-its-members", &accel_tcg,
             test_old_style_call_members);
    add_test("events/completion-event-carries-the-result", &accel_tcg,
             test_completion_event);
    add_test("cancel/ends-a-long-measurement-at-once", &accel_tcg,
             test_cancel);
    add_test("validation/query-before-any-calc-is-unstarted", &accel_tcg,
             test_query_before_calc);
    add_test("validation/bad-input-is-refused-and-keeps-the-result",
             &accel_tcg, test_bad_input_keeps_result);
    add_test("validation/wrong-types-for-every-argument-are-refused",
             &accel_tcg, test_bad_input_table);
    add_test("validation/hmp-bad-input-starts-nothing", &accel_tcg,
             test_hmp_bad_input);
    add_test("validation/second-calc-while-measuring-is-refused",
             &accel_tcg, test_second_calc_refused);
    add_test("validation/back-to-back-calcs-start-only-the-first",
             &accel_tcg, test_back_to_back_calc_refused);

    return g_test_run();
}
