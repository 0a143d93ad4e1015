/*
 * QMP helpers for the dirty-rate qtests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "dirtyrate-qmp.h"

#define DIRTYRATE_WAIT_TIMEOUT_S   120
#define POLL_INTERVAL_US           10000

void dirtyrate_calc(QTestState *qts, const char *mode, int64_t calc_time_ms,
                    int64_t sample_pages)
{
    QDict *args = qdict_new();

    qdict_put_int(args, "calc-time", calc_time_ms);
    qdict_put_str(args, "calc-time-unit", "millisecond");
    if (mode) {
        qdict_put_str(args, "mode", mode);
    }
    if (sample_pages) {
        qdict_put_int(args, "sample-pages", sample_pages);
    }
    qtest_qmp_assert_success(qts, "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': %p }", args);
}

QDict *dirtyrate_query(QTestState *qts)
{
    return qtest_qmp_assert_success_ref(qts,
        "{ 'execute': 'query-dirty-rate', "
        "'arguments': { 'calc-time-unit': 'millisecond' } }");
}

QDict *dirtyrate_wait(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTYRATE_WAIT_TIMEOUT_S * G_USEC_PER_SEC;

    for (;;) {
        QDict *info = dirtyrate_query(qts);
        const char *status = qdict_get_str(info, "status");

        /* a measurement that ended itself is unstarted and cancelled */
        if (!g_str_equal(status, "measuring") &&
            (!g_str_equal(status, "unstarted") ||
             qdict_haskey(info, "cancelled"))) {
            return info;
        }
        qobject_unref(info);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(POLL_INTERVAL_US);
    }
}

double dirtyrate_mib_per_s(uint64_t bytes, int64_t ms)
{
    g_assert_cmpint(ms, >, 0);
    return (double)bytes / MiB * 1000.0 / ms;
}
