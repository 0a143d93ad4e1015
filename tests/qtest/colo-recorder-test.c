/*
 * QTest for the COLO checkpoint recorder: QMP info_checkpoint and
 * reset_checkpoint, HMP "info checkpoint", on a primary and a secondary
 * running COLO with timer-driven checkpoints (no disks, no colo-compare),
 * under TCG and, where available, KVM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <signal.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "migration/dirty-guest.h"
#include "migration/dirtyrate-qmp.h"
#include "migration/migration-qmp.h"

#define CHECKPOINT_DELAY_MS 100
#define CHECKPOINTS         6
#define TIMEOUT_S           120

typedef struct ColoPair {
    DirtyGuest *primary;
    DirtyGuest *secondary;
    char *uri;
} ColoPair;

static bool colo_start_sized(ColoPair *c, const char *accel,
                             unsigned mem_mb, uint32_t region_pages)
{
    g_autofree char *why = NULL;
    g_autofree char *dir = NULL;
    DirtyGuestOpts opts = {
        .accel = accel,
        .mem_mb = mem_mb,
        .region_pages = region_pages,
        .oob = true,
        .shared_ram = true,
    };

    if (g_str_equal(accel, "kvm-dirty-ring")) {
        opts.accel = "kvm";
        opts.dirty_ring_size = 4096;
    }
    dir = g_dir_make_tmp("colo-recorder-XXXXXX", NULL);
    c->uri = g_strdup_printf("unix:%s/colo.sock", dir);

    opts.incoming = c->uri;
    c->secondary = dirty_guest_start_or_skip(&opts);
    if (!c->secondary) {
        rmdir(dir);
        g_free(c->uri);
        return false;
    }
    opts.incoming = NULL;
    c->primary = dirty_guest_start(&opts, &why);
    g_assert_nonnull(c->primary);
    return true;
}

/* A pair whose guest rewrites 16 MiB of its 64 MiB */
static bool colo_start_pair(ColoPair *c, const char *accel)
{
    return colo_start_sized(c, accel, 64, 4096);
}

static void colo_stop_pair(ColoPair *c)
{
    g_autofree char *dir = g_path_get_dirname(c->uri + strlen("unix:"));

    dirty_guest_quit(c->primary);
    dirty_guest_quit(c->secondary);
    unlink(c->uri + strlen("unix:"));    /* the secondary's socket */
    rmdir(dir);
    g_free(c->uri);
}

static QDict *info_checkpoint(QTestState *qts)
{
    return qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'info_checkpoint' }");
}

static const char *colo_mode(QTestState *qts)
{
    static char mode[32];
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
        "{ 'execute': 'query-colo-status' }");

    g_strlcpy(mode, qdict_get_str(rsp, "mode"), sizeof(mode));
    qobject_unref(rsp);
    return mode;
}

static void wait_colo_mode(QTestState *qts, const char *mode)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_S * G_USEC_PER_SEC;

    while (!g_str_equal(colo_mode(qts), mode)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

static void colo_enter(ColoPair *c)
{
    migrate_set_capability(c->secondary->qts, "x-colo", true);
    migrate_set_capability(c->primary->qts, "x-colo", true);
    migrate_set_parameter_int(c->primary->qts, "x-checkpoint-delay",
                              CHECKPOINT_DELAY_MS);
    migrate_qmp(c->primary->qts, c->secondary->qts, c->uri, NULL, "{}");
    wait_colo_mode(c->primary->qts, "primary");
    wait_colo_mode(c->secondary->qts, "secondary");
}

/* Wait for @n more checkpoints: the primary's guest resumes after each */
static void wait_resumes(QTestState *primary, int n)
{
    while (n--) {
        qtest_qmp_eventwait(primary, "RESUME");
    }
}

/* Wait until the recorder on @qts has counted @n checkpoints */
static QDict *wait_counted(QTestState *qts, int64_t n)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_S * G_USEC_PER_SEC;

    for (;;) {
        QDict *info = info_checkpoint(qts);

        if (qdict_get_int(info, "tot_num") >= n) {
            return info;
        }
        qobject_unref(info);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

/*
 * Ask for a checkpoint on @qts until one is counted as asked for, and
 * return the recorder's numbers then.  A checkpoint counts the first
 * trigger since the last one began: a timer that fired meanwhile (on a
 * loaded host, checkpoints can be slower than the delay) takes the
 * place of the request.  Asking with a delay of a minute leaves the
 * timer out: by the third request, it is the only trigger.
 */
static QDict *request_checkpoint(QTestState *qts)
{
    int round;

    for (round = 1; ; round++) {
        QDict *info = info_checkpoint(qts);
        int64_t n = qdict_get_int(info, "tot_num");
        uint64_t asked = qdict_get_uint(qdict_get_qdict(info, "triggers"),
                                        "request");

        qobject_unref(info);
        /* setting x-checkpoint-delay asks for a checkpoint at once */
        migrate_set_parameter_int(qts, "x-checkpoint-delay", 60000);
        info = wait_counted(qts, n + 1);
        if (qdict_get_uint(qdict_get_qdict(info, "triggers"), "request") >
            asked) {
            return info;
        }
        qobject_unref(info);
        /* at most a timer checkpoint in flight and one pending */
        g_test_message("checkpoint request %d not counted yet", round);
        g_assert_cmpint(round, <, 5);
    }
}

static void assert_stats_sane(QDict *s, int64_t count)
{
    uint64_t min = qdict_get_uint(s, "min");
    uint64_t max = qdict_get_uint(s, "max");

    g_assert_cmpuint(qdict_get_uint(s, "count"), ==, count);
    if (!count) {
        g_assert_cmpuint(qdict_get_uint(s, "total"), ==, 0);
        g_assert_cmpuint(max, ==, 0);
        return;
    }
    g_assert_cmpuint(qdict_get_uint(s, "mean"), ==,
                     qdict_get_uint(s, "total") / count);
    g_assert_cmpuint(min, <=, qdict_get_uint(s, "mean"));
    g_assert_cmpuint(qdict_get_uint(s, "mean"), <=, max);
    g_assert_cmpuint(min, <=, qdict_get_uint(s, "p50"));
    g_assert_cmpuint(qdict_get_uint(s, "p50"), <=, qdict_get_uint(s, "p99"));
    g_assert_cmpuint(qdict_get_uint(s, "p99"), <=, max);
    g_assert_cmpuint(qdict_get_uint(s, "last"), >=, min);
    g_assert_cmpuint(qdict_get_uint(s, "last"), <=, max);
}

static const char *const primary_phases[] = {
    "request", "vm-stop", "replication", "device-save", "ram-send",
    "device-send", "wait-received", "compare-notify", "wait-loaded",
    "vm-start", NULL
};

static const char *const secondary_phases[] = {
    "stop-and-reply", "wait-vmstate", "ram-load", "device-receive",
    "ram-flush", "device-load", "replication", "filter-notify", "vm-start",
    "send-loaded", NULL
};

/*
 * Everything one info_checkpoint answer must satisfy by itself: every
 * part of it describes the same set of checkpoints.
 */
static void assert_consistent(QDict *info, const char *role)
{
    const char *const *names = g_str_equal(role, "primary") ?
                               primary_phases : secondary_phases;
    int64_t n = qdict_get_int(info, "tot_num");
    QDict *total = qdict_get_qdict(info, "total");
    QDict *triggers;
    uint64_t sum_of_means = 0;
    const QListEntry *e;
    uint64_t seq = 0, nrecent = 0;
    int i = 0;

    g_assert_cmpstr(qdict_get_str(info, "role"), ==, role);
    g_assert_true(qdict_haskey(info, "info"));
    g_assert_cmpint(qdict_get_int(info, "tot_time"), ==,
                    qdict_get_uint(total, "total"));
    g_assert_cmpint(qdict_get_int(info, "avg_time"), ==,
                    n ? qdict_get_uint(total, "total") / n : 0);
    g_assert_cmpint(qdict_get_int(info, "wait_time"), ==,
                    qdict_get_uint(qdict_get_qdict(info, "idle"), "mean"));
    assert_stats_sane(total, n);
    assert_stats_sane(qdict_get_qdict(info, "pause"), n);
    assert_stats_sane(qdict_get_qdict(info, "idle"), n);

    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "phases"), e) {
        QDict *ps = qobject_to(QDict, qlist_entry_obj(e));
        QDict *st = qdict_get_qdict(ps, "stats");

        g_assert_nonnull(names[i]);
        g_assert_cmpstr(qdict_get_str(ps, "phase"), ==, names[i]);
        assert_stats_sane(st, n);
        sum_of_means += qdict_get_uint(st, "mean");
        i++;
    }
    g_assert_null(names[i]);
    g_assert_cmpuint(sum_of_means, <=, qdict_get_uint(total, "mean"));

    /* The ring: the last min(n, 64) checkpoints, oldest first */
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "recent"), e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));
        uint64_t phase_sum = 0;
        const QListEntry *pe;

        if (seq) {
            g_assert_cmpuint(qdict_get_uint(r, "seq"), ==, seq + 1);
        }
        seq = qdict_get_uint(r, "seq");
        QLIST_FOREACH_ENTRY(qdict_get_qlist(r, "phases"), pe) {
            phase_sum += qnum_get_uint(qobject_to(QNum,
                                                  qlist_entry_obj(pe)));
        }
        g_assert_cmpuint(phase_sum, ==, qdict_get_uint(r, "total"));
        g_assert_cmpuint(qdict_get_uint(r, "pause"), <=, phase_sum);
        if (g_str_equal(role, "primary")) {
            g_assert_cmpstr(qdict_get_str(r, "trigger"), !=, "none");
        } else {
            g_assert_cmpstr(qdict_get_str(r, "trigger"), ==, "none");
        }
        nrecent++;
    }
    g_assert_cmpuint(nrecent, ==, MIN(n, 64));
    g_assert_cmpuint(seq, ==, n);
    triggers = qdict_get_qdict(info, "triggers");
    g_assert_cmpuint(qdict_get_uint(triggers, "timer") +
                     qdict_get_uint(triggers, "compare") +
                     qdict_get_uint(triggers, "request"), ==,
                     g_str_equal(role, "primary") ? n : 0);
}

static void assert_zero(QDict *info, const char *role)
{
    g_assert_cmpstr(qdict_get_str(info, "role"), ==, role);
    g_assert_cmpint(qdict_get_int(info, "tot_num"), ==, 0);
    g_assert_cmpint(qdict_get_int(info, "avg_time"), ==, 0);
    g_assert_cmpint(qdict_get_int(info, "ram_size"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(info, "ram-bytes"), ==, 0);
    g_assert_true(qlist_empty(qdict_get_qlist(info, "recent")));
    assert_stats_sane(qdict_get_qdict(info, "pause"), 0);
}

static void assert_checkpoints_measured(QDict *info, const char *role,
                                        int64_t n)
{
    QDict *pause = qdict_get_qdict(info, "pause");
    QDict *triggers = qdict_get_qdict(info, "triggers");
    bool primary = g_str_equal(role, "primary");

    assert_consistent(info, role);
    g_assert_true(qdict_get_bool(info, "active"));
    g_assert_cmpint(qdict_get_int(info, "tot_num"), >=, n);
    g_assert_cmpint(qdict_get_int(info, "init_time"), >, 0);
    g_assert_cmpuint(qdict_get_uint(pause, "min"), >, 0);
    /* a dirtying guest sends RAM at every checkpoint */
    g_assert_cmpint(qdict_get_int(info, "ram_size"), >, 0);
    g_assert_cmpuint(qdict_get_uint(info, "dirty-pages"), >, 0);
    g_assert_cmpint(qdict_get_int(info, "dev_size"), >, 0);
    g_assert_cmpuint(qdict_get_uint(triggers, "timer"), ==,
                     primary ? qdict_get_int(info, "tot_num") : 0);
    g_assert_cmpuint(qdict_get_uint(triggers, "compare"), ==, 0);
    g_assert_cmpuint(qdict_get_uint(triggers, "request"), ==, 0);
}

static void test_idle_before_colo(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    QDict *info;

    if (!colo_start_pair(&c, accel)) {
        return;
    }
    info = info_checkpoint(c.primary->qts);
    assert_zero(info, "none");
    g_assert_false(qdict_get_bool(info, "active"));
    g_assert_true(qlist_empty(qdict_get_qlist(info, "phases")));
    qobject_unref(info);
    info = info_checkpoint(c.secondary->qts);
    assert_zero(info, "none");
    qobject_unref(info);
    /* nothing to reset is not an error either */
    qtest_qmp_assert_success(c.primary->qts,
                             "{ 'execute': 'reset_checkpoint' }");
    colo_stop_pair(&c);
}

static void test_records_both_sides(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    DirtyGuestStats before, after;
    QDict *p, *s;

    if (!colo_start_pair(&c, accel)) {
        return;
    }
    colo_enter(&c);
    dirty_guest_read(c.primary, &before);
    wait_resumes(c.primary->qts, CHECKPOINTS + 1);

    p = wait_counted(c.primary->qts, CHECKPOINTS);
    s = wait_counted(c.secondary->qts, CHECKPOINTS);
    assert_checkpoints_measured(p, "primary", CHECKPOINTS);
    assert_checkpoints_measured(s, "secondary", CHECKPOINTS);
    g_test_message("primary: %" PRId64 " checkpoints, mean %" PRId64
                   " ns, pause mean %" PRIu64 " ns, %" PRId64
                   " RAM bytes per checkpoint",
                   qdict_get_int(p, "tot_num"), qdict_get_int(p, "avg_time"),
                   qdict_get_uint(qdict_get_qdict(p, "pause"), "mean"),
                   qdict_get_int(p, "ram_size"));

    /* the primary's guest kept running between checkpoints */
    dirty_guest_read(c.primary, &after);
    g_assert_cmpuint(after.writes, >, before.writes);
    qobject_unref(p);
    qobject_unref(s);
    colo_stop_pair(&c);
}

static void test_reset_restarts_counting(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    QDict *info;
    gint64 t0;

    if (!colo_start_pair(&c, accel)) {
        return;
    }
    colo_enter(&c);
    qobject_unref(wait_counted(c.primary->qts, 3));

    t0 = g_get_monotonic_time();
    qtest_qmp_assert_success(c.primary->qts,
                             "{ 'execute': 'reset_checkpoint' }");
    info = info_checkpoint(c.primary->qts);
    /*
     * The checkpoint that was in flight, counted whole, and any started
     * since: one per checkpoint delay between the two commands.
     */
    g_assert_cmpint(qdict_get_int(info, "tot_num"), <=,
                    1 + (g_get_monotonic_time() - t0) / 1000 /
                    CHECKPOINT_DELAY_MS);
    assert_consistent(info, "primary");
    g_assert_cmpint(qdict_get_int(info, "init_time"), >, 0);
    qobject_unref(info);

    info = wait_counted(c.primary->qts, 3);
    assert_checkpoints_measured(info, "primary", 3);
    qobject_unref(info);

    info = request_checkpoint(c.primary->qts);
    assert_consistent(info, "primary");
    qobject_unref(info);
    colo_stop_pair(&c);
}

/* "name count mean p99 max" rows of HMP "info checkpoint" */
static int64_t hmp_row_count(const char *out, const char *name)
{
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    int i;

    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " ", -1);

        if (g_str_equal(f[0], name)) {
            int j = 1;

            while (f[j] && !*f[j]) {
                j++;
            }
            return f[j] ? g_ascii_strtoll(f[j], NULL, 10) : -1;
        }
    }
    return -1;
}

/*
 * The HMP table has a column per statistic, the median among them, and
 * every row a value in each: "pause count mean p50 p99 max", each
 * duration a number and a unit.
 */
static void assert_hmp_columns(const char *out)
{
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    int rows = 0;
    int i, j;

    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " ", -1);
        g_autoptr(GString) words = g_string_new(NULL);
        int n = 0;

        for (j = 0; f[j]; j++) {
            if (*f[j]) {
                g_string_append_printf(words, "%s%s", n++ ? " " : "", f[j]);
            }
        }
        if (g_str_has_prefix(words->str, "phase ")) {
            g_assert_cmpstr(words->str, ==, "phase count mean p50 p99 max");
            rows++;
        } else if (g_str_has_prefix(words->str, "pause ")) {
            g_assert_cmpint(n, ==, 2 + 4 * 2);
            rows++;
        }
    }
    g_assert_cmpint(rows, ==, 2);
}

static void assert_hmp_matches(QTestState *qts, QDict *info,
                               const char *role)
{
    g_autofree char *out = qtest_hmp(qts, "info checkpoint");
    g_autofree char *head = g_strdup_printf("COLO role: %s (inactive), "
                                            "checkpoints: %" PRId64 ", ",
                                            role,
                                            qdict_get_int(info, "tot_num"));
    const QListEntry *e;

    g_test_message("info checkpoint on the %s: %s", role, out);
    g_assert_nonnull(strstr(out, head));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(info, "phases"), e) {
        QDict *ps = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpint(hmp_row_count(out, qdict_get_str(ps, "phase")), ==,
                        qdict_get_int(info, "tot_num"));
    }
    g_assert_cmpint(hmp_row_count(out, "total"), ==,
                    qdict_get_int(info, "tot_num"));
    g_assert_cmpint(hmp_row_count(out, "pause"), ==,
                    qdict_get_int(info, "tot_num"));
    assert_hmp_columns(out);
    g_assert_nonnull(strstr(out, " ms"));
    g_assert_nonnull(strstr(out, "per checkpoint: device state "));
}

static void test_failover_keeps_numbers(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    QDict *p, *s;
    int64_t np, ns;

    if (!colo_start_pair(&c, accel)) {
        return;
    }
    colo_enter(&c);
    qobject_unref(wait_counted(c.primary->qts, 3));
    qobject_unref(wait_counted(c.secondary->qts, 3));

    qtest_qmp_assert_success(c.secondary->qts,
                             "{ 'execute': 'x-colo-lost-heartbeat' }");
    qtest_qmp_eventwait(c.secondary->qts, "COLO_EXIT");
    qtest_qmp_assert_success(c.primary->qts,
                             "{ 'execute': 'x-colo-lost-heartbeat' }");
    qtest_qmp_eventwait(c.primary->qts, "COLO_EXIT");

    p = info_checkpoint(c.primary->qts);
    s = info_checkpoint(c.secondary->qts);
    np = qdict_get_int(p, "tot_num");
    ns = qdict_get_int(s, "tot_num");
    g_assert_false(qdict_get_bool(p, "active"));
    g_assert_false(qdict_get_bool(s, "active"));
    assert_consistent(p, "primary");
    assert_consistent(s, "secondary");
    g_assert_cmpint(np, >=, 3);
    g_assert_cmpint(ns, >=, 3);
    /* a checkpoint may be cut short on one side only */
    g_assert_cmpint(labs(np - ns), <=, 1);

    assert_hmp_matches(c.primary->qts, p, "primary");
    assert_hmp_matches(c.secondary->qts, s, "secondary");
    qobject_unref(p);
    qobject_unref(s);
    colo_stop_pair(&c);
}

/* A one-second dirty-bitmap measurement on @qts: the answer */
static QDict *try_bitmap_measurement(QTestState *qts)
{
    return qtest_qmp(qts, "{ 'execute': 'calc-dirty-rate', "
                     "'arguments': { 'calc-time': 1, "
                     "'mode': 'dirty-bitmap' } }");
}

/* A pair in COLO that has completed two checkpoints */
static bool colo_start_running(ColoPair *c, const char *accel)
{
    if (!colo_start_pair(c, accel)) {
        return false;
    }
    colo_enter(c);
    qobject_unref(wait_counted(c->secondary->qts, 2));
    return true;
}

/*
 * Without KVM, a dirty-bitmap measurement clears the migration dirty
 * bitmap that COLO relies on: on the secondary, colo_flush_ram_cache()
 * restores from its cache exactly the pages that bitmap names, so a
 * measurement there left the secondary silently diverged from the
 * checkpoint.  It is refused on both sides while COLO runs, and a
 * measurement that runs keeps an incoming migration (and so COLO) from
 * starting.
 */
static void test_bitmap_scan_refused_beside_colo(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *why = NULL;
    ColoPair c = { 0 };
    DirtyGuestOpts opts = {
        .accel = accel,
        .mem_mb = 64,
        .region_pages = 4096,
        .incoming = "defer",
    };
    DirtyGuest *dg;
    QDict *rsp;

    if (!colo_start_running(&c, accel)) {
        return;
    }
    rsp = try_bitmap_measurement(c.secondary->qts);
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"), "COLO"));
    qobject_unref(rsp);
    rsp = try_bitmap_measurement(c.primary->qts);
    g_assert_true(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    /* page sampling touches no dirty bit: it may measure */
    qtest_qmp_assert_success(c.secondary->qts,
                             "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': { 'calc-time': 1 } }");
    colo_stop_pair(&c);

    /* a would-be secondary that measures cannot start its incoming side */
    dg = dirty_guest_start(&opts, &why);
    g_assert_nonnull(dg);
    qtest_qmp_assert_success(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                             "'arguments': { 'calc-time': 60, "
                             "'mode': 'dirty-bitmap' } }");
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'migrate-incoming', "
                    "'arguments': { 'uri': 'tcp:127.0.0.1:0' } }");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "dirty-bitmap dirty rate measurement"));
    qobject_unref(rsp);
    dirty_guest_quit(dg);
}

/*
 * The documented failover (docs/COLO-FT.txt): yank the migration channel
 * out of band, then x-colo-lost-heartbeat; wait for COLO_EXIT
 */
static void fail_over(QTestState *qts)
{
    qtest_qmp_send(qts, "{ 'exec-oob': 'yank', 'id': 'yank', "
                   "'arguments': { 'instances': "
                   "[ { 'type': 'migration' } ] } }");
    qobject_unref(qtest_qmp_receive(qts));
    qtest_qmp_assert_success(qts, "{ 'execute': 'x-colo-lost-heartbeat' }");
    qtest_qmp_eventwait(qts, "COLO_EXIT");
}

/* Wait until the guest of @qts runs again (after a failover) */
static void wait_running(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + TIMEOUT_S * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-status' }");
        bool running = qdict_get_bool(rsp, "running");

        qobject_unref(rsp);
        if (running) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

static void failover_deadline(int sig)
{
    g_error("failover did not complete within %d s", TIMEOUT_S);
}

/* Forget the @event events that QEMU sent so far */
static void drop_events(QTestState *qts, const char *event)
{
    QDict *ev;

    /* the answer comes after every event sent before it */
    qtest_qmp_assert_success(qts, "{ 'execute': 'query-status' }");
    while ((ev = qtest_qmp_event_ref(qts, event))) {
        qobject_unref(ev);
    }
}

/*
 * Whether the primary's main loop waits for the BQL: an in-band command
 * sent first is not answered before an out-of-band one sent 200 ms
 * later.  If it is, both answers are read and nothing else is changed.
 * When it returns true, the in-band command (id "status") is pending.
 */
static bool primary_holds_bql(QTestState *qts)
{
    QDict *rsp;
    bool held;

    qtest_qmp_send(qts, "{ 'execute': 'query-status', 'id': 'status' }");
    g_usleep(200 * 1000);
    qtest_qmp_send(qts, "{ 'exec-oob': 'query-yank', 'id': 'probe' }");
    rsp = qtest_qmp_receive(qts);
    held = g_str_equal(qdict_get_str(rsp, "id"), "probe");
    qobject_unref(rsp);
    if (!held) {
        qobject_unref(qtest_qmp_receive(qts));
    }
    return held;
}

#define HUNG_ATTEMPTS 60

/*
 * The documented failover when the secondary is hung or partitioned in
 * the middle of a checkpoint: the primary holds the BQL while it sends
 * RAM with the guest stopped, blocked in a send that TCP would not give
 * up on for minutes, so x-colo-lost-heartbeat alone waits for the BQL
 * like any other command.  An out-of-band yank of the migration channel
 * ends the send; x-colo-lost-heartbeat then fails over, and the guest
 * runs again.
 *
 * SIGSTOP stands in for the hang or the partition, at the chosen point:
 * as soon as the secondary has stopped its guest for a checkpoint (its
 * STOP event), so after it answered the primary's request and, most of
 * the time, before all the RAM arrived: the primary is then stuck in its
 * send, far larger than the socket holds, with the BQL.  The test checks
 * that it is, and tries again at the next checkpoint if it is not.
 */
static void test_failover_with_secondary_hung(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    DirtyGuestStats before, after;
    struct sigaction deadline = { .sa_handler = failover_deadline };
    bool yanked = false, answered = false;
    QDict *rsp, *info;
    int attempt, i;

    if (!colo_start_sized(&c, accel, 256, 4096)) {
        return;
    }
    colo_enter(&c);
    /*
     * Up to 200 MiB to send at every checkpoint, a second apart: long
     * enough to catch, even for a slow guest on a busy host.
     */
    dirty_guest_set_region_pages(c.primary, 51200);
    migrate_set_parameter_int(c.primary->qts, "x-checkpoint-delay", 1000);
    qobject_unref(wait_counted(c.primary->qts, 2));

    sigaction(SIGALRM, &deadline, NULL);
    alarm(TIMEOUT_S);
    for (attempt = 1; ; attempt++) {
        g_assert_cmpint(attempt, <=, HUNG_ATTEMPTS);
        drop_events(c.secondary->qts, "STOP");
        qtest_qmp_eventwait(c.secondary->qts, "STOP");
        dirty_guest_sigstop(c.secondary);
        if (primary_holds_bql(c.primary->qts)) {
            break;
        }
        /* the RAM had arrived already: let the checkpoint finish */
        dirty_guest_sigcont(c.secondary);
    }
    g_test_message("the primary hung in its RAM send at attempt %d",
                   attempt);

    qtest_qmp_send(c.primary->qts, "{ 'exec-oob': 'yank', 'id': 'yank', "
                   "'arguments': { 'instances': "
                   "[ { 'type': 'migration' } ] } }");
    /*
     * The yank is answered, and the command that waited for the BQL is
     * answered now.  Usually in that order; a main loop that was only
     * slow on a loaded host (primary_holds_bql() cannot tell) answers
     * the in-band command first: the failover below must work all the
     * same.
     */
    for (i = 0; i < 2; i++) {
        const char *id;

        rsp = qtest_qmp_receive(c.primary->qts);
        id = qdict_get_str(rsp, "id");
        if (g_str_equal(id, "yank")) {
            g_assert_true(qdict_haskey(rsp, "return"));
            yanked = true;
        } else {
            g_assert_cmpstr(id, ==, "status");
            if (!yanked) {
                g_test_message("the primary answered in-band first: it "
                               "was slow, not hung");
            }
            answered = true;
        }
        qobject_unref(rsp);
    }
    g_assert_true(yanked && answered);

    qtest_qmp_assert_success(c.primary->qts,
                             "{ 'execute': 'x-colo-lost-heartbeat' }");
    qtest_qmp_eventwait(c.primary->qts, "COLO_EXIT");
    alarm(0);

    wait_running(c.primary->qts);
    dirty_guest_read(c.primary, &before);
    dirty_guest_wait_writes(c.primary, 1000);
    dirty_guest_read(c.primary, &after);
    g_assert_cmpuint(after.writes, >, before.writes);

    /* the interrupted checkpoint is not counted as completed */
    info = info_checkpoint(c.primary->qts);
    g_assert_false(qdict_get_bool(info, "active"));
    assert_consistent(info, "primary");
    qobject_unref(info);

    dirty_guest_sigcont(c.secondary);
    fail_over(c.secondary->qts);
    colo_stop_pair(&c);
}

/*
 * The secondary takes over with exactly the memory of the last
 * checkpoint.  The guest dirties memory on both sides between
 * checkpoints; it is then frozen on the primary (no write at all, not
 * even its clock), and two checkpoints later the secondary must hold the
 * primary's memory byte for byte, having restored every page its own
 * run of the guest dirtied.  Before that, a dirty-bitmap measurement is
 * tried on the secondary: without KVM it would clear the dirty bits that
 * the restore relies on, which is why it is refused.
 */
static void test_secondary_takes_over_checkpoint_memory(const void *opaque)
{
    const char *accel = opaque;
    ColoPair c = { 0 };
    QDict *rsp, *info;
    int64_t n;
    uint64_t differ;

    if (!colo_start_running(&c, accel)) {
        return;
    }
    rsp = try_bitmap_measurement(c.secondary->qts);
    if (!qdict_haskey(rsp, "error")) {
        g_test_message("the secondary accepted a dirty-bitmap measurement");
        qobject_unref(dirtyrate_wait(c.secondary->qts));
    }
    qobject_unref(rsp);

    dirty_guest_set_frozen(c.primary, true);
    info = info_checkpoint(c.secondary->qts);
    n = qdict_get_int(info, "tot_num");
    qobject_unref(info);
    qobject_unref(wait_counted(c.secondary->qts, n + 2));

    /* the primary dies (hangs): the secondary takes over */
    dirty_guest_sigstop(c.primary);
    fail_over(c.secondary->qts);
    qtest_qmp_assert_success(c.secondary->qts, "{ 'execute': 'stop' }");
    differ = dirty_guest_ram_differences(c.primary, c.secondary);
    g_test_message("%" PRIu64 " pages differ", differ);
    g_assert_cmpuint(differ, ==, 0);

    /* and the guest goes on from there on the secondary */
    qtest_qmp_assert_success(c.secondary->qts, "{ 'execute': 'cont' }");
    dirty_guest_set_frozen(c.secondary, false);
    dirty_guest_wait_writes(c.secondary, 1000);
    colo_stop_pair(&c);
}

static void add(const char *accel, const char *what,
                void (*fn)(const void *))
{
    g_autofree char *path = g_strdup_printf("/colo-recorder/%s/%s", accel,
                                            what);

    qtest_add_data_func(path, accel, fn);
}

int main(int argc, char **argv)
{
    static const char *const accels[] = { "tcg", "kvm" };
    /* under each accelerator */
    static const struct {
        const char *what;
        void (*fn)(const void *);
    } tests[] = {
        { "reports-role-none-and-zeros-before-colo", test_idle_before_colo },
        { "times-every-phase-on-both-sides", test_records_both_sides },
        { "reset-zeroes-and-counting-resumes", test_reset_restarts_counting },
        { "numbers-stay-readable-after-failover",
          test_failover_keeps_numbers },
        { "failover-with-the-secondary-hung-mid-checkpoint",
          test_failover_with_secondary_hung },
        { "secondary-takes-over-with-the-checkpoint-memory",
          test_secondary_takes_over_checkpoint_memory },
    };
    int i, j;

    g_test_init(&argc, &argv, NULL);
    add("tcg", "dirty-bitmap-scan-is-refused-beside-colo",
        test_bitmap_scan_refused_beside_colo);
    for (i = 0; i < ARRAY_SIZE(accels); i++) {
        for (j = 0; j < ARRAY_SIZE(tests); j++) {
            add(accels[i], tests[j].what, tests[j].fn);
        }
    }
    /*
     * With the guest's dirty pages in KVM dirty rings, on hosts whose
     * rings overflow too: COLO goes on, and checkpoints after an overflow
     * carry all of RAM
     */
    add("kvm-dirty-ring", "secondary-takes-over-with-the-checkpoint-memory",
        test_secondary_takes_over_checkpoint_memory);
    return g_test_run();
}
