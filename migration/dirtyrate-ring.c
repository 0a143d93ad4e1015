/*
 * Dirty-rate measurement from the KVM dirty ring: count the unique pages
 * that the log syncs of the window harvest from the vCPUs' rings, and
 * report each vCPU's rate of ring entries.
 *
 * Copyright (c) 2020 HUAWEI TECHNOLOGIES CO.,LTD.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "system/kvm.h"
#include "system/memory.h"
#include "dirtyrate-mode.h"
#include "dirtyrate-cancel.h"
#include "dirtyrate-pages.h"

/* Ring overflows before the window; BQL */
static uint64_t window_overflows;

void dirtyrate_ring_window_begin(void)
{
    dirtyrate_pages_begin();
    window_overflows = kvm_dirty_ring_overflows();
}

/* Only with a KVM dirty ring */
static bool ring_available(void)
{
    return kvm_dirty_ring_enabled();
}

static void ring_init(DirtyRateStat *stat)
{
    stat->dirty_ring.nvcpu = -1;
    stat->dirty_ring.rates = NULL;
}

/*
 * The vCPUs' rates count dirty-ring entries: a page dirtied again after
 * its entry was harvested (by the reaper, a full ring or a log sync)
 * pushes another one.  dirty-rate counts each page once, from the log
 * syncs, which all pass the harvested pages through
 * physical_memory_set_dirty_lebitmap(); the entries are the event rate.
 */
static void ring_measure(const DirtyRateConfig *config, DirtyRateStat *stat)
{
    DirtyRateBlockList **tail = &stat->blocks;
    Error *err = NULL;

    bql_lock();
    if (!memory_global_dirty_log_start(GLOBAL_DIRTY_DIRTY_RATE, &err)) {
        /* nothing to count: end as if cancelled, with no result */
        error_report_err(err);
        bql_unlock();
        dirtyrate_cancel_self();
        return;
    }

    /* what the vCPUs dirtied before the window is not counted */
    memory_global_dirty_log_sync(false);
    dirtyrate_ring_window_begin();
    bql_unlock();

    stat->start_time = qemu_clock_get_ms(QEMU_CLOCK_HOST) / 1000;

    /* calculate vcpu dirtyrate; the final log sync stops logging */
    stat->calc_time_ms = vcpu_calculate_dirtyrate(config->calc_time_ms,
                                                  &stat->dirty_ring,
                                                  GLOBAL_DIRTY_DIRTY_RATE,
                                                  true);

    bql_lock();
    if (stat->calc_time_ms < 0) {
        dirtyrate_pages_end(NULL, NULL);
        bql_unlock();
        dirtyrate_cancel_self();
        return;
    }
    stat->ring_overflows = kvm_dirty_ring_overflows() - window_overflows;
    stat->dirty_pages = dirtyrate_pages_end(
        config->per_block ? dirtyrate_append_counted_block : NULL, &tail);
    bql_unlock();

    stat->dirty_rate = dirtyrate_pages_to_rate(stat->dirty_pages,
                                               stat->calc_time_ms);
}

static void ring_fill_info(const DirtyRateStat *stat, DirtyRateInfo *info)
{
    DirtyRateVcpuList **tail = &info->vcpu_dirty_rate;
    int i;

    /* sample-pages 0: page sampling did not run */
    info->sample_pages = 0;
    info->has_dirty_pages = true;
    info->dirty_pages = stat->dirty_pages;

    /* every ring entry, where dirty_rate counts each page once */
    info->has_vcpu_dirty_rate = true;
    info->has_event_rate = true;
    info->event_rate = 0;
    for (i = 0; i < stat->dirty_ring.nvcpu; i++) {
        DirtyRateVcpu *rate = g_new0(DirtyRateVcpu, 1);

        rate->id = stat->dirty_ring.rates[i].id;
        rate->dirty_rate = stat->dirty_ring.rates[i].dirty_rate;
        info->event_rate += rate->dirty_rate;
        QAPI_LIST_APPEND(tail, rate);
    }
    info->has_dirty_ring_overflows = true;
    info->dirty_ring_overflows = stat->ring_overflows;
}

static void ring_cleanup(DirtyRateStat *stat)
{
    g_free(stat->dirty_ring.rates);
    stat->dirty_ring.rates = NULL;
}

const DirtyRateModeOps dirtyrate_ring_ops = {
    .hmp_flag = "dirty_ring",
    .available = ring_available,
    .init = ring_init,
    .measure = ring_measure,
    .fill_info = ring_fill_info,
    .cleanup = ring_cleanup,
};
