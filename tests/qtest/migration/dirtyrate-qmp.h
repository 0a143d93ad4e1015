/*
 * QMP helpers for the dirty-rate qtests: calc-dirty-rate and
 * query-dirty-rate.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QTEST_MIGRATION_DIRTYRATE_QMP_H
#define QTEST_MIGRATION_DIRTYRATE_QMP_H

#include "libqtest.h"

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

/* MiB/s that @bytes dirtied in @ms make */
double dirtyrate_mib_per_s(uint64_t bytes, int64_t ms);

#endif
