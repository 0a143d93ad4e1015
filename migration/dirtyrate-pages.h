/*
 * Unique pages dirtied during a dirty-rate measurement, in total and per
 * RAMBlock, whoever syncs the dirty log meanwhile.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_DIRTYRATE_PAGES_H
#define QEMU_MIGRATION_DIRTYRATE_PAGES_H

/*
 * Open the window: from now on, pages that dirty log syncs report are
 * counted once each.  Call with the BQL held, right after a log sync.
 */
void dirtyrate_pages_begin(void);

/* MiB/s that @pages target pages dirtied in @ms make, rounded to nearest */
int64_t dirtyrate_pages_to_rate(uint64_t pages, int64_t ms);

/* Count the page at @addr (a ram_addr_t) as dirtied.  Any thread. */
void dirtyrate_pages_mark(uint64_t addr);

/* Called for each measured RAMBlock: @size bytes, @dirty_pages unique */
typedef void DirtyRatePagesBlockFn(const char *idstr, uint64_t size,
                                   uint64_t dirty_pages, void *opaque);

/*
 * Close the window, after the final log sync, and return the number of
 * unique target pages dirtied in it.  With @fn, also call it for each
 * migratable RAMBlock, with @opaque.  BQL held.  Only the blocks that
 * were migratable when the window opened are measured, each up to the
 * used length it had then.
 */
uint64_t dirtyrate_pages_end(DirtyRatePagesBlockFn *fn, void *opaque);

#endif
