/*
 * Dirty-bitmap dirty-rate measurement by scanning QEMU's migration dirty
 * bitmap, for accelerators whose dirty log sync does not count pages.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_DIRTYRATE_SCAN_H
#define QEMU_MIGRATION_DIRTYRATE_SCAN_H

/* True if dirty-bitmap mode must count pages with this scanner */
bool dirtyrate_scan_needed(void);

/*
 * Reserve the migration dirty bitmap for a measurement: fails, with
 * nothing changed, while a migration is running in either direction or
 * dirty pages are tracked for migration (e.g. on a COLO secondary);
 * blocks outgoing and incoming migration until dirtyrate_scan_end().
 * Call with the BQL held.
 */
bool dirtyrate_scan_prepare(Error **errp);

/*
 * Whether an incoming migration may start: not while a measurement holds
 * the migration dirty bitmap.  BQL held.
 */
bool dirtyrate_scan_allow_incoming(Error **errp);

/* Clear the bitmap of migratable RAM: the window starts.  BQL held. */
void dirtyrate_scan_begin(void);

/*
 * Count and clear the pages dirtied since dirtyrate_scan_begin(), call
 * @mark (unless NULL) with the ram_addr_t of each, and release the
 * migration blocker.  BQL held, after the final log sync.
 */
uint64_t dirtyrate_scan_end(void (*mark)(uint64_t addr));

#endif
