/*
 * Dirty-rate measurement from the dirty bitmap: with dirty logging on,
 * count the unique pages that the log syncs of the window report.
 *
 * Copyright (c) 2020 HUAWEI TECHNOLOGIES CO.,LTD.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "system/kvm.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "ram.h"
#include "dirtyrate-mode.h"
#include "dirtyrate-cancel.h"
#include "dirtyrate-pages.h"
#include "dirtyrate-scan.h"

/* With a KVM dirty ring there is no bitmap to read */
static bool bitmap_available(void)
{
    return !kvm_dirty_ring_enabled();
}

/* Without KVM, the pages are found by a scan (dirtyrate-scan.c) */
static bool bitmap_prepare(Error **errp)
{
    return !dirtyrate_scan_needed() || dirtyrate_scan_prepare(errp);
}

static inline void dirtyrate_manual_reset_protect(void)
{
    RAMBlock *block = NULL;

    WITH_RCU_READ_LOCK_GUARD() {
        RAMBLOCK_FOREACH_MIGRATABLE(block) {
            memory_region_clear_dirty_bitmap(block->mr, 0,
                                             block->used_length);
        }
    }
}

static void bitmap_measure(const DirtyRateConfig *config, DirtyRateStat *stat)
{
    int64_t start_time;
    DirtyRateBlockList **tail = &stat->blocks;
    Error *local_err = NULL;
    bool scan = dirtyrate_scan_needed();

    bql_lock();
    if (!memory_global_dirty_log_start(GLOBAL_DIRTY_DIRTY_RATE, &local_err)) {
        /* nothing to count: end as if cancelled, with no result */
        error_report_err(local_err);
        if (scan) {
            dirtyrate_scan_end(NULL);
        }
        bql_unlock();
        dirtyrate_cancel_self();
        return;
    }

    /*
     * 1'round of log sync may return all 1 bits with
     * KVM_DIRTY_LOG_INITIALLY_SET enable
     * skip it unconditionally and start dirty tracking
     * from 2'round of log sync
     */
    memory_global_dirty_log_sync(false);

    /*
     * reset page protect manually and unconditionally.
     * this make sure kvm dirty log be cleared if
     * KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE cap is enabled.
     */
    dirtyrate_manual_reset_protect();
    if (scan) {
        dirtyrate_scan_begin();
    }
    dirtyrate_pages_begin();
    bql_unlock();

    start_time = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    stat->start_time = qemu_clock_get_ms(QEMU_CLOCK_HOST) / 1000;

    stat->calc_time_ms = dirtyrate_stat_wait(config->calc_time_ms, start_time);

    /* fetch the dirty log, count, then stop dirty tracking */
    bql_lock();
    memory_global_dirty_log_sync(false);
    if (scan) {
        dirtyrate_scan_end(dirtyrate_pages_mark);
    }
    stat->dirty_pages = dirtyrate_pages_end(
        config->per_block ? dirtyrate_append_counted_block : NULL, &tail);
    memory_global_dirty_log_stop(GLOBAL_DIRTY_DIRTY_RATE);
    bql_unlock();

    stat->dirty_rate = dirtyrate_pages_to_rate(stat->dirty_pages,
                                               stat->calc_time_ms);
}

static void bitmap_fill_info(const DirtyRateStat *stat, DirtyRateInfo *info)
{
    info->sample_pages = 0;
    info->has_dirty_pages = true;
    info->dirty_pages = stat->dirty_pages;
}

const DirtyRateModeOps dirtyrate_bitmap_ops = {
    .hmp_flag = "dirty_bitmap",
    .available = bitmap_available,
    .prepare = bitmap_prepare,
    .measure = bitmap_measure,
    .fill_info = bitmap_fill_info,
};
