/*
 * COLO checkpoint recorder: timings and byte counts of every checkpoint
 * phase on the primary and the secondary, for QMP info_checkpoint and
 * HMP "info checkpoint".
 *
 * Each side runs COLO in one thread (the migration thread on the
 * primary, the COLO incoming thread on the secondary); that thread calls
 * the hooks.  A checkpoint in progress is accumulated in @cur, which only
 * that thread touches, without locks or atomics.  When it completes it is
 * committed into @pub in one short write section:
 *
 *  - @pub is read by the monitor (under the BQL, which the COLO thread
 *    does not hold at that point) through the seqlock @pub_seq: readers
 *    copy it and retry if a write overlapped, so they never block the
 *    COLO thread;
 *  - writers (the COLO thread committing, the monitor resetting) are
 *    serialised by the mutex @pub_lock, contended only when a reset
 *    coincides with a commit.  Not a spinlock: a monitor thread that is
 *    preempted in the middle of a reset must not leave the COLO thread
 *    spinning, and writers are rare.
 *
 * So a query always sees whole checkpoints, and a reset either precedes
 * a commit (the checkpoint is counted in full after it) or follows it.
 * Nothing is allocated on the checkpoint path; percentiles come from
 * fixed log-scale histograms.
 *
 * @pending_trigger is written by whichever thread asks for a checkpoint
 * and taken by the COLO thread when the checkpoint begins (atomics).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "qemu/seqlock.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-colo-recorder.h"
#include "qapi/qapi-commands-migration.h"
#include "qobject/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "migration-stats.h"
#include "qemu-file.h"
#include "colo-recorder.h"
#include "trace.h"

#define CR_MAX_PHASES   10
#define CR_RING_SIZE    64

/*
 * Histogram buckets: values below 16 exactly, then 16 buckets per power
 * of two, so a bucket spans at most 1/16 of its lower bound.  Covers all
 * of uint64_t.  A percentile is reported as the upper bound of its
 * bucket: never below the true value, and less than 6.25 % above it.
 */
#define CR_HIST_SUB_BITS 4
#define CR_HIST_SUB     (1 << CR_HIST_SUB_BITS)
#define CR_HIST_BUCKETS ((64 - CR_HIST_SUB_BITS + 1) * CR_HIST_SUB)

typedef struct CRStats {
    uint64_t count;
    uint64_t total;
    uint64_t min;
    uint64_t max;
    uint64_t last;
    uint64_t hist[CR_HIST_BUCKETS];
} CRStats;

typedef struct CRRecord {
    uint64_t seq;
    int64_t start_ms;
    ColoCheckpointTrigger trigger;
    uint64_t total;
    uint64_t pause;
    uint64_t idle;
    uint64_t phase[CR_MAX_PHASES];
    uint64_t device_bytes;
    uint64_t ram_bytes;
    uint64_t dirty_pages;
} CRRecord;

/* What a query reads; see the locking comment at the top */
typedef struct CRPublic {
    COLOMode role;
    bool active;
    uint64_t init_ns;
    CRStats phase[CR_MAX_PHASES];
    CRStats total;
    CRStats pause;
    CRStats idle;
    uint64_t device_bytes;
    uint64_t ram_bytes;
    uint64_t dirty_pages;
    uint64_t triggers[COLO_CHECKPOINT_TRIGGER__MAX];
    /* the newest at (total.count - 1) % size: checkpoint total.count */
    CRRecord ring[CR_RING_SIZE];
} CRPublic;

/*
 * What a phase is: whether the guest is stopped in it, and which legacy
 * ColoCheckpointInfo member (dev-time, ram-time, ...) sums it
 */
enum {
    CR_PAUSED   = 1u << 0,      /* the guest is stopped */
    CR_STREAM   = 1u << 1,      /* the stream bytes it moves are RAM */
    CR_DEV      = 1u << 2,      /* @dev-time */
    CR_RAM      = 1u << 3,      /* @ram-time */
    CR_WAIT     = 1u << 4,      /* @vmstate-time */
    CR_STATE    = 1u << 5,      /* @stat-time */
};

typedef struct CRPhase {
    ColoCheckpointPhase phase;
    unsigned flags;
} CRPhase;

/* The phases one side goes through, in order */
typedef struct CRRole {
    const char *name;
    const CRPhase *phases;
    int nphases;
} CRRole;

static const CRPhase cr_primary_phases[] = {
    { COLO_CHECKPOINT_PHASE_REQUEST,        CR_WAIT },
    { COLO_CHECKPOINT_PHASE_VM_STOP,        CR_PAUSED | CR_STATE },
    { COLO_CHECKPOINT_PHASE_REPLICATION,    CR_PAUSED },
    { COLO_CHECKPOINT_PHASE_DEVICE_SAVE,    CR_PAUSED | CR_DEV },
    { COLO_CHECKPOINT_PHASE_RAM_SEND,       CR_PAUSED | CR_RAM | CR_STREAM },
    { COLO_CHECKPOINT_PHASE_DEVICE_SEND,    CR_PAUSED | CR_DEV },
    { COLO_CHECKPOINT_PHASE_WAIT_RECEIVED,  CR_PAUSED | CR_WAIT },
    { COLO_CHECKPOINT_PHASE_COMPARE_NOTIFY, CR_PAUSED },
    { COLO_CHECKPOINT_PHASE_WAIT_LOADED,    CR_PAUSED | CR_WAIT },
    { COLO_CHECKPOINT_PHASE_VM_START,       CR_PAUSED | CR_STATE },
};

static const CRPhase cr_secondary_phases[] = {
    { COLO_CHECKPOINT_PHASE_STOP_AND_REPLY, CR_PAUSED | CR_STATE },
    { COLO_CHECKPOINT_PHASE_WAIT_VMSTATE,   CR_PAUSED | CR_WAIT },
    { COLO_CHECKPOINT_PHASE_RAM_LOAD,       CR_PAUSED | CR_RAM | CR_STREAM },
    { COLO_CHECKPOINT_PHASE_DEVICE_RECEIVE, CR_PAUSED | CR_DEV },
    { COLO_CHECKPOINT_PHASE_RAM_FLUSH,      CR_PAUSED | CR_RAM },
    { COLO_CHECKPOINT_PHASE_DEVICE_LOAD,    CR_PAUSED | CR_DEV },
    { COLO_CHECKPOINT_PHASE_REPLICATION,    CR_PAUSED },
    { COLO_CHECKPOINT_PHASE_FILTER_NOTIFY,  CR_PAUSED },
    { COLO_CHECKPOINT_PHASE_VM_START,       CR_PAUSED | CR_STATE },
    { COLO_CHECKPOINT_PHASE_SEND_LOADED,    0 },
};

QEMU_BUILD_BUG_ON(ARRAY_SIZE(cr_primary_phases) > CR_MAX_PHASES);
QEMU_BUILD_BUG_ON(ARRAY_SIZE(cr_secondary_phases) > CR_MAX_PHASES);

static const CRRole cr_roles[COLO_MODE__MAX] = {
    [COLO_MODE_PRIMARY] = {
        .name = "primary",
        .phases = cr_primary_phases,
        .nphases = ARRAY_SIZE(cr_primary_phases),
    },
    [COLO_MODE_SECONDARY] = {
        .name = "secondary",
        .phases = cr_secondary_phases,
        .nphases = ARRAY_SIZE(cr_secondary_phases),
    },
};

/* Published state: @pub_lock serialises writers, @pub_seq guards readers */
static QemuMutex pub_lock;
static QemuSeqLock pub_seq;
static CRPublic pub;

/* Any thread: the first trigger since the last checkpoint began */
static int pending_trigger;

/* COLO thread only */
static struct {
    const CRRole *role;
    int8_t slot_of[COLO_CHECKPOINT_PHASE__MAX];
    bool in_checkpoint;
    int slot;
    int64_t colo_start;
    int64_t begin;
    int64_t phase_start;
    int64_t last_end;
    QEMUFile *stream;
    uint64_t stream_mark;
    uint64_t pages_mark;
    CRRecord cur;
} cr;

static void __attribute__((__constructor__)) colo_recorder_init_lock(void)
{
    qemu_mutex_init(&pub_lock);
}

static void pub_write_begin(void)
{
    qemu_mutex_lock(&pub_lock);
    seqlock_write_begin(&pub_seq);
}

static void pub_write_end(void)
{
    seqlock_write_end(&pub_seq);
    qemu_mutex_unlock(&pub_lock);
}

static unsigned hist_bucket(uint64_t v)
{
    int msb;

    if (v < CR_HIST_SUB) {
        return v;
    }
    msb = 63 - clz64(v);
    return (msb - CR_HIST_SUB_BITS + 1) * CR_HIST_SUB +
           ((v >> (msb - CR_HIST_SUB_BITS)) & (CR_HIST_SUB - 1));
}

/* The largest value that falls into bucket @b */
static uint64_t hist_upper(unsigned b)
{
    unsigned shift;

    if (b < CR_HIST_SUB) {
        return b;
    }
    shift = b / CR_HIST_SUB - 1;
    return ((uint64_t)(CR_HIST_SUB + b % CR_HIST_SUB + 1) << shift) - 1;
}

static void stats_add(CRStats *s, uint64_t v)
{
    if (!s->count || v < s->min) {
        s->min = v;
    }
    if (v > s->max) {
        s->max = v;
    }
    s->count++;
    s->total += v;
    s->last = v;
    s->hist[hist_bucket(v)]++;
}

/* The value at fraction @num/@den of the distribution, within [min, max] */
static uint64_t stats_percentile(const CRStats *s, uint64_t num, uint64_t den)
{
    uint64_t rank, seen = 0;
    unsigned b;

    if (!s->count) {
        return 0;
    }
    rank = MAX(DIV_ROUND_UP(s->count * num, den), 1);
    for (b = 0; b < CR_HIST_BUCKETS; b++) {
        seen += s->hist[b];
        if (seen >= rank) {
            return MIN(MAX(hist_upper(b), s->min), s->max);
        }
    }
    return s->max;
}

/* Bytes sent on the primary's stream, or taken from the secondary's */
static uint64_t stream_position(void)
{
    return cr.role == &cr_roles[COLO_MODE_PRIMARY] ?
           qemu_file_transferred(cr.stream) : qemu_file_bytes_read(cr.stream);
}

/* Dirty pages the primary has sent */
static uint64_t pages_sent(void)
{
    return stat64_get(&mig_stats.normal_pages) +
           stat64_get(&mig_stats.zero_pages);
}

void colo_recorder_start(COLOMode role)
{
    int i;

    assert(role == COLO_MODE_PRIMARY || role == COLO_MODE_SECONDARY);
    memset(&cr, 0, sizeof(cr));
    cr.role = &cr_roles[role];
    memset(cr.slot_of, -1, sizeof(cr.slot_of));
    for (i = 0; i < cr.role->nphases; i++) {
        cr.slot_of[cr.role->phases[i].phase] = i;
    }
    cr.colo_start = get_clock();
    qatomic_set(&pending_trigger, COLO_CHECKPOINT_TRIGGER_NONE);

    pub_write_begin();
    memset(&pub, 0, sizeof(pub));
    pub.role = role;
    pub.active = true;
    pub_write_end();
}

void colo_recorder_loop_entered(void)
{
    int64_t now = get_clock();

    if (!cr.role) {
        return;
    }
    cr.last_end = now;
    pub_write_begin();
    pub.init_ns = now - cr.colo_start;
    pub_write_end();
}

void colo_recorder_trigger(ColoCheckpointTrigger trigger)
{
    qatomic_cmpxchg(&pending_trigger, COLO_CHECKPOINT_TRIGGER_NONE, trigger);
}

static void enter_slot(int slot, int64_t now)
{
    cr.slot = slot;
    cr.phase_start = now;
    if (cr.role->phases[slot].flags & CR_STREAM) {
        cr.stream_mark = stream_position();
        cr.pages_mark = pages_sent();
    }
}

static void leave_slot(int64_t now)
{
    cr.cur.phase[cr.slot] += now - cr.phase_start;
    if (cr.role->phases[cr.slot].flags & CR_STREAM) {
        cr.cur.ram_bytes += stream_position() - cr.stream_mark;
        if (cr.role == &cr_roles[COLO_MODE_PRIMARY]) {
            cr.cur.dirty_pages += pages_sent() - cr.pages_mark;
        }
    }
}

void colo_recorder_begin(QEMUFile *stream)
{
    int64_t now = get_clock();

    if (!cr.role) {
        return;
    }
    /* a checkpoint that failed half-way is dropped here */
    memset(&cr.cur, 0, sizeof(cr.cur));
    cr.cur.start_ms = g_get_real_time() / 1000;
    cr.cur.trigger = qatomic_xchg(&pending_trigger,
                                  COLO_CHECKPOINT_TRIGGER_NONE);
    cr.cur.idle = now - cr.last_end;
    cr.stream = stream;
    cr.begin = now;
    cr.in_checkpoint = true;
    enter_slot(0, now);
}

void colo_recorder_phase(ColoCheckpointPhase phase)
{
    int64_t now = get_clock();
    int slot;

    if (!cr.in_checkpoint) {
        return;
    }
    slot = cr.slot_of[phase];
    assert(slot > cr.slot);
    leave_slot(now);
    enter_slot(slot, now);
}

void colo_recorder_device_bytes(uint64_t bytes)
{
    cr.cur.device_bytes += bytes;
}

void colo_recorder_dirty_pages(uint64_t pages)
{
    cr.cur.dirty_pages += pages;
}

static void commit(const CRRecord *r)
{
    const CRRole *role = cr.role;
    int i;

    pub_write_begin();
    for (i = 0; i < role->nphases; i++) {
        stats_add(&pub.phase[i], r->phase[i]);
    }
    stats_add(&pub.total, r->total);
    stats_add(&pub.pause, r->pause);
    stats_add(&pub.idle, r->idle);
    pub.device_bytes += r->device_bytes;
    pub.ram_bytes += r->ram_bytes;
    pub.dirty_pages += r->dirty_pages;
    pub.triggers[r->trigger]++;
    pub.ring[(pub.total.count - 1) % CR_RING_SIZE] = *r;
    pub.ring[(pub.total.count - 1) % CR_RING_SIZE].seq = pub.total.count;
    pub_write_end();
}

void colo_recorder_end(void)
{
    const CRRole *role = cr.role;
    int64_t now = get_clock();
    int i;

    if (!cr.in_checkpoint) {
        return;
    }
    leave_slot(now);
    cr.in_checkpoint = false;
    cr.last_end = now;
    cr.cur.total = now - cr.begin;
    for (i = 0; i < role->nphases; i++) {
        if (role->phases[i].flags & CR_PAUSED) {
            cr.cur.pause += cr.cur.phase[i];
        }
    }
    commit(&cr.cur);
    trace_colo_recorder_checkpoint(role->name,
                                   ColoCheckpointTrigger_str(cr.cur.trigger),
                                   cr.cur.total, cr.cur.pause,
                                   cr.cur.ram_bytes, cr.cur.device_bytes,
                                   cr.cur.dirty_pages);
}

void colo_recorder_stop(void)
{
    cr.in_checkpoint = false;
    pub_write_begin();
    pub.active = false;
    pub_write_end();
}

/* Monitor side */

static CRPublic *snapshot(void)
{
    CRPublic *p = g_new(CRPublic, 1);
    unsigned start;

    do {
        start = seqlock_read_begin(&pub_seq);
        memcpy(p, &pub, sizeof(*p));
    } while (seqlock_read_retry(&pub_seq, start));
    return p;
}

static ColoCheckpointStats *stats_to_qapi(const CRStats *s)
{
    ColoCheckpointStats *q = g_new0(ColoCheckpointStats, 1);

    q->count = s->count;
    q->total = s->total;
    q->min = s->min;
    q->max = s->max;
    q->mean = s->count ? s->total / s->count : 0;
    q->last = s->last;
    q->p50 = stats_percentile(s, 50, 100);
    q->p99 = stats_percentile(s, 99, 100);
    return q;
}

/* Mean per checkpoint of the sum of @role's phases with @flag */
static int64_t mean_of_phases(const CRPublic *p, const CRRole *role,
                              unsigned flag)
{
    uint64_t sum = 0;
    int i;

    if (!p->total.count) {
        return 0;
    }
    for (i = 0; i < role->nphases; i++) {
        if (role->phases[i].flags & flag) {
            sum += p->phase[i].total;
        }
    }
    return sum / p->total.count;
}

static int64_t per_checkpoint(const CRPublic *p, uint64_t v)
{
    return p->total.count ? v / p->total.count : 0;
}

static ColoCheckpointRecord *record_to_qapi(const CRRecord *r, int nphases)
{
    ColoCheckpointRecord *q = g_new0(ColoCheckpointRecord, 1);
    uint64List **tail = &q->phases;
    int i;

    q->seq = r->seq;
    q->start_ms = r->start_ms;
    q->trigger = r->trigger;
    q->total = r->total;
    q->pause = r->pause;
    q->idle = r->idle;
    for (i = 0; i < nphases; i++) {
        QAPI_LIST_APPEND(tail, r->phase[i]);
    }
    q->device_bytes = r->device_bytes;
    q->ram_bytes = r->ram_bytes;
    q->dirty_pages = r->dirty_pages;
    return q;
}

static ColoCheckpointInfo *checkpoint_info(const CRPublic *p, Error **errp)
{
    const CRRole *role = p->role == COLO_MODE_NONE ? NULL
                                                   : &cr_roles[p->role];
    ColoCheckpointInfo *info = g_new0(ColoCheckpointInfo, 1);
    ColoCheckpointPhaseStatsList **ptail = &info->phases;
    ColoCheckpointRecordList **rtail = &info->recent;
    uint64_t n = p->total.count;
    uint64_t seq;
    int i;

    info->role = p->role;
    info->active = p->active;
    info->tot_num = p->total.count;
    info->tot_time = p->total.total;
    info->init_time = p->init_ns;
    info->avg_time = per_checkpoint(p, p->total.total);
    info->wait_time = per_checkpoint(p, p->idle.total);
    info->dev_size = per_checkpoint(p, p->device_bytes);
    info->ram_size = per_checkpoint(p, p->ram_bytes);
    if (role) {
        info->dev_time = mean_of_phases(p, role, CR_DEV);
        info->ram_time = mean_of_phases(p, role, CR_RAM);
        info->vmstate_time = mean_of_phases(p, role, CR_WAIT);
        info->stat_time = mean_of_phases(p, role, CR_STATE);
        for (i = 0; i < role->nphases; i++) {
            ColoCheckpointPhaseStats *ps = g_new0(ColoCheckpointPhaseStats, 1);

            ps->phase = role->phases[i].phase;
            ps->stats = stats_to_qapi(&p->phase[i]);
            QAPI_LIST_APPEND(ptail, ps);
        }
        for (seq = n > CR_RING_SIZE ? n - CR_RING_SIZE + 1 : 1; seq <= n;
             seq++) {
            QAPI_LIST_APPEND(rtail,
                record_to_qapi(&p->ring[(seq - 1) % CR_RING_SIZE],
                               role->nphases));
        }
    }
    info->total = stats_to_qapi(&p->total);
    info->pause = stats_to_qapi(&p->pause);
    info->idle = stats_to_qapi(&p->idle);
    info->device_bytes = p->device_bytes;
    info->ram_bytes = p->ram_bytes;
    info->dirty_pages = p->dirty_pages;
    info->triggers = g_new0(ColoCheckpointTriggers, 1);
    info->triggers->timer = p->triggers[COLO_CHECKPOINT_TRIGGER_TIMER];
    info->triggers->compare = p->triggers[COLO_CHECKPOINT_TRIGGER_COMPARE];
    info->triggers->request = p->triggers[COLO_CHECKPOINT_TRIGGER_REQUEST];

    info->info = qmp_query_migrate(errp);
    if (!info->info) {
        qapi_free_ColoCheckpointInfo(info);
        return NULL;
    }
    return info;
}

ColoCheckpointInfo *qmp_info_checkpoint(Error **errp)
{
    g_autofree CRPublic *p = snapshot();

    return checkpoint_info(p, errp);
}

void qmp_reset_checkpoint(Error **errp)
{
    pub_write_begin();
    memset(pub.phase, 0, sizeof(pub.phase));
    memset(&pub.total, 0, sizeof(pub.total));
    memset(&pub.pause, 0, sizeof(pub.pause));
    memset(&pub.idle, 0, sizeof(pub.idle));
    pub.device_bytes = pub.ram_bytes = pub.dirty_pages = 0;
    memset(pub.triggers, 0, sizeof(pub.triggers));
    memset(pub.ring, 0, sizeof(pub.ring));
    pub_write_end();
}

/* "12.3 ms": a duration in nanoseconds with a unit */
/* "12.3 ms": a duration in nanoseconds with a unit */
static void format_ns(char *buf, size_t len, uint64_t ns)
{
    if (ns < 1000) {
        snprintf(buf, len, "%" PRIu64 " ns", ns);
    } else if (ns < 1000 * 1000) {
        snprintf(buf, len, "%.1f us", ns / 1e3);
    } else if (ns < NANOSECONDS_PER_SECOND) {
        snprintf(buf, len, "%.1f ms", ns / 1e6);
    } else {
        snprintf(buf, len, "%.2f s", ns / 1e9);
    }
}

static void hmp_stats_row(Monitor *mon, const char *name,
                          const ColoCheckpointStats *s)
{
    char mean[32], p50[32], p99[32], max[32];

    format_ns(mean, sizeof(mean), s->mean);
    format_ns(p50, sizeof(p50), s->p50);
    format_ns(p99, sizeof(p99), s->p99);
    format_ns(max, sizeof(max), s->max);
    monitor_printf(mon, "%-16s %8" PRIu64 " %12s %12s %12s %12s\n", name,
                   s->count, mean, p50, p99, max);
}

void hmp_info_checkpoint(Monitor *mon, const QDict *qdict)
{
    g_autoptr(ColoCheckpointInfo) info = NULL;
    ColoCheckpointPhaseStatsList *ps;
    Error *err = NULL;
    char init[32];
    g_autofree char *dev = NULL;
    g_autofree char *ram = NULL;

    info = qmp_info_checkpoint(&err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    format_ns(init, sizeof(init), info->init_time);
    monitor_printf(mon, "COLO role: %s (%s), checkpoints: %" PRId64
                   ", init: %s\n", COLOMode_str(info->role),
                   info->active ? "active" : "inactive", info->tot_num,
                   init);
    if (info->role == COLO_MODE_NONE) {
        return;
    }
    monitor_printf(mon, "triggers: timer %" PRIu64 ", compare %" PRIu64
                   ", request %" PRIu64 "\n", info->triggers->timer,
                   info->triggers->compare, info->triggers->request);
    /* the median too: one slow checkpoint moves the mean */
    monitor_printf(mon, "%-16s %8s %12s %12s %12s %12s\n", "phase", "count",
                   "mean", "p50", "p99", "max");
    for (ps = info->phases; ps; ps = ps->next) {
        hmp_stats_row(mon, ColoCheckpointPhase_str(ps->value->phase),
                      ps->value->stats);
    }
    hmp_stats_row(mon, "total", info->total);
    hmp_stats_row(mon, "pause", info->pause);
    hmp_stats_row(mon, "idle", info->idle);
    dev = size_to_str(info->dev_size);
    ram = size_to_str(info->ram_size);
    monitor_printf(mon, "per checkpoint: device state %s, RAM %s, "
                   "dirty pages %" PRIu64 "\n", dev, ram,
                   info->tot_num ? info->dirty_pages / info->tot_num : 0);
}
