/*
 * Dirty page rate estimate from page sampling, with a confidence interval.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_DIRTYRATE_ESTIMATE_H
#define QEMU_MIGRATION_DIRTYRATE_ESTIMATE_H

typedef struct DirtyRateEstimate {
    int64_t rate;   /* MiB/s, rounded down */
    int64_t low;    /* 95 % confidence interval, MiB/s, rounded down */
    int64_t high;   /* rounded up */
} DirtyRateEstimate;

/*
 * @dirty of @samples sampled pages changed in @ms milliseconds; the
 * sampled RAMBlocks hold @bytes.  @samples and @ms must not be zero.
 */
void dirtyrate_sampling_estimate(uint64_t dirty, uint64_t samples,
                                 uint64_t bytes, int64_t ms,
                                 DirtyRateEstimate *e);

#endif
