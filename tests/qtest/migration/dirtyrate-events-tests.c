/*
 * QTest for guest dirty-rate measurement: the completion event
 * and cancel-dirty-rate.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "migration/dirtyrate-framework.h"

/* A measurement announces its end with DIRTY_RATE_COMPLETED */
static void test_completion_event(DirtyGuest *dg, const DirtyrateCase *c)
{
    QDict *ev, *data, *info;

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
static void test_cancel(DirtyGuest *dg, const DirtyrateCase *c)
{
    QDict *rsp, *ev, *info;
    gint64 t0;

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
}

void dirtyrate_test_add_events(void)
{
    const DirtyrateCase tcg = { &dirtyrate_tcg };

    dirtyrate_add_guest_case("events/completion-event-carries-the-result",
                             &tcg, test_completion_event);
    dirtyrate_add_guest_case("cancel/ends-a-long-measurement-at-once",
                             &tcg, test_cancel);
}
