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
#define DG_P_VCPUS              16  /* 0 or 1: the BSP alone, else vCPUs */
#define DG_P_FREEZE             20  /* not 0: every vCPU stops writing */

#define DG_DEFAULT_REGION_BASE  0x100000
#define DG_DEFAULT_REGION_PAGES 1024

/*
 * Statistics written by the guest, read by the host: one block of
 * DG_STATS_SIZE bytes per vCPU, vCPU i's at DG_STATS_VCPU(i), each on its
 * own page.  Ticks and the PM timer value are kept in vCPU 0's block only.
 */
#define DG_STATS                0x7e00
#define DG_STATS_SIZE           32
#define DG_STATS_STRIDE         0x1000
#define DG_STATS_VCPU(i)        (DG_STATS + (i) * DG_STATS_STRIDE)
#define DG_MAX_VCPUS            8
/* vCPU i's stack grows down from DG_STACK_TOP + i * DG_STATS_STRIDE */
#define DG_STACK_TOP            0x9000
#define DG_ST_WRITES            0   /* u64 */
#define DG_ST_TICKS             8   /* u32 */
#define DG_ST_PASSES            12  /* u32 */
#define DG_ST_MAGIC             16  /* u32 */
#define DG_ST_CURSOR            20  /* u32, index in the region */
#define DG_ST_PM_LAST           24  /* u32 */

#define DG_MAGIC                0x59545244  /* "DRTY" */

/*
 * Multi-vCPU start: vCPU 0 writes a jump to DG_LOAD_ADDR at DG_AP_STUB
 * and starts the others with INIT and SIPI (vector DG_AP_STUB >> 12)
 * through the xAPIC at DG_APIC_BASE.
 */
#define DG_AP_STUB              0x7000
#define DG_AP_JMP_REL16         (DG_LOAD_ADDR - DG_AP_STUB - 3)
#define DG_APIC_BASE            0xfee00000
#define DG_APIC_ID              0x20
#define DG_APIC_ICR_LO          0x300

/*
 * Paced with several vCPUs, a vCPU that finds up to DG_CATCH_UP batches
 * not served yet (the host did not run it) serves them one by one.
 */
#define DG_CATCH_UP             64

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
