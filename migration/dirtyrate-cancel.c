/*
 * Cancelling a running dirty-rate measurement: QMP cancel-dirty-rate.
 *
 * The measurement thread sleeps through its window; here that sleep waits
 * on a semaphore that cancel-dirty-rate posts, so a 60 s window ends at
 * once.  The thread then finishes as usual (dirty logging is stopped and
 * a migration blocker released) and reports that it was cancelled.  A
 * cancel that comes once the window is over changes nothing: the
 * measurement completes with its result.
 *
 * @window goes IDLE -> OPEN when a measurement starts (monitor, BQL),
 * OPEN -> CANCELLED (monitor) or OPEN -> CLOSED (measurement thread, when
 * a sleep of the window ends) with atomics, and back to IDLE when the
 * thread finishes, with the BQL held while it also changes the status,
 * so that the monitor never sees a running measurement it cannot
 * cancel.  A window slept again (the vCPU set changed) reopens; a
 * cancel that came while it was closed (@cancel_pending, atomic) then
 * ends it before it sleeps.  @cancel_sem wakes the thread.  Only the
 * measurement thread has @in_measurement set, so the dirty limit, which
 * shares the waiting code, is never woken early.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-migration.h"
#include "dirtyrate-cancel.h"
#include "trace.h"

enum {
    WINDOW_IDLE,
    WINDOW_OPEN,
    WINDOW_CANCELLED,
    WINDOW_CLOSED,
};

/* The longest single wait of a window, see dirtyrate_sleep_us() */
#define DIRTYRATE_SLICE_US (100 * 1000)

static QemuSemaphore cancel_sem;
static bool cancel_sem_ready;
static int window = WINDOW_IDLE;
static bool cancel_pending;
static __thread bool in_measurement;

void dirtyrate_cancel_arm(void)
{
    assert(bql_locked());
    if (!cancel_sem_ready) {
        qemu_sem_init(&cancel_sem, 0);
        cancel_sem_ready = true;
    }
    /* a post that the previous measurement did not consume */
    while (qemu_sem_timedwait(&cancel_sem, 0) == 0) {
        continue;
    }
    qatomic_set(&cancel_pending, false);
    qatomic_set(&window, WINDOW_OPEN);
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
    if (qatomic_cmpxchg(&window, WINDOW_CLOSED, WINDOW_OPEN) == WINDOW_CLOSED &&
        qatomic_xchg(&cancel_pending, false)) {
        qatomic_cmpxchg(&window, WINDOW_OPEN, WINDOW_CANCELLED);
    }
    if (us > 0 && qatomic_read(&window) == WINDOW_OPEN) {
        int64_t deadline = qemu_clock_get_us(QEMU_CLOCK_REALTIME) + us;
        int64_t left;

        /*
         * qemu_sem_timedwait() may time out on the wall clock, which NTP
         * slews and steps: wait in slices until the deadline on
         * QEMU_CLOCK_REALTIME (monotonic), so that the window is as long
         * as asked whatever the wall clock does.  A post (a cancel) ends
         * it at once.
         */
        while ((left = deadline - qemu_clock_get_us(QEMU_CLOCK_REALTIME)) > 0) {
            if (qemu_sem_timedwait(&cancel_sem,
                                   DIV_ROUND_UP(MIN(left, DIRTYRATE_SLICE_US),
                                                1000)) == 0) {
                break;
            }
        }
    }
    qatomic_cmpxchg(&window, WINDOW_OPEN, WINDOW_CLOSED);
}

void dirtyrate_cancel_self(void)
{
    assert(in_measurement);
    qatomic_set(&window, WINDOW_CANCELLED);
}

bool dirtyrate_cancel_finish(void)
{
    assert(bql_locked());
    in_measurement = false;
    return qatomic_xchg(&window, WINDOW_IDLE) == WINDOW_CANCELLED;
}

void qmp_cancel_dirty_rate(Error **errp)
{
    int old = qatomic_cmpxchg(&window, WINDOW_OPEN, WINDOW_CANCELLED);

    if (old == WINDOW_IDLE) {
        error_setg(errp, "no dirty rate measurement is running");
        return;
    }
    if (old == WINDOW_CLOSED) {
        /*
         * Between two sleeps of the window: the next one ends at once.
         * The thread may have reopened it before it could see this.
         */
        qatomic_xchg(&cancel_pending, true);    /* a full barrier */
        old = qatomic_cmpxchg(&window, WINDOW_OPEN, WINDOW_CANCELLED);
    }
    if (old == WINDOW_OPEN) {
        trace_dirtyrate_cancel();
        qemu_sem_post(&cancel_sem);
    }
}
