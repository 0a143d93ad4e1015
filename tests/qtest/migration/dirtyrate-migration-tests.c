/*
 * QTest for guest dirty-rate measurement: measurements during a
 * migration, a migration that loses no page with a measurement running
 * through it, and dirty-bitmap mode that excludes a migration without KVM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "migration/dirtyrate-framework.h"
#include "migration/migration-qmp.h"
#include "migration/migration-util.h"

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
    /* "device": completing, which the next query sees */
    if (!g_str_equal(status, "active") && !g_str_equal(status, "setup") &&
        !g_str_equal(status, "device")) {
        g_autoptr(GString) json = qobject_to_json(QOBJECT(rsp));

        g_error("migration not active: %s", json->str);
    }
    return MIG_RUNNING;
}

/*
 * Syncs of the dirty log so far, or how the migration ended (see
 * migration_ended()): what read_ram_property_int(qts, "dirty-sync-count")
 * reads, but that asserts that the migration has not ended.
 */
static int64_t migration_sync_count(QTestState *qts)
{
    QDict *rsp = migrate_query(qts);
    int64_t n = migration_ended(rsp);

    if (!n && qdict_haskey(rsp, "ram")) {
        n = qdict_get_int(qdict_get_qdict(rsp, "ram"), "dirty-sync-count");
    }
    qobject_unref(rsp);
    return n;
}

/*
 * After a migration that completed, the guest waits for a 'cont'.  The
 * migration reads "completed" a little before the guest's run state
 * moves from finish-migrate to postmigrate: wait for that.
 */
static void resume_after_migration(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *st = qtest_qmp_assert_success_ref(qts,
                                        "{ 'execute': 'query-status' }");
        const char *status = qdict_get_str(st, "status");
        bool finishing = g_str_equal(status, "finish-migrate");

        if (g_str_equal(status, "postmigrate")) {
            qtest_qmp_assert_success(qts, "{ 'execute': 'cont' }");
        }
        qobject_unref(st);
        if (!finishing) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
}

/*
 * Start a migration that does not converge (the guest dirties far more
 * than a 1 ms downtime allows) and syncs the dirty log several times a
 * second, and wait for its second sync.  It starts slowly: until its
 * first bandwidth estimate, 100 ms in, its threshold is 0 and a first
 * pass that has ended completes it at once.  Its bandwidth is
 * MIGRATION_BANDWIDTH: a pass over a region of at most MIGRATION_REGION
 * takes at most 250 ms.  (Much more makes the passes so short that the
 * syncs come back to back, and a KVM guest on the reference host then
 * makes no progress at all.)  Returns MIG_RUNNING, or MIG_RING_FAILED;
 * one that completed (this one, or the one before) is restarted.
 */
#define MIGRATION_BANDWIDTH (32 * MiB)
#define MIGRATION_REGION    (MIGRATION_BANDWIDTH / 4)

static int start_endless_migration(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    int64_t n;

    do {
        resume_after_migration(qts);
        migrate_ensure_non_converge(qts);
        migrate_qmp(qts, NULL, "exec:cat >/dev/null", NULL, "{}");
        for (;;) {
            QDict *rsp = migrate_query(qts);
            bool started;

            n = migration_ended(rsp);
            started = !n && qdict_haskey(rsp, "total-time") &&
                      qdict_get_int(rsp, "total-time") >= 300;
            qobject_unref(rsp);
            if (n || started) {
                break;
            }
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(20 * 1000);
        }
        if (!n) {
            migrate_set_parameter_int(qts, "max-bandwidth",
                                      MIGRATION_BANDWIDTH);
            while ((n = migration_sync_count(qts)) >= 0 && n < 2) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_usleep(10 * 1000);
            }
            n = MIN(n, MIG_RUNNING);
        }
    } while (n == MIG_COMPLETED);
    return n;
}

/* Cancel a migration started by start_endless_migration(), if it runs */
static void stop_migration(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    migrate_cancel(qts);
    for (;;) {
        QDict *rsp = migrate_query(qts);
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
 * Size the guest's region for @ms windows from what it writes while a
 * migration runs: a vCPU faulting on write-protected pages writes
 * several times slower than without one, and slower still on a loaded
 * host.  The region is set with no migration running (one that
 * completes stops the guest, which would then never rewrite it).
 * Returns MIG_RUNNING, or MIG_RING_FAILED if the migration could not run.
 */
static int fit_region_while_migrating(DirtyGuest *dg, int64_t ms,
                                      uint32_t max)
{
    double speed;

    if (start_endless_migration(dg->qts) == MIG_RING_FAILED) {
        return MIG_RING_FAILED;
    }
    speed = dirty_guest_write_rate(dg, 300);
    stop_migration(dg->qts);
    resume_after_migration(dg->qts);
    dirtyrate_set_region_for(dg, speed, ms, max);
    return MIG_RUNNING;
}

/*
 * Measuring while a migration runs is supported in every mode but
 * dirty-bitmap without KVM (see test_bitmap_excludes_migration).  The
 * migration syncs the dirty log several times within the window; each sync
 * reports the pages dirtied since the previous one, which upstream added
 * up: a guest that rewrites one region read several times its rate.
 */
static void test_measure_during_migration(DirtyGuest *dg,
                                          const DirtyrateCase *c)
{
    uint32_t max_pages = MIN(dg->opts.region_pages,
                             MIGRATION_REGION / DIRTY_GUEST_PAGE_SIZE);
    int64_t syncs = 0, n;
    bool valid = false, failed = false;
    QDict *info = NULL;
    double truth;
    int i;

    /*
     * A loaded host can stop running the guest for seconds while a
     * migration runs (seen with KVM: not one write in a second, and every
     * migration completing as the guest went quiet).  Tries go on, for at
     * least DIRTYRATE_MEASURE_TRIES and up to two and a half minutes.
     */
    gint64 give_up = g_get_monotonic_time() + 150 * G_USEC_PER_SEC;

    for (i = 0; !valid && !failed &&
                (i < DIRTYRATE_MEASURE_TRIES ||
                 g_get_monotonic_time() < give_up); i++) {
        int64_t before;

        /* each try: the guest's speed can change from one to the next */
        failed = fit_region_while_migrating(dg, c->ms, max_pages) ==
                 MIG_RING_FAILED;
        if (!failed) {
            failed = start_endless_migration(dg->qts) == MIG_RING_FAILED;
        }
        if (failed) {
            break;
        }
        before = migration_sync_count(dg->qts);
        qobject_unref(info);
        info = dirtyrate_try_measure(dg, c->mode, c->ms,
                                     c->mode ? 0 : DIRTYRATE_MAX_SAMPLE_PAGES,
                                     &truth, &valid);
        n = migration_sync_count(dg->qts);
        if (before == MIG_COMPLETED || n == MIG_COMPLETED) {
            /* not measured during a migration: again, with a new one */
            valid = false;
            continue;
        }
        failed = before < 0 || n < 0;
        syncs = n - before;
        if (!valid && !failed) {
            stop_migration(dg->qts);
        }
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
        return;
    }
    g_test_message("%" PRId64 " migration syncs during the measurement",
                   syncs);
    g_assert_true(valid);
    if (!c->mode) {
        g_assert_cmpfloat(fabs(qdict_get_int(info, "dirty-rate") - truth),
                          <=, dirtyrate_sampling_tolerance(
                                  dg, truth, DIRTYRATE_MAX_SAMPLE_PAGES));
    } else if (g_str_equal(c->mode, "dirty-ring") &&
               qdict_get_uint(info, "dirty-ring-overflows")) {
        /* lost entries make the count a lower bound, not all memory */
        g_assert_cmpfloat(qdict_get_int(info, "dirty-rate"), <=,
                          truth * 1.05 + 0.5);
    } else {
        g_assert_cmpint(syncs, >=, 2);
        dirtyrate_assert_counted_pages(dg, info, truth);
    }
    qobject_unref(info);
    stop_migration(dg->qts);
}

/* Poll query-migrate on @qts until the migration is past its setup */
static void wait_migration_past_setup(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (;;) {
        QDict *rsp = migrate_query(qts);
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
        QDict *rsp = migrate_query(qts);
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
static void test_migration_loses_nothing(const DirtyrateCase *c)
{
    g_autofree char *why = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *status = NULL;
    g_autofree char *error = NULL;
    g_autofree char *overflow_log = NULL;
    DirtyGuestOpts opts = dirtyrate_guest_opts(c);
    DirtyGuest *src, *dst;
    DirtyGuestStats st;
    uint64_t differ;

    opts.mem_mb = 128;
    opts.shared_ram = true;
    src = dirty_guest_start_or_skip(&opts);
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
                       c->mode ? 0 : DIRTYRATE_MAX_SAMPLE_PAGES);
    }
    migrate_set_parameter_int(src->qts, "downtime-limit", 2000);
    migrate_set_parameter_int(src->qts, "max-bandwidth", 10 * GiB);
    migrate_qmp(src->qts, dst->qts, uri, NULL, "{}");
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
    unlink(uri + strlen("unix:"));      /* the destination's socket */
    rmdir(dir);
}

/*
 * Without KVM, dirty-bitmap mode shares the migration dirty bitmap: a
 * measurement blocks migration, and a running migration refuses it.
 */
static void test_bitmap_excludes_migration(DirtyGuest *dg,
                                           const DirtyrateCase *c)
{
    QDict *rsp, *info;
    const char *desc;

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
    migrate_set_parameter_int(dg->qts, "max-bandwidth", 65536);
    migrate_qmp(dg->qts, NULL, "exec:cat >/dev/null", NULL, "{}");
    dirtyrate_assert_calc_fails(dg->qts, info,
                                "while a migration or COLO is running",
                                "{ 'calc-time': 1, 'mode': 'dirty-bitmap' }");
    qobject_unref(info);
    migrate_cancel(dg->qts);
}

void dirtyrate_test_add_migration(void)
{
    /* every mode but dirty-bitmap without KVM */
    static const DirtyrateCase during[] = {
        { &dirtyrate_tcg, NULL, 1000, 64 },
        { &dirtyrate_kvm, NULL, 1000, 64 },
        { &dirtyrate_kvm, "dirty-bitmap", 1000, 64 },
        { &dirtyrate_kvm_ring, "dirty-ring", 1000, 64 },
    };
    /* ms 0: no measurement */
    static const DirtyrateCase migrating[] = {
        { &dirtyrate_tcg, NULL, 0 },
        { &dirtyrate_tcg, NULL, 5000 },
        { &dirtyrate_kvm, NULL, 0 },
        { &dirtyrate_kvm, NULL, 5000 },
        { &dirtyrate_kvm, "dirty-bitmap", 5000 },
        { &dirtyrate_kvm_ring, NULL, 0 },
        { &dirtyrate_kvm_ring, "dirty-ring", 5000 },
        { &dirtyrate_tcg, NULL, 5000, 0, 4 },
        { &dirtyrate_kvm, "dirty-bitmap", 5000, 0, 4 },
        { &dirtyrate_kvm_ring, "dirty-ring", 5000, 0, 4 },
    };
    const DirtyrateCase tcg = { &dirtyrate_tcg };
    int i;

    dirtyrate_add_mode_cases("during-a-migration", during,
                             ARRAY_SIZE(during),
                             test_measure_during_migration);
    for (i = 0; i < ARRAY_SIZE(migrating); i++) {
        const DirtyrateCase *c = &migrating[i];
        g_autofree char *what = g_strdup_printf(
            "migration/%s%s/destination-memory-equals-source",
            c->ms ? dirtyrate_mode_name(c->mode) : "no-measurement",
            c->vcpus > 1 ? "-4-vcpus" : "");

        dirtyrate_add_case(what, c, test_migration_loses_nothing);
    }
    dirtyrate_add_guest_case("dirty-bitmap/excludes-a-running-migration",
                             &tcg, test_bitmap_excludes_migration);
}
