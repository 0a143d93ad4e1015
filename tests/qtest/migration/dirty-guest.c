/*
 * A guest that dirties memory at a known rate.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include <signal.h>
#include "qemu/units.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "dirty-guest.h"
#include "dirty-guest/dirty-guest-sector.h"

#define DIRTY_GUEST_BOOT_TIMEOUT_S 60
#define POLL_INTERVAL_US           10000

static uint32_t param_addr(unsigned offset)
{
    return DG_LOAD_ADDR + DG_PARAMS_OFFSET + offset;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static void apply_defaults(DirtyGuestOpts *o)
{
    if (!o->mem_mb) {
        o->mem_mb = 256;
    }
    if (!o->region_base) {
        o->region_base = DG_DEFAULT_REGION_BASE;
    }
    if (!o->region_pages) {
        o->region_pages = 64 * MiB / DIRTY_GUEST_PAGE_SIZE;
    }
    if (!o->vcpus) {
        o->vcpus = 1;
    }
    g_assert_cmpuint(o->vcpus, <=, DG_MAX_VCPUS);
    g_assert_cmpuint(o->region_pages, >=, o->vcpus);
    g_assert_cmpuint((uint64_t)o->region_base +
                     (uint64_t)o->region_pages * DIRTY_GUEST_PAGE_SIZE, <=,
                     (uint64_t)o->mem_mb * MiB);
}

bool dirty_guest_can_run(const DirtyGuestOpts *opts, char **why)
{
    if (!qtest_has_accel(opts->accel)) {
        *why = g_strdup_printf("accelerator %s is not available here%s",
                               opts->accel,
                               g_str_equal(opts->accel, "kvm") ?
                               " (no usable /dev/kvm)" : "");
        return false;
    }
    return true;
}

static char *write_disk(const DirtyGuestOpts *o, const char *dir)
{
    unsigned char sector[DG_SECTOR_SIZE];
    char *path = g_build_filename(dir, "dirty-guest.img", NULL);

    G_STATIC_ASSERT(sizeof(dirty_guest_sector) == DG_SECTOR_SIZE);
    memcpy(sector, dirty_guest_sector, sizeof(sector));
    put_le32(sector + DG_PARAMS_OFFSET + DG_P_REGION_BASE, o->region_base);
    put_le32(sector + DG_PARAMS_OFFSET + DG_P_REGION_PAGES, o->region_pages);
    put_le32(sector + DG_PARAMS_OFFSET + DG_P_PAGES_PER_TICK,
             o->pages_per_tick);
    put_le32(sector + DG_PARAMS_OFFSET + DG_P_VCPUS, o->vcpus);
    g_assert(g_file_set_contents(path, (char *)sector, sizeof(sector), NULL));
    return path;
}

static bool kvm_enabled_in(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-kvm' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    bool enabled = ret && qdict_get_bool(ret, "enabled");

    qobject_unref(rsp);
    return enabled;
}

DirtyGuest *dirty_guest_start(const DirtyGuestOpts *opts, char **why)
{
    DirtyGuest *dg = g_new0(DirtyGuest, 1);
    g_autoptr(GString) accel = NULL;
    g_autofree char *args = NULL;
    g_autofree char *ram = NULL;
    const char *cpu = "";

    dg->opts = *opts;
    apply_defaults(&dg->opts);
    dg->tmpdir = g_dir_make_tmp("dirty-guest-XXXXXX", NULL);
    g_assert(dg->tmpdir);
    dg->disk = write_disk(&dg->opts, dg->tmpdir);

    accel = g_string_new(dg->opts.accel);
    if (dg->opts.dirty_ring_size) {
        g_string_append_printf(accel, ",dirty-ring-size=%u",
                               dg->opts.dirty_ring_size);
    }
    if (dg->opts.accel_props) {
        g_string_append_printf(accel, ",%s", dg->opts.accel_props);
    }
    /*
     * If the accelerator fails to initialise (e.g. the host has no dirty
     * ring), QEMU falls back to the qtest accelerator; this is detected
     * below rather than reported as a failure.
     */
    /*
     * SeaBIOS registers kvmclock, and KVM on a migration destination
     * bumps the version of its pvclock structure in guest RAM when the
     * MSR is restored: a difference by design, which the byte-for-byte
     * comparison of shared RAM would take for a lost write.
     */
    if (g_str_equal(dg->opts.accel, "kvm")) {
        cpu = dg->opts.shared_ram ? "-cpu host,kvmclock=off" : "-cpu host";
    }
    if (dg->opts.shared_ram) {
        /* on tmpfs, where both QEMUs and the test share the pages */
        dg->ram_path = g_strdup_printf("/dev/shm/%s.ram",
                                       strrchr(dg->tmpdir, '/') + 1);
        ram = g_strdup_printf("-object memory-backend-file,id=ram0,"
                              "size=%uM,mem-path=%s,share=on "
                              "-machine memory-backend=ram0",
                              dg->opts.mem_mb, dg->ram_path);
    }
    args = g_strdup_printf("-accel %s %s -machine pc -m %u -smp %u %s "
                           "-nodefaults -display none "
                           "-drive file=%s,format=raw %s %s %s %s",
                           accel->str, cpu,
                           dg->opts.mem_mb, dg->opts.vcpus, ram ? ram : "",
                           dg->disk,
                           dg->opts.start_stopped ? "-S" : "",
                           dg->opts.incoming ? "-incoming" : "",
                           dg->opts.incoming ? dg->opts.incoming : "",
                           dg->opts.extra_args ? dg->opts.extra_args : "");
    if (dg->opts.oob) {
        QList *caps = qlist_new();

        qlist_append_str(caps, "oob");
        dg->qts = qtest_init_ext(NULL, args, caps, true);
        qobject_unref(caps);
    } else {
        dg->qts = qtest_init(args);
    }

    if (g_str_equal(dg->opts.accel, "kvm") && !kvm_enabled_in(dg->qts)) {
        *why = g_strdup_printf("KVM could not be initialised with %s%s",
                               accel->str, dg->opts.dirty_ring_size ?
                               " (the host KVM has no dirty ring)" : "");
        dirty_guest_quit(dg);
        return NULL;
    }

    if (!dg->opts.start_stopped && !dg->opts.incoming) {
        dirty_guest_wait_running(dg);
    }
    return dg;
}

DirtyGuest *dirty_guest_start_or_skip(const DirtyGuestOpts *opts)
{
    g_autofree char *why = NULL;
    DirtyGuest *dg;

    if (!dirty_guest_can_run(opts, &why)) {
        g_test_skip(why);
        return NULL;
    }
    dg = dirty_guest_start(opts, &why);
    if (!dg) {
        g_test_skip(why);
    }
    return dg;
}

void dirty_guest_quit(DirtyGuest *dg)
{
    if (!dg) {
        return;
    }
    if (dg->sigstopped) {
        dirty_guest_sigcont(dg);
    }
    qtest_quit(dg->qts);
    unlink(dg->disk);
    if (dg->ram_path) {
        unlink(dg->ram_path);
        g_free(dg->ram_path);
    }
    rmdir(dg->tmpdir);
    g_free(dg->disk);
    g_free(dg->tmpdir);
    g_free(dg);
}

void dirty_guest_read(DirtyGuest *dg, DirtyGuestStats *st)
{
    unsigned i;

    memset(st, 0, sizeof(*st));
    st->vcpus = dg->opts.vcpus;
    st->ticks = qtest_readl(dg->qts, DG_STATS + DG_ST_TICKS);
    st->passes = UINT32_MAX;
    for (i = 0; i < st->vcpus; i++) {
        st->vcpu_writes[i] = qtest_readq(dg->qts,
                                         DG_STATS_VCPU(i) + DG_ST_WRITES);
        st->vcpu_passes[i] = qtest_readl(dg->qts,
                                         DG_STATS_VCPU(i) + DG_ST_PASSES);
        st->writes += st->vcpu_writes[i];
        st->passes = MIN(st->passes, st->vcpu_passes[i]);
    }
}

static uint64_t total_writes(DirtyGuest *dg)
{
    uint64_t writes = 0;
    unsigned i;

    for (i = 0; i < dg->opts.vcpus; i++) {
        writes += qtest_readq(dg->qts, DG_STATS_VCPU(i) + DG_ST_WRITES);
    }
    return writes;
}

void dirty_guest_wait_writes(DirtyGuest *dg, uint64_t writes)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTY_GUEST_BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    uint64_t target = 0;
    bool up = false;

    for (;;) {
        if (!up &&
            qtest_readl(dg->qts, DG_STATS + DG_ST_MAGIC) == DG_MAGIC) {
            up = true;
            target = total_writes(dg) + writes;
        }
        if (up && total_writes(dg) >= target) {
            return;
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("dirty guest made no progress in %d s (%s)",
                    DIRTY_GUEST_BOOT_TIMEOUT_S,
                    up ? "running, but not writing" : "never started");
        }
        g_usleep(POLL_INTERVAL_US);
    }
}

/* Whether vCPU @i has pages to write in each batch */
static bool vcpu_writes_pages(DirtyGuest *dg, unsigned i)
{
    uint64_t n = dg->opts.vcpus;
    uint64_t per_tick = dg->opts.pages_per_tick;

    return !per_tick || (i + 1) * per_tick / n > i * per_tick / n;
}

void dirty_guest_wait_running(DirtyGuest *dg)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTY_GUEST_BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    uint64_t first[DG_MAX_VCPUS];
    bool up[DG_MAX_VCPUS] = { false };
    unsigned i = 0;

    /* One vCPU after the other: each is waited for until it is writing */
    while (i < dg->opts.vcpus) {
        uint32_t stats = DG_STATS_VCPU(i);

        if (!up[i] && qtest_readl(dg->qts, stats + DG_ST_MAGIC) == DG_MAGIC) {
            up[i] = true;
            first[i] = qtest_readq(dg->qts, stats + DG_ST_WRITES);
        }
        if (up[i] && (!vcpu_writes_pages(dg, i) ||
                      qtest_readq(dg->qts, stats + DG_ST_WRITES) > first[i])) {
            i++;
            continue;
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("dirty guest vCPU %u of %u made no progress in %d s (%s)",
                    i, dg->opts.vcpus, DIRTY_GUEST_BOOT_TIMEOUT_S,
                    up[i] ? "running, but not writing" : "never started");
        }
        g_usleep(POLL_INTERVAL_US);
    }
}

void dirty_guest_vcpu_slice(DirtyGuest *dg, unsigned i, uint32_t *first,
                            uint32_t *end)
{
    uint64_t n = dg->opts.vcpus;
    uint64_t pages = dg->opts.region_pages;

    g_assert_cmpuint(i, <, n);
    *first = i * pages / n;
    *end = (i + 1) * pages / n;
}

void dirty_guest_set_pages_per_tick(DirtyGuest *dg, uint32_t pages)
{
    qtest_writel(dg->qts, param_addr(DG_P_PAGES_PER_TICK), pages);
    dg->opts.pages_per_tick = pages;
}

/* Completed passes over the whole region: the fewest of any vCPU */
static uint32_t fewest_passes(DirtyGuest *dg)
{
    uint32_t passes = UINT32_MAX;
    unsigned i;

    for (i = 0; i < dg->opts.vcpus; i++) {
        passes = MIN(passes, qtest_readl(dg->qts, DG_STATS_VCPU(i) +
                                         DG_ST_PASSES));
    }
    return passes;
}

void dirty_guest_set_region_pages(DirtyGuest *dg, uint32_t pages)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTY_GUEST_BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    uint32_t passes;

    g_assert_cmpuint(pages, >=, dg->opts.vcpus);
    g_assert_cmpuint((uint64_t)dg->opts.region_base +
                     (uint64_t)pages * DIRTY_GUEST_PAGE_SIZE, <=,
                     (uint64_t)dg->opts.mem_mb * MiB);
    qtest_writel(dg->qts, param_addr(DG_P_REGION_PAGES), pages);
    dg->opts.region_pages = pages;

    /* the pass in progress may have started on the old region */
    passes = fewest_passes(dg);
    while (fewest_passes(dg) < passes + 2) {
        if (g_get_monotonic_time() > deadline) {
            g_error("dirty guest made no pass over %" PRIu32 " pages in "
                    "%d s", pages, DIRTY_GUEST_BOOT_TIMEOUT_S);
        }
        g_usleep(POLL_INTERVAL_US);
    }
}

void dirty_guest_set_frozen(DirtyGuest *dg, bool frozen)
{
    gint64 deadline = g_get_monotonic_time() +
                      DIRTY_GUEST_BOOT_TIMEOUT_S * G_USEC_PER_SEC;
    DirtyGuestStats a, b;

    qtest_writel(dg->qts, param_addr(DG_P_FREEZE), frozen);
    if (!frozen) {
        return;
    }
    dirty_guest_read(dg, &b);
    do {
        a = b;
        g_usleep(20 * 1000);
        dirty_guest_read(dg, &b);
        if (g_get_monotonic_time() > deadline) {
            g_error("dirty guest still writes %d s after it was frozen",
                    DIRTY_GUEST_BOOT_TIMEOUT_S);
        }
    } while (b.writes != a.writes);
}

double dirty_guest_write_rate(DirtyGuest *dg, int ms)
{
    DirtyGuestStats a, b;
    gint64 t0, t1;

    dirty_guest_read(dg, &a);
    t0 = g_get_monotonic_time();
    g_usleep(ms * 1000);
    dirty_guest_read(dg, &b);
    t1 = g_get_monotonic_time();
    return (b.writes - a.writes) * (double)G_USEC_PER_SEC / (t1 - t0);
}

static void sigcont_on_abort(void *opaque)
{
    DirtyGuest *dg = opaque;

    kill(qtest_pid(dg->qts), SIGCONT);
}

void dirty_guest_sigstop(DirtyGuest *dg)
{
    g_assert_false(dg->sigstopped);
    qtest_add_abrt_handler(sigcont_on_abort, dg);
    g_assert_cmpint(kill(qtest_pid(dg->qts), SIGSTOP), ==, 0);
    dg->sigstopped = true;
}

void dirty_guest_sigcont(DirtyGuest *dg)
{
    g_assert_true(dg->sigstopped);
    g_assert_cmpint(kill(qtest_pid(dg->qts), SIGCONT), ==, 0);
    qtest_remove_abrt_handler(dg);
    dg->sigstopped = false;
}

static bool guest_running(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{ 'execute': 'query-status' }");
    bool running = qdict_get_bool(rsp, "running");

    qobject_unref(rsp);
    return running;
}

static void *map_ram(DirtyGuest *dg, size_t len)
{
    int fd = open(dg->ram_path, O_RDONLY);
    void *p;

    g_assert_cmpint(fd, >=, 0);
    p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    g_assert(p != MAP_FAILED);
    close(fd);
    return p;
}

uint64_t dirty_guest_ram_differences(DirtyGuest *a, DirtyGuest *b)
{
    size_t len = (size_t)a->opts.mem_mb * MiB;
    const unsigned char *pa, *pb;
    uint64_t differ = 0;
    size_t ofs;

    g_assert_nonnull(a->ram_path);
    g_assert_nonnull(b->ram_path);
    g_assert_cmpuint(a->opts.mem_mb, ==, b->opts.mem_mb);
    g_assert_true(a->sigstopped || !guest_running(a->qts));
    g_assert_true(b->sigstopped || !guest_running(b->qts));

    pa = map_ram(a, len);
    pb = map_ram(b, len);
    for (ofs = 0; ofs < len; ofs += DIRTY_GUEST_PAGE_SIZE) {
        if (memcmp(pa + ofs, pb + ofs, DIRTY_GUEST_PAGE_SIZE)) {
            size_t i = 0, n = 0;

            while (pa[ofs + i] == pb[ofs + i]) {
                i++;
            }
            while (i + n < DIRTY_GUEST_PAGE_SIZE &&
                   pa[ofs + i + n] != pb[ofs + i + n]) {
                n++;
            }
            if (differ++ < 8) {
                g_test_message("guest RAM differs at 0x%zx: %zu bytes from "
                               "0x%zx (0x%02x vs 0x%02x)", ofs, n, ofs + i,
                               pa[ofs + i], pb[ofs + i]);
            }
        }
    }
    munmap((void *)pa, len);
    munmap((void *)pb, len);
    return differ;
}

uint64_t dirty_guest_region_bytes(DirtyGuest *dg)
{
    return (uint64_t)dg->opts.region_pages * DIRTY_GUEST_PAGE_SIZE;
}

uint64_t dirty_guest_ram_bytes(DirtyGuest *dg)
{
    return (uint64_t)dg->opts.mem_mb * MiB;
}
