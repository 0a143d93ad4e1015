/*
 * QTest for guest dirty-rate measurement: the counting modes
 * (dirty-bitmap, dirty-ring) against a guest whose true rate is known, and
 * the per-block results of every mode.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "migration/dirtyrate-framework.h"

static void test_bitmap_matches_guest(DirtyGuest *dg, const DirtyrateCase *c)
{
    double truth;
    QDict *info;

    dirtyrate_fit_region(dg, 1000, dg->opts.region_pages);
    info = dirtyrate_measure_counting(dg, "dirty-bitmap", 1000, &truth);
    /* within 5 %, and one for the integer MiB/s */
    g_assert_cmpfloat(fabs(qdict_get_int(info, "dirty-rate") - truth), <=,
                      truth * 0.05 + 1);
    g_assert_false(qdict_haskey(info, "vcpu-dirty-rate"));
    qobject_unref(info);
}

/*
 * Accuracy of the counting modes: the guest rewrites a region of
 * @region_mib over and over, so the truth is region / window whatever the
 * window; several region sizes and windows give rates from 6 to 80 MiB/s
 * where the guest is fast enough (a slower guest gets a smaller region,
 * see dirtyrate_fit_region()).  A measurement in which the host stalled
 * the guest (its truth unknown) is repeated.
 */
static void test_counting_accuracy(DirtyGuest *dg, const DirtyrateCase *c)
{
    double truth;
    QDict *info;

    dirtyrate_fit_region(dg, c->ms, dg->opts.region_pages);
    info = dirtyrate_measure_counting(dg, c->mode, c->ms, &truth);
    dirtyrate_assert_counted_pages(dg, info, truth);
    qobject_unref(info);
}

/*
 * per-block: true lists every migratable RAMBlock; the guest's region is
 * in pc.ram, which carries (nearly) all of the rate.
 */
static void test_per_block(DirtyGuest *dg, const DirtyrateCase *c)
{
    g_autofree char *out = NULL;
    uint64_t pages = 0, samples = 0;
    const QListEntry *e;
    DirtyGuestStats before, after;
    bool ram = false;
    QDict *info;

    dirty_guest_read(dg, &before);
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
    dirty_guest_read(dg, &after);
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
        /*
         * and at least the region, if the guest rewrote it within the
         * window (three passes around it: a loaded host may stall it)
         * and no ring entry was lost
         */
        if (after.passes - before.passes >= 3 &&
            !(qdict_haskey(info, "dirty-ring-overflows") &&
              qdict_get_uint(info, "dirty-ring-overflows"))) {
            g_assert_cmpuint(pages, >=, dg->opts.region_pages);
        } else {
            g_test_message("%" PRIu64 " pages listed; the region's %" PRIu32
                           " are not a bound: %" PRIu32 " passes, %" PRIu64
                           " ring overflows", pages, dg->opts.region_pages,
                           after.passes - before.passes,
                           qdict_haskey(info, "dirty-ring-overflows") ?
                           qdict_get_uint(info, "dirty-ring-overflows") : 0);
        }
    } else {
        g_assert_cmpuint(samples, ==, qdict_get_uint(info, "sampled-pages"));
    }

    out = dirtyrate_hmp(dg->qts, "info dirty_rate");
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
    out = dirtyrate_hmp(dg->qts,
                        c->mode ? (g_str_equal(c->mode, "dirty-ring") ?
                                   "calc_dirty_rate -r -m -p 200" :
                                   "calc_dirty_rate -b -m -p 200") :
                                  "calc_dirty_rate -m -p 200");
    g_assert_nonnull(strstr(out, "Starting dirty rate measurement"));
    info = dirtyrate_wait(dg->qts);
    g_assert_true(qdict_haskey(info, "blocks"));
    qobject_unref(info);
}

void dirtyrate_test_add_accuracy(void)
{
    static const DirtyrateCase counting[] = {
        { &dirtyrate_tcg, "dirty-bitmap" },
        { &dirtyrate_kvm, "dirty-bitmap" },
        { &dirtyrate_kvm_ring, "dirty-ring" },
    };
    static const struct {
        int64_t ms;
        uint32_t region_mib;
    } rates[] = { { 100, 8 }, { 1000, 8 }, { 1000, 64 }, { 10000, 64 } };
    static const DirtyrateCase per_block[] = {
        { &dirtyrate_tcg, NULL },
        { &dirtyrate_tcg, "dirty-bitmap" },
        { &dirtyrate_kvm, NULL },
        { &dirtyrate_kvm, "dirty-bitmap" },
        { &dirtyrate_kvm_ring, "dirty-ring" },
    };
    const DirtyrateCase tcg = { &dirtyrate_tcg };
    const DirtyrateCase kvm = { &dirtyrate_kvm };
    int i, j;

    dirtyrate_add_guest_case("dirty-bitmap/matches-guest-within-5-percent",
                             &tcg, test_bitmap_matches_guest);
    dirtyrate_add_guest_case("dirty-bitmap/matches-guest-within-5-percent",
                             &kvm, test_bitmap_matches_guest);
    for (i = 0; i < ARRAY_SIZE(counting); i++) {
        for (j = 0; j < ARRAY_SIZE(rates); j++) {
            DirtyrateCase c = counting[i];
            g_autofree char *what = NULL;

            c.ms = rates[j].ms;
            c.region_mib = rates[j].region_mib;
            what = g_strdup_printf("%s/accuracy/up-to-%" PRIu32 "MiB-in-%"
                                   PRId64 "ms", c.mode, c.region_mib, c.ms);
            dirtyrate_add_guest_case(what, &c, test_counting_accuracy);
        }
    }
    dirtyrate_add_mode_cases("per-block", per_block, ARRAY_SIZE(per_block),
                             test_per_block);
}
