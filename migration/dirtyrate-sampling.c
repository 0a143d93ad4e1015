/*
 * Dirty-rate measurement by page sampling: hash a random sample of each
 * RAMBlock's pages, wait, and count the samples whose hash changed.
 *
 * Copyright (c) 2020 HUAWEI TECHNOLOGIES CO.,LTD.
 *
 * Authors:
 *  Chuan Zheng <zhengchuan@huawei.com>
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/rcu.h"
#include "qemu/xxhash.h"
#include "exec/target_page.h"
#include "system/ramblock.h"
#include "ram.h"
#include "trace.h"
#include "dirtyrate-mode.h"
#include "dirtyrate-estimate.h"

static void update_dirtyrate_stat(DirtyRateStat *stat,
                                  struct RamblockDirtyInfo *info)
{
    /* a block without samples tells nothing about its dirty fraction */
    if (!info->sample_pages_count) {
        return;
    }
    stat->page_sampling.total_dirty_samples += info->sample_dirty_count;
    stat->page_sampling.total_sample_count += info->sample_pages_count;
    stat->page_sampling.total_block_bytes +=
        info->ramblock_pages * qemu_target_page_size();
}

static void update_dirtyrate(DirtyRateStat *stat, uint64_t msec)
{
    SampleVMStat *ps = &stat->page_sampling;
    DirtyRateEstimate e;

    dirtyrate_sampling_estimate(ps->total_dirty_samples,
                                ps->total_sample_count,
                                ps->total_block_bytes, msec, &e);
    stat->dirty_rate = e.rate;
    ps->rate_low = e.low;
    ps->rate_high = e.high;
}

/*
 * Compute hash of a single page of size TARGET_PAGE_SIZE.
 */
static uint32_t compute_page_hash(void *ptr)
{
    size_t page_size = qemu_target_page_size();
    uint32_t i;
    uint64_t v1, v2, v3, v4;
    uint64_t res;
    const uint64_t *p = ptr;

    v1 = QEMU_XXHASH_SEED + XXH_PRIME64_1 + XXH_PRIME64_2;
    v2 = QEMU_XXHASH_SEED + XXH_PRIME64_2;
    v3 = QEMU_XXHASH_SEED + 0;
    v4 = QEMU_XXHASH_SEED - XXH_PRIME64_1;
    for (i = 0; i < page_size / 8; i += 4) {
        v1 = XXH64_round(v1, p[i + 0]);
        v2 = XXH64_round(v2, p[i + 1]);
        v3 = XXH64_round(v3, p[i + 2]);
        v4 = XXH64_round(v4, p[i + 3]);
    }
    res = XXH64_mergerounds(v1, v2, v3, v4);
    res += page_size;
    res = XXH64_avalanche(res);
    return (uint32_t)(res & UINT32_MAX);
}


/*
 * get hash result for the sampled memory with length of TARGET_PAGE_SIZE
 * in ramblock, which starts from ramblock base address.
 */
static uint32_t get_ramblock_vfn_hash(struct RamblockDirtyInfo *info,
                                      uint64_t vfn)
{
    uint32_t hash;

    hash = compute_page_hash(info->ramblock_addr +
                             vfn * qemu_target_page_size());

    trace_get_ramblock_vfn_hash(info->idstr, vfn, hash);
    return hash;
}

static bool save_ramblock_hash(struct RamblockDirtyInfo *info)
{
    unsigned int sample_pages_count;
    int i;
    GRand *rand;

    sample_pages_count = info->sample_pages_count;

    /* ramblock size less than one page, return success to skip this ramblock */
    if (unlikely(info->ramblock_pages == 0 || sample_pages_count == 0)) {
        return true;
    }

    info->hash_result = g_try_malloc0_n(sample_pages_count,
                                        sizeof(uint32_t));
    if (!info->hash_result) {
        return false;
    }

    info->sample_page_vfn = g_try_malloc0_n(sample_pages_count,
                                            sizeof(uint64_t));
    if (!info->sample_page_vfn) {
        g_free(info->hash_result);
        return false;
    }

    rand  = g_rand_new();
    for (i = 0; i < sample_pages_count; i++) {
        /*
         * Any page, the last one too, of a block of any size:
         * g_rand_int_range() takes gint32 bounds, which a block of 2^31
         * pages (8 TiB) overflows.  The modulo bias of 64 random bits is
         * below 2^-20 for any block that fits in memory.
         */
        uint64_t r = (uint64_t)g_rand_int(rand) << 32 | g_rand_int(rand);

        info->sample_page_vfn[i] = r % info->ramblock_pages;
        info->hash_result[i] = get_ramblock_vfn_hash(info,
                                                     info->sample_page_vfn[i]);
    }
    g_rand_free(rand);

    return true;
}

static void get_ramblock_dirty_info(RAMBlock *block,
                                    struct RamblockDirtyInfo *info,
                                    const DirtyRateConfig *config)
{
    uint64_t sample_pages_per_gigabytes = config->sample_pages_per_gigabytes;
    gsize len;

    /* Right shift 30 bits to calc ramblock size in GB */
    info->sample_pages_count = (qemu_ram_get_used_length(block) *
                                sample_pages_per_gigabytes) >> 30;
    /* Right shift TARGET_PAGE_BITS to calc page count */
    info->ramblock_pages = qemu_ram_get_used_length(block) >>
                           qemu_target_page_bits();
    info->ramblock_addr = qemu_ram_get_host_addr(block);
    len = g_strlcpy(info->idstr, qemu_ram_get_idstr(block),
                    sizeof(info->idstr));
    g_assert(len < sizeof(info->idstr));
}

static void free_ramblock_dirty_info(struct RamblockDirtyInfo *infos, int count)
{
    int i;

    if (!infos) {
        return;
    }

    for (i = 0; i < count; i++) {
        g_free(infos[i].sample_page_vfn);
        g_free(infos[i].hash_result);
    }
    g_free(infos);
}

static bool skip_sample_ramblock(RAMBlock *block)
{
    /*
     * Sample only blocks of at least MIN_RAMBLOCK_SIZE KiB.
     */
    if (qemu_ram_get_used_length(block) < (MIN_RAMBLOCK_SIZE << 10)) {
        trace_skip_sample_ramblock(block->idstr,
                                   qemu_ram_get_used_length(block));
        return true;
    }

    return false;
}

static bool record_ramblock_hash_info(struct RamblockDirtyInfo **block_dinfo,
                                      const DirtyRateConfig *config,
                                      int *block_count)
{
    struct RamblockDirtyInfo *info = NULL;
    struct RamblockDirtyInfo *dinfo = NULL;
    RAMBlock *block = NULL;
    int total_count = 0;
    int index = 0;
    bool ret = false;

    RAMBLOCK_FOREACH_MIGRATABLE(block) {
        if (skip_sample_ramblock(block)) {
            continue;
        }
        total_count++;
    }

    dinfo = g_try_malloc0_n(total_count, sizeof(struct RamblockDirtyInfo));
    if (dinfo == NULL) {
        goto out;
    }

    RAMBLOCK_FOREACH_MIGRATABLE(block) {
        if (skip_sample_ramblock(block)) {
            continue;
        }
        if (index >= total_count) {
            break;
        }
        info = &dinfo[index];
        get_ramblock_dirty_info(block, info, config);
        if (!save_ramblock_hash(info)) {
            goto out;
        }
        index++;
    }
    ret = true;

out:
    *block_count = index;
    *block_dinfo = dinfo;
    return ret;
}

static void calc_page_dirty_rate(struct RamblockDirtyInfo *info)
{
    uint32_t hash;
    int i;

    for (i = 0; i < info->sample_pages_count; i++) {
        hash = get_ramblock_vfn_hash(info, info->sample_page_vfn[i]);
        if (hash != info->hash_result[i]) {
            trace_calc_page_dirty_rate(info->idstr, hash, info->hash_result[i]);
            info->sample_dirty_count++;
        }
    }
}

static struct RamblockDirtyInfo *
find_block_matched(RAMBlock *block, int count,
                  struct RamblockDirtyInfo *infos)
{
    int i;

    for (i = 0; i < count; i++) {
        if (!strcmp(infos[i].idstr, qemu_ram_get_idstr(block))) {
            break;
        }
    }

    if (i == count) {
        return NULL;
    }

    if (infos[i].ramblock_addr != qemu_ram_get_host_addr(block) ||
        infos[i].ramblock_pages !=
            (qemu_ram_get_used_length(block) >> qemu_target_page_bits())) {
        trace_find_page_matched(block->idstr);
        return NULL;
    }

    return &infos[i];
}

/* A block's own estimate, from its samples over @ms milliseconds */
static DirtyRateBlock *sampled_block_rate(struct RamblockDirtyInfo *info,
                                          int64_t ms)
{
    DirtyRateBlock *b = g_new0(DirtyRateBlock, 1);
    DirtyRateEstimate e;

    b->idstr = g_strdup(info->idstr);
    b->size = info->ramblock_pages * qemu_target_page_size();
    dirtyrate_sampling_estimate(info->sample_dirty_count,
                                info->sample_pages_count, b->size, ms, &e);
    b->dirty_rate = e.rate;
    b->has_sampled_pages = true;
    b->sampled_pages = info->sample_pages_count;
    b->has_dirty_samples = true;
    b->dirty_samples = info->sample_dirty_count;
    return b;
}

static bool compare_page_hash_info(DirtyRateStat *stat,
                                   struct RamblockDirtyInfo *info,
                                   int block_count, bool per_block)
{
    struct RamblockDirtyInfo *block_dinfo = NULL;
    DirtyRateBlockList **tail = &stat->blocks;
    RAMBlock *block = NULL;

    RAMBLOCK_FOREACH_MIGRATABLE(block) {
        if (skip_sample_ramblock(block)) {
            continue;
        }
        block_dinfo = find_block_matched(block, block_count, info);
        if (block_dinfo == NULL) {
            continue;
        }
        calc_page_dirty_rate(block_dinfo);
        update_dirtyrate_stat(stat, block_dinfo);
        if (per_block && block_dinfo->sample_pages_count) {
            QAPI_LIST_APPEND(tail, sampled_block_rate(block_dinfo,
                                                      stat->calc_time_ms));
        }
    }

    if (stat->page_sampling.total_sample_count == 0) {
        return false;
    }

    return true;
}

static void sampling_measure(const DirtyRateConfig *config,
                             DirtyRateStat *stat)
{
    struct RamblockDirtyInfo *block_dinfo = NULL;
    int block_count = 0;
    int64_t initial_time;

    rcu_read_lock();
    initial_time = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    stat->start_time = qemu_clock_get_ms(QEMU_CLOCK_HOST) / 1000;
    if (!record_ramblock_hash_info(&block_dinfo, config, &block_count)) {
        goto out;
    }
    rcu_read_unlock();

    stat->calc_time_ms = dirtyrate_stat_wait(config->calc_time_ms,
                                             initial_time);

    rcu_read_lock();
    if (!compare_page_hash_info(stat, block_dinfo, block_count,
                                config->per_block)) {
        goto out;
    }

    update_dirtyrate(stat, stat->calc_time_ms);

out:
    rcu_read_unlock();
    free_ramblock_dirty_info(block_dinfo, block_count);
}

static void sampling_init(DirtyRateStat *stat)
{
    stat->page_sampling.total_dirty_samples = 0;
    stat->page_sampling.total_sample_count = 0;
    stat->page_sampling.total_block_bytes = 0;
}

static void sampling_fill_info(const DirtyRateStat *stat, DirtyRateInfo *info)
{
    const SampleVMStat *ps = &stat->page_sampling;

    if (!ps->total_sample_count) {
        return;
    }
    info->has_sampled_pages = true;
    info->sampled_pages = ps->total_sample_count;
    info->has_dirty_samples = true;
    info->dirty_samples = ps->total_dirty_samples;
    info->has_dirty_rate_low = true;
    info->dirty_rate_low = ps->rate_low;
    info->has_dirty_rate_high = true;
    info->dirty_rate_high = ps->rate_high;
}

const DirtyRateModeOps dirtyrate_sampling_ops = {
    .takes_sample_pages = true,
    .init = sampling_init,
    .measure = sampling_measure,
    .fill_info = sampling_fill_info,
};
