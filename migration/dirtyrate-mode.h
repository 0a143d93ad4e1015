/*
 * Dirty-rate measurement modes
 *
 * Each value of DirtyRateMeasureMode has one table of operations, in
 * its own file: dirtyrate-sampling.c, dirtyrate-bitmap.c and
 * dirtyrate-ring.c.  dirtyrate.c keeps what the modes share: the state
 * machine, the measurement thread and the monitor commands.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_DIRTYRATE_MODE_H
#define QEMU_MIGRATION_DIRTYRATE_MODE_H

#include "qapi/qapi-types-migration.h"
#include "dirtyrate.h"

typedef struct DirtyRateModeOps {
    /* The HMP calc_dirty_rate flag that selects the mode, or NULL */
    const char *hmp_flag;

    /*
     * The mode takes calc-dirty-rate's sample-pages, and "info
     * dirty_rate" shows it (the other modes' fill_info zero it)
     */
    bool takes_sample_pages;

    /* Optional.  calc-dirty-rate, BQL: can the mode measure here? */
    bool (*available)(void);

    /*
     * Optional.  calc-dirty-rate, BQL, status already 'measuring': get
     * what the measurement needs before its thread starts.  On failure
     * nothing is left to undo and the status goes back.
     */
    bool (*prepare)(Error **errp);

    /*
     * Optional.  calc-dirty-rate, BQL: reset the mode's part of @stat
     * for a new measurement, before its thread starts.
     */
    void (*init)(DirtyRateStat *stat);

    /*
     * Measurement thread, without the BQL: measure for
     * @config->calc_time_ms and fill @stat: start_time, calc_time_ms
     * (the window's length) and dirty_rate, which the completion event
     * and query-dirty-rate read, and the mode's own results.  A
     * dirty-log mode that cannot start (or restart) the log calls
     * dirtyrate_cancel_self() and returns.  Page sampling that cannot
     * allocate its samples, or got none, ends 'measured' with
     * dirty_rate -1, as before the table.
     */
    void (*measure)(const DirtyRateConfig *config, DirtyRateStat *stat);

    /*
     * query-dirty-rate, BQL, status 'measured': add the mode's results
     * in @stat to @info.
     */
    void (*fill_info)(const DirtyRateStat *stat, DirtyRateInfo *info);

    /*
     * Optional.  calc-dirty-rate, BQL, before init of the next
     * measurement: free what measure left in @stat.
     */
    void (*cleanup)(DirtyRateStat *stat);
} DirtyRateModeOps;

extern const DirtyRateModeOps dirtyrate_sampling_ops;
extern const DirtyRateModeOps dirtyrate_bitmap_ops;
extern const DirtyRateModeOps dirtyrate_ring_ops;

/*
 * Dirty-ring mode (dirtyrate-ring.c), BQL: open the measurement's
 * unique-page window.  vcpu_calculate_dirtyrate() in dirtyrate.c opens
 * it again when a vCPU hot-plug restarts a one-shot
 * GLOBAL_DIRTY_DIRTY_RATE window, which only dirty-ring mode runs.
 */
void dirtyrate_ring_window_begin(void);

/*
 * Helpers that dirtyrate.c gives the modes
 */

/*
 * Measurement thread: wait until @msec milliseconds after
 * @initial_time (QEMU_CLOCK_REALTIME, ms) or a cancel, and return the
 * length of the window, at least 1 ms.
 */
int64_t dirtyrate_stat_wait(int64_t msec, int64_t initial_time);

/*
 * DirtyRatePagesBlockFn for the per-block results of a dirty-log mode:
 * append a block's unique count, as a rate over the window, to the list
 * whose tail @opaque points to (a DirtyRateBlockList ***).  The window
 * is the running measurement's calc_time_ms, which measure sets before
 * it ends the unique-page window.
 */
void dirtyrate_append_counted_block(const char *idstr, uint64_t size,
                                    uint64_t dirty_pages, void *opaque);

#endif
