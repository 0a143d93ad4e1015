/*
 * The dirty-rate qtests' fixture: the accelerator configurations they run
 * under, the cases they are registered with, a guest started for a case
 * (or the test skipped, saying why), and the measurements of that guest
 * that several topics share.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QTEST_MIGRATION_DIRTYRATE_FRAMEWORK_H
#define QTEST_MIGRATION_DIRTYRATE_FRAMEWORK_H

#include "libqtest.h"
#include "migration/dirty-guest.h"
#include "migration/dirtyrate-qmp.h"

typedef struct DirtyrateAccel {
    const char *name;           /* in test paths */
    const char *accel;
    unsigned dirty_ring_size;
} DirtyrateAccel;

extern const DirtyrateAccel dirtyrate_tcg;
extern const DirtyrateAccel dirtyrate_kvm;
extern const DirtyrateAccel dirtyrate_kvm_ring;

/* What a test runs with; every member but ac may be left 0 */
typedef struct DirtyrateCase {
    const DirtyrateAccel *ac;
    const char *mode;           /* QAPI name; NULL: page sampling */
    int64_t ms;                 /* measurement window */
    uint32_t region_mib;        /* the guest's region; 0: its default */
    unsigned vcpus;             /* 0: 1 */
    const char *extra_args;     /* more QEMU arguments, or NULL */
} DirtyrateCase;

/* The options of a guest for @c */
DirtyGuestOpts dirtyrate_guest_opts(const DirtyrateCase *c);

typedef void (*DirtyrateTestFn)(const DirtyrateCase *c);
typedef void (*DirtyrateGuestTestFn)(DirtyGuest *dg, const DirtyrateCase *c);

/*
 * Register @fn as /dirtyrate/<accelerator>/@what, to run with a copy of
 * @c.  @fn starts the guests it needs (dirty_guest_start_or_skip()).
 */
void dirtyrate_add_case(const char *what, const DirtyrateCase *c,
                        DirtyrateTestFn fn);
/*
 * The same for a test of one guest started for @c: the guest is started
 * before @fn (where it cannot run here, the test is skipped saying why)
 * and quit after it.
 */
void dirtyrate_add_guest_case(const char *what, const DirtyrateCase *c,
                              DirtyrateGuestTestFn fn);
/* dirtyrate_add_guest_case() of each of @n @cases as <mode>/@what */
void dirtyrate_add_mode_cases(const char *what, const DirtyrateCase *cases,
                              int n, DirtyrateGuestTestFn fn);

/*
 * Measure with @mode over @ms.  Returns the result; *truth gets the true
 * MiB/s, region / window, and *valid whether that truth holds: whether the
 * guest wrote fast enough to rewrite its whole region twice per window
 * over the interval around it (a host hiccup can stall it).
 */
QDict *dirtyrate_try_measure(DirtyGuest *dg, const char *mode, int64_t ms,
                             int64_t sample_pages, double *truth,
                             bool *valid);

/*
 * How often a measurement is repeated when the host demonstrably stalled
 * the guest (the truth did not hold); never for any other reason.
 */
#define DIRTYRATE_MEASURE_TRIES 5

/*
 * The window, at least @min ms and at most a minute, in which the guest
 * rewrites its whole region three times at the speed it shows now.
 */
int64_t dirtyrate_fit_window(DirtyGuest *dg, int64_t min);

/*
 * The same as dirtyrate_try_measure(), repeated until the truth holds,
 * each time over the window that dirtyrate_fit_window() gives then (a
 * loaded host can run the guest slower from one try to the next).
 */
QDict *dirtyrate_measure(DirtyGuest *dg, const char *mode, int64_t min_ms,
                         int64_t sample_pages, double *truth);

/*
 * Measure in a counting mode, up to DIRTYRATE_MEASURE_TRIES times: again
 * when the host stalled the guest (the truth is unknown; the region is
 * fitted again first, up to its size at the call), or when the
 * host overflowed the dirty ring (a host bug that makes the count
 * approximate, see dirty-ring-overflows) and the count is off.  A count
 * that is off without an overflow fails at once.
 */
QDict *dirtyrate_measure_counting(DirtyGuest *dg, const char *mode,
                                  int64_t ms, double *truth);

/*
 * The truth of a measurement, region / window, holds only if the guest
 * rewrites its whole region within the window.  Size the region from the
 * speed the guest shows on this host now, so that it is rewritten three
 * times per @ms window, up to @max pages.
 */
void dirtyrate_fit_region(DirtyGuest *dg, int64_t ms, uint32_t max);

/* The same for a guest that writes @speed pages a second */
void dirtyrate_set_region_for(DirtyGuest *dg, double speed, int64_t ms,
                              uint32_t max);

/*
 * Page sampling picks @samples pages; the fraction found dirty estimates
 * region / RAM.  Accept four and a half standard deviations of that
 * binomial estimate, plus one for the integer MiB/s in the result.
 */
double dirtyrate_sampling_tolerance(DirtyGuest *dg, double truth,
                                    int64_t sample_pages_per_gb);

/*
 * A counting mode's result @info for the guest's region: the pages it
 * counted and the rate within 5 % of @truth.
 */
void dirtyrate_assert_counted_pages(DirtyGuest *dg, QDict *info,
                                    double truth);

/* The tests of each topic, registered by dirtyrate-test.c */
void dirtyrate_test_add_sampling(void);
void dirtyrate_test_add_accuracy(void);
void dirtyrate_test_add_ring(void);
void dirtyrate_test_add_migration(void);
void dirtyrate_test_add_validation(void);
void dirtyrate_test_add_hmp(void);
void dirtyrate_test_add_events(void);

#endif
