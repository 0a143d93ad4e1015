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
 * the used length of its migratable RAMBlock, allocated for each such
 * block when the window opens: what is measured, not the whole ram_addr_t
 * space.  The unique pages are the bits set when it closes.  Scanning
 * accelerators (TCG) mark pages with dirtyrate_pages_mark().  Per-RAMBlock
 * results are each block's population.  Pages outside those blocks, or
 * beyond a block's used length when the window opened, are not counted.
 *
 * Locking: physical_memory_set_dirty_lebitmap() has callers that do not
 * hold the BQL (VFIO's dirty page tracking and IOMMU unmap notifiers, for
 * example), so the window is protected by its own leaf lock, window_lock:
 * nothing else is taken while it is held, and nothing allocates or waits
 * under it but begin and end.  The window is opened and closed with the
 * BQL held as well; window_open is read without the lock first, so that
 * syncs outside a measurement do not take it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bitops.h"
#include "qemu/host-utils.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qemu/rcu_queue.h"
#include "exec/target_page.h"
#include "system/ram_addr.h"
#include "system/ramblock.h"
#include "ram.h"
#include "dirtyrate-pages.h"
#include "dirtyrate.h"
#include "trace.h"

typedef struct WindowBlock {
    char *idstr;
    uint64_t first;             /* first target page, in ram_addr_t space */
    uint64_t pages;             /* used length when the window opened */
    uint64_t size;              /* in bytes */
    unsigned long *bmap;        /* one bit per target page */
} WindowBlock;

static QemuMutex window_lock;
static bool window_open;        /* written under window_lock and the BQL */
static WindowBlock *window;     /* window_lock */
static int window_nblocks;      /* window_lock */

static void __attribute__((__constructor__)) dirtyrate_pages_init(void)
{
    qemu_mutex_init(&window_lock);
}

void dirtyrate_pages_begin(void)
{
    WindowBlock *blocks = NULL;
    RAMBlock *block;
    int n = 0;

    assert(bql_locked());
    assert(!window_open);

    WITH_RCU_READ_LOCK_GUARD() {
        RAMBLOCK_FOREACH_MIGRATABLE(block) {
            WindowBlock *w;

            blocks = g_renew(WindowBlock, blocks, n + 1);
            w = &blocks[n++];
            w->idstr = g_strdup(qemu_ram_get_idstr(block));
            w->first = block->offset >> qemu_target_page_bits();
            w->size = qemu_ram_get_used_length(block);
            w->pages = w->size >> qemu_target_page_bits();
            w->bmap = bitmap_new(w->pages);
        }
    }

    WITH_QEMU_LOCK_GUARD(&window_lock) {
        window = blocks;
        window_nblocks = n;
        qatomic_set(&window_open, true);
    }
}

/* The block that holds target page @page, or NULL.  window_lock held */
static WindowBlock *window_find(uint64_t page)
{
    int i;

    for (i = 0; i < window_nblocks; i++) {
        if (page >= window[i].first &&
            page - window[i].first < window[i].pages) {
            return &window[i];
        }
    }
    return NULL;
}

/* Set the bit of target page @page, if it is measured.  window_lock held */
static void window_set(uint64_t page)
{
    WindowBlock *w = window_find(page);

    if (w) {
        set_bit(page - w->first, w->bmap);
    }
}

void dirtyrate_pages_mark(uint64_t addr)
{
    QEMU_LOCK_GUARD(&window_lock);
    if (window) {
        window_set(addr >> qemu_target_page_bits());
    }
}

void dirtyrate_pages_record_lebitmap(const unsigned long *bitmap,
                                     uint64_t start, uint64_t pages)
{
    uint64_t first = start >> qemu_target_page_bits();
    unsigned long hpratio = qemu_real_host_page_size() /
                            qemu_target_page_size();
    uint64_t words = DIV_ROUND_UP(pages, BITS_PER_LONG);
    WindowBlock *w;
    uint64_t i;

    if (!qatomic_read(&window_open)) {
        return;
    }

    QEMU_LOCK_GUARD(&window_lock);
    if (!window) {
        return;
    }
    w = window_find(first);

    for (i = 0; i < words; i++) {
        unsigned long bits = leul_to_cpu(bitmap[i]);
        uint64_t base = first + i * BITS_PER_LONG * hpratio;

        if (!bits) {
            continue;
        }
        if (w && hpratio == 1 && base >= w->first &&
            !((base - w->first) % BITS_PER_LONG) &&
            base - w->first + BITS_PER_LONG <= w->pages) {
            /* the common case: one word of ours per word reported */
            w->bmap[(base - w->first) / BITS_PER_LONG] |= bits;
            continue;
        }
        while (bits) {
            int j = ctzl(bits);
            uint64_t page = first + (i * BITS_PER_LONG + j) * hpratio;
            unsigned long k;

            bits &= bits - 1;
            for (k = 0; k < hpratio; k++) {
                window_set(page + k);
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

uint64_t dirtyrate_pages_end(DirtyRatePagesBlockFn *fn, void *opaque)
{
    WindowBlock *closed;
    uint64_t unique = 0;
    int i, n;

    assert(bql_locked());
    WITH_QEMU_LOCK_GUARD(&window_lock) {
        assert(window);
        closed = window;
        n = window_nblocks;
        window = NULL;
        window_nblocks = 0;
        qatomic_set(&window_open, false);
    }

    for (i = 0; i < n; i++) {
        WindowBlock *w = &closed[i];
        uint64_t dirty = bitmap_count_one(w->bmap, w->pages);

        unique += dirty;
        if (fn) {
            fn(w->idstr, w->size, dirty, opaque);
        }
        g_free(w->idstr);
        g_free(w->bmap);
    }
    g_free(closed);
    trace_dirtyrate_pages_end(unique);
    return unique;
}
