/*
 * Memory layout shared by the dirty-guest boot sector and its qtest
 * helpers.  Included from assembly: preprocessor definitions only.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DIRTY_GUEST_LAYOUT_H
#define DIRTY_GUEST_LAYOUT_H

#define DG_LOAD_ADDR            0x7c00
#define DG_SECTOR_SIZE          512

/* Parameters inside the sector, at DG_LOAD_ADDR + DG_PARAMS_OFFSET */
#define DG_PARAMS_OFFSET        0x1e0
#define DG_P_REGION_BASE        0   /* guest-physical start of the region */
#define DG_P_REGION_PAGES       4   /* pages in the region */
#define DG_P_PAGES_PER_TICK     8   /* 0: unpaced, else pages per tick */
#define DG_P_TICKS_PER_BATCH    12  /* 0 or 1: a batch every tick */

#define DG_DEFAULT_REGION_BASE  0x100000
#define DG_DEFAULT_REGION_PAGES 1024

/* Statistics written by the guest, read by the host */
#define DG_STATS                0x7e00
#define DG_STATS_SIZE           32
#define DG_ST_WRITES            0   /* u64 */
#define DG_ST_TICKS             8   /* u32 */
#define DG_ST_PASSES            12  /* u32 */
#define DG_ST_MAGIC             16  /* u32 */
#define DG_ST_CURSOR            20  /* u32 */
#define DG_ST_PM_LAST           24  /* u32 */

#define DG_MAGIC                0x59545244  /* "DRTY" */

/*
 * ACPI PM timer: SeaBIOS puts the PIIX4/ICH9 PM I/O base at 0x600; the
 * timer counts at 3579545 Hz in 24 bits.  3580 counts make one tick of
 * about a millisecond.
 */
#define DG_PM_TIMER_PORT        0x608
#define DG_PM_TIMER_MASK        0xffffff
#define DG_PM_TIMER_HZ          3579545
#define DG_PM_PER_TICK          3580
#define DG_TICK_HZ              1000

#endif
