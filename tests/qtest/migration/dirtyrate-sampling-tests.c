/*
 * QTest for guest dirty-rate measurement: page sampling, its
 * estimate, its confidence interval and the pages it draws.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "migration/dirtyrate-framework.h"

/*
 * At the maximum sample-pages, with a guest that dirties three quarters
 * of its RAM, sampling error is about 1 % (one standard deviation): the
 * estimate must be within 5 % of the truth and inside its own interval.
 */
static void test_sampling_matches_guest(DirtyGuest *dg,
                                        const DirtyrateCase *c)
{
    double truth, tol;
    int64_t rate;
    QDict *info;

    info = dirtyrate_measure(dg, NULL, 1000, DIRTYRATE_MAX_SAMPLE_PAGES,
                             &truth);
    g_assert_cmpint(qdict_get_int(info, "sample-pages"), ==,
                    DIRTYRATE_MAX_SAMPLE_PAGES);
    rate = qdict_get_int(info, "dirty-rate");
    tol = dirtyrate_sampling_tolerance(dg, truth,
                                       DIRTYRATE_MAX_SAMPLE_PAGES);
    g_assert_cmpfloat(fabs(rate - truth), <=, tol);
    g_assert_cmpfloat(fabs(rate - truth), <=, truth * 0.05 + 1);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate-low"), <=, rate);
    g_assert_cmpint(qdict_get_int(info, "dirty-rate-high"), >=, rate);
    qobject_unref(info);
}

/*
 * Many short page-sampling measurements: the reported 95 % interval must
 * cover the truth in most of them.  For 128 samples a quarter of which
 * are dirty, the Wilson interval covers the truth with probability
 * 0.948; on a TCG guest it was seen to cover it in 275 of 300 runs
 * (0.917: the samples vary a little more than independent draws would).
 * Runs are independent, so fewer than 47 of 60 happen about once in 3000
 * runs at 0.917, while an interval half as wide as it should be (coverage
 * about 0.67) gets 47 once in 25.  A run in which the guest was stalled
 * (its truth is unknown) is repeated, with the region fitted again to its
 * speed then, up to COVERAGE_MAX_TRIES runs in all.
 */
#define COVERAGE_RUNS       60
#define COVERAGE_MIN_HITS   47
#define COVERAGE_MAX_TRIES  90

static void test_sampling_interval_covers_truth(DirtyGuest *dg,
                                                const DirtyrateCase *c)
{
    uint32_t max_pages = dg->opts.region_pages;
    int runs = 0, tries = 0, hits = 0;

    dirtyrate_fit_region(dg, 100, max_pages);
    while (runs < COVERAGE_RUNS) {
        double truth;
        bool valid;
        QDict *info = dirtyrate_try_measure(dg, NULL, 100, 512,
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
            /* the host runs the guest slower now: a region it can keep */
            dirtyrate_fit_region(dg, 100, max_pages);
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
}

/*
 * What libvirt sends (calc-time in seconds, no mode) and reads: the
 * members it knows keep their names and types; page sampling adds only the
 * documented new ones.
 */
static void test_old_style_call_members(DirtyGuest *dg, const DirtyrateCase *c)
{
    static const char *const members[] = {
        "status", "start-time", "calc-time", "calc-time-unit",
        "sample-pages", "mode", "dirty-rate",
        "sampled-pages", "dirty-samples", "dirty-rate-low", "dirty-rate-high",
    };
    const QDictEntry *e;
    QDict *info;
    int i;

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

static void test_sampling_finds_the_last_page(const DirtyrateCase *c)
{
    DirtyGuestOpts opts = dirtyrate_guest_opts(c);
    uint32_t params = DG_LOAD_ADDR + DG_PARAMS_OFFSET;
    DirtyGuestStats st;
    DirtyGuest *dg;
    int tries;

    /* the case adds the VGA device; the guest writes one page of it */
    opts.region_pages = 1;
    dg = dirty_guest_start_or_skip(&opts);
    if (!dg) {
        return;
    }
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
                                 DIRTYRATE_MAX_SAMPLE_PAGES);
        info = dirtyrate_wait(dg->qts);
        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
        QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "blocks"), e) {
            QDict *b = qobject_to(QDict, qlist_entry_obj(e));

            if (g_str_has_suffix(qdict_get_str(b, "idstr"), "/vga.vram")) {
                seen = true;
                g_assert_cmpuint(qdict_get_uint(b, "sampled-pages"), ==,
                                 VGA_VRAM_SIZE / MiB *
                                 DIRTYRATE_MAX_SAMPLE_PAGES / 1024);
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

static void test_sampling_zero_when_stopped(DirtyGuest *dg,
                                            const DirtyrateCase *c)
{
    DirtyGuestStats before, after;
    QDict *info;

    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'stop' }");
    dirty_guest_read(dg, &before);
    dirtyrate_calc(dg->qts, NULL, 500, DIRTYRATE_MAX_SAMPLE_PAGES);
    info = dirtyrate_wait(dg->qts);
    dirty_guest_read(dg, &after);

    g_assert_cmpuint(after.writes, ==, before.writes);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpint(qdict_get_int(info, "dirty-rate"), ==, 0);
    qobject_unref(info);
}

void dirtyrate_test_add_sampling(void)
{
    static const DirtyrateAccel *const accels[] = {
        &dirtyrate_tcg, &dirtyrate_kvm,
    };
    const DirtyrateCase tcg = { &dirtyrate_tcg };
    const DirtyrateCase vga = { &dirtyrate_tcg, .extra_args = "-device VGA" };
    int i;

    for (i = 0; i < ARRAY_SIZE(accels); i++) {
        const DirtyrateCase c = { accels[i] };
        /* three quarters of the guest's RAM */
        const DirtyrateCase most = { accels[i], .region_mib = 192 };

        dirtyrate_add_guest_case("page-sampling/"
                                 "matches-guest-within-sampling-error",
                                 &most, test_sampling_matches_guest);
        dirtyrate_add_guest_case("page-sampling/"
                                 "reads-zero-while-guest-is-stopped",
                                 &c, test_sampling_zero_when_stopped);
    }
    dirtyrate_add_guest_case("page-sampling/"
                             "interval-covers-the-truth-in-most-runs",
                             &tcg, test_sampling_interval_covers_truth);
    dirtyrate_add_case("page-sampling/finds-the-last-page-of-a-block-dirty",
                       &vga, test_sampling_finds_the_last_page);
    dirtyrate_add_guest_case("page-sampling/old-style-call-keeps-its-members",
                             &tcg, test_old_style_call_members);
}
