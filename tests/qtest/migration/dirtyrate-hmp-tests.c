/*
 * QTest for guest dirty-rate measurement: calc_dirty_rate and
 * info dirty_rate show what QMP returns, in the units they name.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "migration/dirtyrate-framework.h"

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
    out = dirtyrate_hmp(dg->qts, cmd);
    g_assert_nonnull(strstr(out, started));
    info = dirtyrate_wait(dg->qts);
    info_out = dirtyrate_hmp(dg->qts, "info dirty_rate");
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

static void test_hmp(DirtyGuest *dg, const DirtyrateCase *c)
{
    g_autofree char *out = NULL;
    g_autofree char *both = NULL;
    g_autofree char *bad = NULL;

    out = dirtyrate_hmp(dg->qts, "info dirty_rate");
    g_assert_nonnull(strstr(out, "Status: unstarted\n"));
    g_assert_nonnull(strstr(out, "Dirty rate: (not ready)\n"));

    bad = dirtyrate_hmp(dg->qts, "calc_dirty_rate 0");
    g_assert_nonnull(strstr(bad, "Incorrect period length specified!"));
    both = dirtyrate_hmp(dg->qts, "calc_dirty_rate -r -b 1");
    g_assert_nonnull(strstr(both, "Either dirty ring or dirty bitmap"));

    hmp_measure(dg, "", "1", "page-sampling");
    hmp_measure(dg, "-m", "300", "page-sampling");
    if (c->ac->dirty_ring_size) {
        hmp_measure(dg, "-r", "1", "dirty-ring");
    } else {
        g_autofree char *ring = dirtyrate_hmp(dg->qts, "calc_dirty_rate -r 1");

        g_assert_nonnull(strstr(ring, "mode dirty-ring is not enabled"));
        hmp_measure(dg, "-b", "1", "dirty-bitmap");
        hmp_measure(dg, "-b -m", "250", "dirty-bitmap");
    }
}

void dirtyrate_test_add_hmp(void)
{
    static const DirtyrateAccel *const accels[] = {
        &dirtyrate_tcg, &dirtyrate_kvm, &dirtyrate_kvm_ring,
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(accels); i++) {
        const DirtyrateCase c = { accels[i] };

        dirtyrate_add_guest_case("hmp/calc-and-info-show-the-result", &c,
                                 test_hmp);
    }
}
