/*
 * Cancelling a running dirty-rate measurement.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_DIRTYRATE_CANCEL_H
#define QEMU_MIGRATION_DIRTYRATE_CANCEL_H

/* A measurement starts (monitor, BQL): forget any earlier cancel. */
void dirtyrate_cancel_arm(void);

/* The measurement thread starts: its waits become cancellable. */
void dirtyrate_cancel_thread_enter(void);

/*
 * Sleep @us microseconds, or less if this is the measurement thread and
 * the measurement is cancelled meanwhile.  In the measurement thread,
 * the end of the sleep closes the window: a cancel after it is ignored.
 */
void dirtyrate_sleep_us(int64_t us);

/*
 * The measurement thread gives up (it cannot measure): it ends as a
 * cancelled one does, with no result.
 */
void dirtyrate_cancel_self(void);

/*
 * The measurement ends (its thread, BQL held, together with the status
 * change): returns whether it was cancelled.
 */
bool dirtyrate_cancel_finish(void);

#endif
