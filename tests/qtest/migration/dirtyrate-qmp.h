/*
 * QMP and HMP helpers for the dirty-rate qtests: calc-dirty-rate,
 * query-dirty-rate and calc_dirty_rate / info dirty_rate.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QTEST_MIGRATION_DIRTYRATE_QMP_H
#define QTEST_MIGRATION_DIRTYRATE_QMP_H

#include "libqtest.h"

/* The most sample-pages calc-dirty-rate accepts */
#define DIRTYRATE_MAX_SAMPLE_PAGES 16384

/*
 * Start a measurement with calc-dirty-rate.  @mode is the QAPI name or
 * NULL for the default; @sample_pages 0 leaves it out.
 */
void dirtyrate_calc(QTestState *qts, const char *mode, int64_t calc_time_ms,
                    int64_t sample_pages);
/* query-dirty-rate with calc-time-unit millisecond */
QDict *dirtyrate_query(QTestState *qts);
/* Wait until the measurement is no longer running and return the result */
QDict *dirtyrate_wait(QTestState *qts);
/* Wait until query-dirty-rate reports @status */
void dirtyrate_wait_status(QTestState *qts, const char *status);

/* The QAPI name of @mode, where NULL is the default: page sampling */
const char *dirtyrate_mode_name(const char *mode);

/* MiB/s that @bytes dirtied in @ms make */
double dirtyrate_mib_per_s(uint64_t bytes, int64_t ms);

/* The members of a result that no rejected command may change */
void dirtyrate_assert_same_result(QDict *a, QDict *b);
/*
 * calc-dirty-rate with @args (JSON) must fail with an error that names
 * @expect, and leave the result that query-dirty-rate gave as @before.
 */
void dirtyrate_assert_calc_fails(QTestState *qts, QDict *before,
                                 const char *expect, const char *args);

/* Run an HMP command; the output with "\r\n" line ends turned into "\n" */
char *dirtyrate_hmp(QTestState *qts, const char *cmd);

#endif
