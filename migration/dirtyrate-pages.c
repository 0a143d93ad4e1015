/*
 * Unique pages dirtied during a dirty-rate measurement.
 *
 * dirty-rate means, in every mode, the unique guest pages dirtied in the
 * window divided by its length: what precopy would have to resend.
 * Upstream added up what every dirty log sync in the window reported.
 * That is the unique count only if the window holds a single sync: a
 * page dirtied before and after a migration's sync counted twice, and in
 * dirty-ring mode every write-protect fault counted, so the three modes
 * gave three answers.
 *
 * Here every page a sync reports (physical_memory_set_dirty_lebitmap()
 * calls dirtyrate_pages_record_lebitmap() while a measurement runs, for
 * the dirty bitmap and the dirty ring alike) sets a bit in a bitmap of
 * the whole ram_addr_t space, allocated when the window opens; the
 * unique pages are the bits set when it closes.  Scanning accelerators
 * (TCG) mark pages with dirtyrate_pages_mark().  Per-RAMBlock results are
 * that bitmap's population within each block.
 *
 * Locking: all state is read and written with the BQL held; every dirty
 * log sync runs under it.  Nothing here runs on a vCPU's dirty path.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bitops.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qemu/rcu_queue.h"
#include "exec/target_page.h"
#include "system/ram_addr.h"
#include "system/ramblock.h"
#include "ram.h"
#include "dirtyrate-pages.h"
#include "dirtyrate.h"
#include "trace.h"

/* One bit per target page of the ram_addr_t space; NULL outside a window */
static unsigned long *window_bmap;
static uint64_t window_pages;   /* bits in window_bmap */

void dirtyrate_pages_begin(void)
{
    RAMBlock *block;
    uint64_t end = 0;

    assert(bql_locked());
    assert(!window_bmap);

    WITH_RCU_READ_LOCK_GUARD() {
        RAMBLOCK_FOREACH(block) {
            end = MAX(end, block->offset + block->max_length);
        }
    }
    window_pages = end >> qemu_target_page_bits();
    window_bmap = bitmap_new(window_pages);
}

void dirtyrate_pages_mark(uint64_t addr)
{
    uint64_t page = addr >> qemu_target_page_bits();

    assert(bql_locked());
    if (window_bmap && page < window_pages) {
        set_bit(page, window_bmap);
    }
}

void dirtyrate_pages_record_lebitmap(const unsigned long *bitmap,
                                     uint64_t start, uint64_t pages)
{
    uint64_t first = start >> qemu_target_page_bits();
    unsigned long hpratio = qemu_real_host_page_size() /
                            qemu_target_page_size();
    uint64_t words = DIV_ROUND_UP(pages, BITS_PER_LONG);
    uint64_t i;

    if (!window_bmap) {
        return;
    }
    assert(bql_locked());

    for (i = 0; i < words; i++) {
        unsigned long bits = leul_to_cpu(bitmap[i]);

        if (!bits) {
            continue;
        }
        if (hpratio == 1 && !(first % BITS_PER_LONG) &&
            first + (i + 1) * BITS_PER_LONG <= window_pages) {
            /* the common case: one word of ours per word reported */
            window_bmap[first / BITS_PER_LONG + i] |= bits;
            continue;
        }
        while (bits) {
            int j = ctzl(bits);
            uint64_t page = first + (i * BITS_PER_LONG + j) * hpratio;
            unsigned long k;

            bits &= bits - 1;
            for (k = 0; k < hpratio && page + k < window_pages; k++) {
                set_bit(page + k, window_bmap);
            }
        }
    }
}

int64_t dirtyrate_pages_to_rate(uint64_t pages, int64_t ms)
{
    uint64_t bytes = pages * qemu_target_page_size();

    assert(ms > 0);
    return (int64_t)((bytes * 1000.0 / ms + MiB / 2) / MiB);
}

uint64_t dirtyrate_pages_end(int64_t ms, DirtyRateBlockList **blocks)
{
    DirtyRateBlockList **tail = blocks;
    uint64_t unique;
    RAMBlock *block;

    assert(bql_locked());
    assert(window_bmap);
    unique = bitmap_count_one(window_bmap, window_pages);

    if (blocks) {
        *blocks = NULL;
        WITH_RCU_READ_LOCK_GUARD() {
            RAMBLOCK_FOREACH_MIGRATABLE(block) {
                DirtyRateBlock *b = g_new0(DirtyRateBlock, 1);
                uint64_t first = block->offset >> qemu_target_page_bits();
                uint64_t n = qemu_ram_get_used_length(block) >>
                             qemu_target_page_bits();

                b->idstr = g_strdup(qemu_ram_get_idstr(block));
                b->size = qemu_ram_get_used_length(block);
                b->has_dirty_pages = true;
                b->dirty_pages = first + n <= window_pages ?
                    bitmap_count_one_with_offset(window_bmap, first, n) : 0;
                b->dirty_rate = dirtyrate_pages_to_rate(b->dirty_pages, ms);
                QAPI_LIST_APPEND(tail, b);
            }
        }
    }

    g_free(window_bmap);
    window_bmap = NULL;
    trace_dirtyrate_pages_end(unique);
    return unique;
}
