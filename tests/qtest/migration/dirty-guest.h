/*
 * A guest that dirties memory at a known rate, shared by the dirty-rate
 * and COLO qtests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QTEST_MIGRATION_DIRTY_GUEST_H
#define QTEST_MIGRATION_DIRTY_GUEST_H

#include "libqtest.h"
#include "dirty-guest/layout.h"

#define DIRTY_GUEST_PAGE_SIZE 4096

typedef struct DirtyGuestOpts {
    const char *accel;          /* "tcg" or "kvm" */
    unsigned dirty_ring_size;   /* KVM dirty ring entries; 0: bitmap */
    const char *accel_props;    /* more properties of -accel, or NULL */
    unsigned mem_mb;            /* guest RAM; 0: 256 */
    uint32_t region_base;       /* guest-physical; 0: 1 MiB */
    uint32_t region_pages;      /* 0: 64 MiB worth */
    uint32_t pages_per_tick;    /* 0: unpaced; else the whole guest's */
    unsigned vcpus;             /* 0: 1; at most DG_MAX_VCPUS */
    bool start_stopped;         /* -S: the sector is loaded, not run */
    bool shared_ram;            /* RAM in a file the test can read */
    bool oob;                   /* QMP with out-of-band commands */
    const char *incoming;       /* -incoming URI: waits for migration */
    const char *extra_args;
} DirtyGuestOpts;

typedef struct DirtyGuest {
    QTestState *qts;
    DirtyGuestOpts opts;
    char *tmpdir;
    char *disk;
    char *ram_path;             /* with shared_ram */
    bool sigstopped;            /* see dirty_guest_sigstop() */
} DirtyGuest;

typedef struct DirtyGuestStats {
    uint64_t writes;            /* page writes since boot, all vCPUs */
    uint32_t ticks;             /* 1 ms ticks since boot */
    /*
     * Completed passes over the whole region: the fewest passes any vCPU
     * has made over its slice
     */
    uint32_t passes;
    unsigned vcpus;             /* entries used in the arrays below */
    uint64_t vcpu_writes[DG_MAX_VCPUS]; /* page writes of each vCPU */
    uint32_t vcpu_passes[DG_MAX_VCPUS]; /* passes over its own slice */
} DirtyGuestStats;

/*
 * Whether a guest with @opts can run here.  If not, returns false and
 * sets @why to a message for g_test_skip().
 */
bool dirty_guest_can_run(const DirtyGuestOpts *opts, char **why);

/*
 * Boot a guest; unless it starts stopped or incoming, wait until it is
 * writing.
 * Returns NULL, with @why set, if the accelerator configuration cannot be
 * had on this host (e.g. no KVM dirty ring).
 */
DirtyGuest *dirty_guest_start(const DirtyGuestOpts *opts, char **why);
/*
 * The same for a test: if the guest cannot run here, or its accelerator
 * configuration cannot be had, skips the test saying why (g_test_skip())
 * and returns NULL.
 */
DirtyGuest *dirty_guest_start_or_skip(const DirtyGuestOpts *opts);
void dirty_guest_quit(DirtyGuest *dg);

void dirty_guest_read(DirtyGuest *dg, DirtyGuestStats *st);
/* Wait until the guest has made @writes more page writes, all vCPUs. */
void dirty_guest_wait_writes(DirtyGuest *dg, uint64_t writes);
/*
 * Wait until every vCPU is running and has written a page since, except
 * a vCPU whose share of a paced rate is no page at all (pages_per_tick
 * below vcpus): that one only has to be running.
 */
void dirty_guest_wait_running(DirtyGuest *dg);
/*
 * vCPU @i's slice of the region: pages [*first, *end) of it.  vCPU i
 * writes pages [i * P / n, (i + 1) * P / n) of the P pages, and its share
 * [i * N / n, (i + 1) * N / n) of pages_per_tick = N in every batch.
 */
void dirty_guest_vcpu_slice(DirtyGuest *dg, unsigned i, uint32_t *first,
                            uint32_t *end);
void dirty_guest_set_pages_per_tick(DirtyGuest *dg, uint32_t pages);
/*
 * Make the region @pages long while the guest runs; returns once the
 * guest has written every page of it since.
 */
void dirty_guest_set_region_pages(DirtyGuest *dg, uint32_t pages);
/*
 * Stop every vCPU of the guest from writing to memory (returns once none
 * does), or let them go on.
 */
void dirty_guest_set_frozen(DirtyGuest *dg, bool frozen);
/* Page writes per second the guest makes over about @ms of host time */
double dirty_guest_write_rate(DirtyGuest *dg, int ms);
uint64_t dirty_guest_region_bytes(DirtyGuest *dg);
uint64_t dirty_guest_ram_bytes(DirtyGuest *dg);

/*
 * Stop the QEMU process of @dg with SIGSTOP, which stands in for a host
 * that hangs or a peer cut off; it is continued with SIGCONT by
 * dirty_guest_sigcont(), or if the test aborts meanwhile.
 */
void dirty_guest_sigstop(DirtyGuest *dg);
void dirty_guest_sigcont(DirtyGuest *dg);

/*
 * Compare the RAM of two guests started with shared_ram, byte for byte:
 * both must be stopped (by QMP stop, or dirty_guest_sigstop()).  Returns
 * the number of target pages that differ, and logs the first few.
 */
uint64_t dirty_guest_ram_differences(DirtyGuest *a, DirtyGuest *b);

#endif
