/*
 * QMP and HMP helpers for the dirty-rate qtests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "dirtyrate-qmp.h"

#define DIRTYRATE_WAIT_TIMEOUT_S   120
#define DIRTYRATE_STATUS_TIMEOUT_S 30
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

const char *dirtyrate_mode_name(const char *mode)
{
    return mode ? mode : "page-sampling";
}

double dirtyrate_mib_per_s(uint64_t bytes, int64_t ms)
{
    g_assert_cmpint(ms, >, 0);
    return (double)bytes / MiB * 1000.0 / ms;
}

void dirtyrate_wait_status(QTestState *qts, const char *status)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTYRATE_STATUS_TIMEOUT_S * G_USEC_PER_SEC;

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

void dirtyrate_assert_same_result(QDict *a, QDict *b)
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

void dirtyrate_assert_calc_fails(QTestState *qts, QDict *before,
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
    dirtyrate_assert_same_result(before, after);
    qobject_unref(after);
}


char *dirtyrate_hmp(QTestState *qts, const char *cmd)
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
