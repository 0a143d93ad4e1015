/*
 * COLO checkpoint recorder: timings and byte counts of every checkpoint
 * phase on the primary and the secondary.
 *
 * The COLO loops in colo.c call these hooks at phase boundaries; all the
 * clock reading, statistics and locking live in colo-recorder.c.  Apart
 * from colo_recorder_trigger(), the hooks must be called from the one
 * thread that runs COLO on this side.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_COLO_RECORDER_H
#define QEMU_MIGRATION_COLO_RECORDER_H

#include "qapi/qapi-types-colo-recorder.h"

/* COLO starts on this side: statistics restart, role is set. */
void colo_recorder_start(COLOMode role);

/* The checkpoint loop is entered: init time ends, idle time begins. */
void colo_recorder_loop_entered(void);

/* Something asked for a checkpoint.  Any thread. */
void colo_recorder_trigger(ColoCheckpointTrigger trigger);

/*
 * A checkpoint starts, with the side's first phase.  @stream is the
 * migration stream it sends (primary) or receives (secondary) RAM on.
 */
void colo_recorder_begin(QEMUFile *stream);

/* The current phase ends and @phase begins. */
void colo_recorder_phase(ColoCheckpointPhase phase);

/* Byte and page counts of the checkpoint in progress */
void colo_recorder_device_bytes(uint64_t bytes);
void colo_recorder_dirty_pages(uint64_t pages);

/*
 * The checkpoint completed: it is counted.  A checkpoint that fails
 * before this is never counted.
 */
void colo_recorder_end(void);

/* COLO stopped on this side (failover or error); numbers stay readable. */
void colo_recorder_stop(void);

#endif
