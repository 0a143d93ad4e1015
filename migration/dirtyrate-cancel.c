/*
 * Cancelling a running dirty-rate measurement: QMP cancel-dirty-rate.
 *
 * The measurement thread sleeps through its window; here that sleep waits
 * on a semaphore that cancel-dirty-rate posts, so a 60 s window ends at
 * once.  The thread then finishes as usual (dirty logging is stopped and
 * a migration blocker released) and reports status "cancelled".
 *
 * @active and @cancelled are set by the monitor under the BQL and read by
 * the measurement thread with atomics; @cancel_sem wakes the thread.
 * Only the measurement thread has @in_measurement set, so the dirty limit,
 * which shares the waiting code, is never woken early.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-migration.h"
#include "dirtyrate-cancel.h"
#include "trace.h"

static QemuSemaphore cancel_sem;
static bool cancel_sem_ready;
static bool active;
static bool cancelled;
static __thread bool in_measurement;

void dirtyrate_cancel_arm(void)
{
    assert(bql_locked());
    if (!cancel_sem_ready) {
        qemu_sem_init(&cancel_sem, 0);
        cancel_sem_ready = true;
    }
    /* a cancel that came after the previous window ended */
    while (qemu_sem_timedwait(&cancel_sem, 0) == 0) {
        continue;
    }
    qatomic_set(&cancelled, false);
    qatomic_set(&active, true);
}

void dirtyrate_cancel_thread_enter(void)
{
    in_measurement = true;
}

void dirtyrate_sleep_us(int64_t us)
{
    if (!in_measurement) {
        g_usleep(us);
        return;
    }
    if (!qatomic_read(&cancelled)) {
        qemu_sem_timedwait(&cancel_sem, DIV_ROUND_UP(us, 1000));
    }
}

bool dirtyrate_cancel_finish(void)
{
    in_measurement = false;
    qatomic_set(&active, false);
    return qatomic_read(&cancelled);
}

void qmp_cancel_dirty_rate(Error **errp)
{
    if (!qatomic_read(&active)) {
        error_setg(errp, "no dirty rate measurement is running");
        return;
    }
    if (!qatomic_xchg(&cancelled, true)) {
        trace_dirtyrate_cancel();
        qemu_sem_post(&cancel_sem);
    }
}
