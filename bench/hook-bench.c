/*
 * Micro-benchmark of the COLO checkpoint recorder's hooks: the cost they
 * add to one primary checkpoint.  Links the recorder object of the
 * patched build (migration/colo-recorder.c) and drives the hooks the way
 * colo.c does, in a loop, with the migration stream and statistics it
 * reads stubbed out (in QEMU those are plain counter reads).
 *
 * Built and run by bench/build-hook-bench.sh; prints one JSON object.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qapi/qapi-types-migration.h"
#include "qapi/qapi-types-colo-recorder.h"
#include "migration/migration-stats.h"
#include "migration/colo-recorder.h"
#include "migration/qemu-file.h"
#include "monitor/monitor.h"
#include "monitor/hmp.h"
#include "qapi/qapi-commands-migration.h"

/* What the recorder object needs from the rest of QEMU */
MigrationAtomicStats mig_stats;
uint16_t _TRACE_COLO_RECORDER_CHECKPOINT_DSTATE;
static uint64_t fake_stream;

uint64_t qemu_file_transferred(QEMUFile *f)
{
    return fake_stream += 4096;
}

uint64_t qemu_file_bytes_read(QEMUFile *f)
{
    return fake_stream += 4096;
}

/* The query side is not measured here (see bench/run.py's latency step) */
int monitor_printf(Monitor *mon, const char *fmt, ...)
{
    abort();
}

bool hmp_handle_error(Monitor *mon, Error *err)
{
    abort();
}

MigrationInfo *qmp_query_migrate(Error **errp)
{
    abort();
}

static const ColoCheckpointPhase primary_phases[] = {
    COLO_CHECKPOINT_PHASE_VM_STOP,
    COLO_CHECKPOINT_PHASE_REPLICATION,
    COLO_CHECKPOINT_PHASE_DEVICE_SAVE,
    COLO_CHECKPOINT_PHASE_RAM_SEND,
    COLO_CHECKPOINT_PHASE_DEVICE_SEND,
    COLO_CHECKPOINT_PHASE_WAIT_RECEIVED,
    COLO_CHECKPOINT_PHASE_COMPARE_NOTIFY,
    COLO_CHECKPOINT_PHASE_WAIT_LOADED,
    COLO_CHECKPOINT_PHASE_VM_START,
};

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    /* begin, the phases, device bytes, dirty pages, end */
    int calls = 1 + ARRAY_SIZE(primary_phases) + 2 + 1;
    int64_t t0, t1;
    long i;
    size_t j;

    colo_recorder_start(COLO_MODE_PRIMARY);
    colo_recorder_loop_entered();
    t0 = get_clock();
    for (i = 0; i < n; i++) {
        colo_recorder_begin(NULL);
        for (j = 0; j < ARRAY_SIZE(primary_phases); j++) {
            colo_recorder_phase(primary_phases[j]);
        }
        colo_recorder_device_bytes(12345);
        colo_recorder_dirty_pages(64);
        colo_recorder_end();
    }
    t1 = get_clock();
    colo_recorder_stop();
    printf("{\"iterations\": %ld, \"calls_per_checkpoint\": %d, "
           "\"ns_per_checkpoint\": %.1f, \"ns_per_call\": %.2f}\n",
           n, calls, (double)(t1 - t0) / n, (double)(t1 - t0) / n / calls);
    return 0;
}
