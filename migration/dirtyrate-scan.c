/*
 * Dirty-bitmap dirty-rate measurement by scanning QEMU's migration dirty
 * bitmap.
 *
 * With KVM, each dirty log sync hands QEMU a bitmap of the pages dirtied
 * since the previous one, and physical_memory_set_dirty_lebitmap() adds
 * them to the measurement's own count (dirtyrate-pages.c).  TCG
 * has no such log: its store slow path sets bits in the
 * DIRTY_MEMORY_MIGRATION bitmap directly and nothing counts them, so the
 * mode always reported 0 MiB/s.  For such accelerators the bits of every
 * migratable RAMBlock are cleared when the window opens (which also
 * re-arms TCG's not-dirty TLB entries) and the pages found dirty when it
 * closes are counted (and handed to the caller): the unique pages dirtied
 * in the window, the same quantity KVM's log gives.
 *
 * Whoever else tracks dirty pages for migration owns the
 * DIRTY_MEMORY_MIGRATION bits: clearing them would lose pages that an
 * outgoing migration still has to send, or pages that a COLO secondary
 * must restore from its cache at the next checkpoint (it would silently
 * diverge from the primary).  A measurement therefore refuses to start
 * while a migration runs in either direction or anybody tracks dirty
 * pages for migration, and, until it ends, holds a migration blocker and
 * makes migrate-incoming (which a COLO secondary needs) fail.
 *
 * Locking: every function runs with the BQL held, which also protects
 * scan_blocker.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/rcu_queue.h"
#include "exec/target_page.h"
#include "system/kvm.h"
#include "exec/cpu-common.h"
#include "system/physmem.h"
#include "system/ramblock.h"
#include "migration/blocker.h"
#include "migration/misc.h"
#include "system/memory.h"
#include "migration.h"
#include "ram.h"
#include "dirtyrate-scan.h"
#include "trace.h"

static Error *scan_blocker;

bool dirtyrate_scan_needed(void)
{
    return !kvm_enabled();
}

static bool incoming_migration_active(void)
{
    switch (migration_incoming_get_current()->state) {
    case MIGRATION_STATUS_NONE:
    case MIGRATION_STATUS_COMPLETED:
    case MIGRATION_STATUS_FAILED:
        return false;
    default:
        return true;
    }
}

bool dirtyrate_scan_allow_incoming(Error **errp)
{
    assert(bql_locked());
    if (scan_blocker) {
        error_setg(errp, "a dirty-bitmap dirty rate measurement is running "
                   "and shares the migration dirty bitmap: wait for it to "
                   "end");
        return false;
    }
    return true;
}

bool dirtyrate_scan_prepare(Error **errp)
{
    assert(bql_locked());
    assert(!scan_blocker);

    if (migration_is_running() || incoming_migration_active() ||
        (global_dirty_tracking & GLOBAL_DIRTY_MIGRATION)) {
        error_setg(errp, "dirty-bitmap mode cannot measure while a "
                   "migration or COLO is running: without KVM it shares "
                   "the migration dirty bitmap");
        return false;
    }
    error_setg(&scan_blocker, "a dirty-bitmap dirty rate measurement is "
               "running");
    return migrate_add_blocker_internal(&scan_blocker, errp) == 0;
}

/* Clear the bits; count the pages dirty, and hand each to @mark */
static uint64_t scan_and_clear(void (*mark)(uint64_t addr))
{
    size_t page_size = qemu_target_page_size();
    uint64_t dirty = 0;
    RAMBlock *block;

    WITH_RCU_READ_LOCK_GUARD() {
        RAMBLOCK_FOREACH_MIGRATABLE(block) {
            ram_addr_t len = qemu_ram_get_used_length(block);
            ram_addr_t ofs;
            g_autofree DirtyBitmapSnapshot *snap =
                physical_memory_snapshot_and_clear_dirty(
                    block->mr, 0, len, DIRTY_MEMORY_MIGRATION);

            for (ofs = 0; ofs < len; ofs += page_size) {
                if (physical_memory_snapshot_get_dirty(snap,
                                                       block->offset + ofs,
                                                       page_size)) {
                    dirty++;
                    if (mark) {
                        mark(block->offset + ofs);
                    }
                }
            }
        }
    }
    return dirty;
}

void dirtyrate_scan_begin(void)
{
    assert(bql_locked());
    scan_and_clear(NULL);
}

uint64_t dirtyrate_scan_end(void (*mark)(uint64_t addr))
{
    uint64_t dirty;

    assert(bql_locked());
    dirty = scan_and_clear(mark);
    migrate_del_blocker(&scan_blocker);
    trace_dirtyrate_scan_end(dirty);
    return dirty;
}
