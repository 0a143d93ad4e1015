/*
 * Dirty page rate estimate from page sampling, with a confidence interval.
 *
 * Page sampling hashes n pages drawn at random from the sampled RAMBlocks
 * and counts the d that changed in the window.  d / n estimates the
 * fraction p of that memory dirtied in the window, so the rate is
 * p * bytes / window.  d is binomial(n, p); the 95 % interval for p is
 * the Wilson score interval, which unlike the normal approximation stays
 * within [0, 1] and stays meaningful when d is 0 or n, as it often is
 * for idle or very busy guests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include "qemu/units.h"
#include "dirtyrate-estimate.h"

/* Two-sided 95 % quantile of the standard normal distribution */
#define Z95 1.959963984540054

void dirtyrate_sampling_estimate(uint64_t dirty, uint64_t samples,
                                 uint64_t bytes, int64_t ms,
                                 DirtyRateEstimate *e)
{
    double n = samples;
    double p = (double)dirty / n;
    double z2n = Z95 * Z95 / n;
    double centre = (p + z2n / 2) / (1 + z2n);
    double half = Z95 / (1 + z2n) * sqrt(p * (1 - p) / n + z2n / (4 * n));
    double scale = (double)bytes / MiB * 1000 / ms;

    assert(samples && ms > 0 && dirty <= samples);
    e->rate = floor(p * scale);
    e->low = floor(MAX(centre - half, 0) * scale);
    e->high = ceil(MIN(centre + half, 1) * scale);
}
