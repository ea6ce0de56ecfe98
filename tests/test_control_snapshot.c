/* Control plane, snapshots (bp_store_snapshot): a copy taken while a thread appends, compared
 * event by event; appends that returned before it are in it; every write, fsync and rename of
 * the copy failed in turn (no copy left, the store not stopped); a process SIGKILLed mid-snapshot
 * (BP_SNAPSHOT_KILLS times, default 20: every finished copy verifies, none cut at open). */
#include "t.h"
#include "platform/platform.h"
#include "store/store_impl.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>
#include <time.h>

/* --------------------------------------------------------------- snapshot */

typedef struct appender {
    bp_store *s;
    bool stop;  /* atomic */
    uint64_t n; /* atomic */
    int failures;
} appender;

static void *append_loop(void *arg) {
    appender *a = arg;
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_NO_SYNC;
    for (uint64_t n = 0; !__atomic_load_n(&a->stop, __ATOMIC_RELAXED); n++) {
        char entity[32];
        snprintf(entity, sizeof entity, "acct:%llu", (unsigned long long)(n % 7));
        bp_batch_item two[2] = {{entity, "bank", BP_KIND(1, 1), "debit", 5, NULL},
                                {"ledger", "bank", BP_KIND(1, 2), "credit", 6, NULL}};
        bp_status rc =
            n % 5 == 0 ? bp_append_batch(a->s, NULL, two, 2)
                       : bp_append_ex(a->s, NULL, entity, "bank", BP_KIND(1, 1), &n, sizeof n, &o);
        if (rc) a->failures++;
        __atomic_store_n(&a->n, n + 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Every event of the copy is the source's event at the same seq; the copy verifies. */
static void check_copy(bp_store *src, const char *copy, uint64_t seq) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    bp_store *c;
    CHECK_OK(bp_store_open(&c, copy, &o));
    bp_store_open_report orep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(c, &orep);
    CHECK_EQ(orep.bytes_cut, 0); /* the point never splits a frame or a batch */
    CHECK_EQ(orep.frames_cut, 0);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(c, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_EQ(vr.events, seq);
    uint8_t a[16], b[16];
    bp_store_uuid(src, a);
    bp_store_uuid(c, b);
    CHECK(memcmp(a, b, 16) == 0);
    bp_region r = BP_REGION_INIT;
    bp_iter *ic, *is;
    CHECK_OK(bp_query(c, &ic, &r, BP_READ_FULL));
    r.to_seq = seq;
    CHECK_OK(bp_query(src, &is, &r, BP_READ_FULL));
    const bp_event *ec, *es;
    uint64_t n = 0;
    bp_status rc;
    while ((rc = bp_iter_next(ic, &ec)) == BP_OK) {
        CHECK_OK(bp_iter_next(is, &es));
        CHECK_EQ(ec->global_seq, es->global_seq);
        CHECK(memcmp(ec->event_hash.b, es->event_hash.b, 32) == 0);
        CHECK_EQ(ec->payload_len, es->payload_len);
        CHECK(memcmp(ec->payload, es->payload, ec->payload_len) == 0);
        n++;
    }
    CHECK_EQ(rc, BP_DONE);
    CHECK_EQ(bp_iter_next(is, &es), BP_DONE);
    CHECK_EQ(n, seq);
    bp_iter_free(ic);
    bp_iter_free(is);
    CHECK_OK(bp_store_close(c));
}

static void test_snapshot_under_writes(void) {
    const char *dir = t_dir("snap-src");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    t_rmdir(dest);
    bp_open_options oo = BP_OPEN_OPTIONS_INIT;
    oo.no_open_event = true;
    oo.segment_size = 64 * 1024; /* several sealed segments, one active */
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    appender a = {s, false, 0, 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, append_loop, &a), 0);
    while (__atomic_load_n(&a.n, __ATOMIC_RELAXED) < 3000)
        bp_pf_yield();
    bp_snapshot_report rep = BP_SNAPSHOT_REPORT_INIT;
    bp_status rc = bp_store_snapshot(s, &rep, dest);
    __atomic_store_n(&a.stop, true, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    CHECK_OK(rc);
    CHECK_EQ(a.failures, 0);
    CHECK(rep.global_seq >= 3000);
    CHECK(rep.segments > 1);
    CHECK(rep.bytes > 0);
    check_copy(s, dest, rep.global_seq);
    bp_store_stats st = BP_STORE_STATS_INIT;
    /* the copy is a store of its own: writable, and the source's key registry with it */
    bp_store *c;
    CHECK_OK(bp_store_open(&c, dest, NULL));
    CHECK_OK(bp_append(c, NULL, "acct:1", "bank", BP_KIND(1, 1), "x", 1));
    CHECK_OK(bp_store_close(c));
    /* no partial directory is left beside it */
    char partial[1300];
    snprintf(partial, sizeof partial, "%s.partial-%ld", dest, (long)getpid());
    CHECK_EQ(access(partial, F_OK), -1);
    /* bad input */
    CHECK_FAILS(bp_store_snapshot(s, NULL, dest), BP_EEXIST, "exists");
    CHECK_FAILS(bp_store_snapshot(s, NULL, ""), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_store_snapshot(NULL, NULL, dest), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_store_snapshot(s, NULL, "/nonexistent-dir/x/y"), BP_EIO, "cannot create");
    char inside[1300]; /* a copy inside the store (or inside one of its folders) is refused */
    snprintf(inside, sizeof inside, "%s/backup", dir);
    CHECK_FAILS(bp_store_snapshot(s, NULL, inside), BP_EINVAL, "inside the store");
    snprintf(inside, sizeof inside, "%s/segments/../segments/backup", dir);
    CHECK_FAILS(bp_store_snapshot(s, NULL, inside), BP_EINVAL, "inside the store");
    CHECK_EQ(access(inside, F_OK), -1);
    CHECK_OK(bp_store_close(s));
    /* a read-only handle snapshots too */
    oo.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &oo));
    t_rmdir(dest);
    CHECK_OK(bp_store_snapshot(s, &rep, dest));
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(rep.global_seq, st.events);
    check_copy(s, dest, rep.global_seq);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dest);
    t_rmdir(dir);
}

/* Every append that returned before bp_store_snapshot is in the copy: a no-sync append
 * written behind a durable one still in its (slow) fdatasync is not published when it
 * returns; the snapshot's initial sync publishes it before the point is taken. */
typedef struct durable_arg {
    bp_store *s;
    bp_status rc;
} durable_arg;

static void *durable_append(void *arg) {
    durable_arg *d = arg;
    d->rc = bp_append(d->s, NULL, "acct:d", "bank", BP_KIND(1, 1), "d", 1);
    return NULL;
}

static void test_snapshot_includes_returned_appends(void) {
    const char *dir = t_dir("snap-returned");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    t_rmdir(dest);
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.fault = &f});
    CHECK_OK(bp_append(s, NULL, "acct:0", "bank", BP_KIND(1, 1), "0", 1));
    pthread_mutex_lock(&f.mu);
    f.sync_delay_us = 300000;
    uint64_t syncs0 = f.syncs;
    pthread_mutex_unlock(&f.mu);
    durable_arg d = {s, BP_OK};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, durable_append, &d), 0);
    for (;;) { /* until the durable append is in its fdatasync */
        pthread_mutex_lock(&f.mu);
        bool in = f.syncs > syncs0;
        pthread_mutex_unlock(&f.mu);
        if (in) break;
        bp_pf_yield();
    }
    bp_append_options ns = BP_APPEND_OPTIONS_INIT;
    ns.durability = BP_NO_SYNC;
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &r, "acct:n", "bank", BP_KIND(1, 1), "n", 1, &ns));
    bp_snapshot_report rep = BP_SNAPSHOT_REPORT_INIT;
    CHECK_OK(bp_store_snapshot(s, &rep, dest));
    pthread_join(th, NULL);
    CHECK_OK(d.rc);
    CHECK(rep.global_seq >= r.global_seq); /* the returned append is in the copy */
    check_copy(s, dest, rep.global_seq);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dest);
    t_rmdir(dir);
}

/* A failed write or fsync of the copy: an error, no dest, no partial dir, and the store
 * goes on (a failed backup does not fail-stop it). Every I/O step of the copy is hit. */
static void test_snapshot_faults(void) {
    const char *dir = t_dir("snap-fault");
    char dest[1200];
    snprintf(dest, sizeof dest, "%s-copy", dir);
    bp_fault f;
    bp_fault_init(&f);
    t_open_opts oo = {.segment_size = 16 * 1024, .fault = &f, .durability = BP_NO_SYNC};
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &oo));
    for (int i = 0; i < 400; i++)
        CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    CHECK_OK(bp_store_sync(s));
    /* how many writes, syncs and renames a whole snapshot makes */
    uint64_t w0 = f.writes, s0 = f.syncs, r0 = f.renames;
    t_rmdir(dest);
    CHECK_OK(bp_store_snapshot(s, NULL, dest));
    uint64_t writes = f.writes - w0, syncs = f.syncs - s0, renames = f.renames - r0;
    CHECK(writes >= 4 && syncs >= 4 && renames >= 2);
    t_rmdir(dest);
    char partial[1300];
    snprintf(partial, sizeof partial, "%s.partial-%ld", dest, (long)getpid());
    int failed = 0;
    for (int kind = 0; kind < 3; kind++) {
        uint64_t steps = kind == 0 ? writes : kind == 1 ? syncs : renames;
        for (uint64_t k = 1; k <= steps; k++) {
            f.fail_write_at = kind == 0 ? f.writes + k : 0;
            f.fail_sync_at = kind == 1 ? f.syncs + k : 0;
            f.fail_rename_at = kind == 2 ? f.renames + k : 0;
            bp_status rc = bp_store_snapshot(s, NULL, dest);
            f.fail_write_at = f.fail_sync_at = f.fail_rename_at = 0;
            bool last_sync = kind == 1 && k == steps; /* the parent directory's, after rename */
            if (last_sync) {
                CHECK_EQ(rc, BP_EIO); /* reported; the copy is whole */
                check_copy(s, dest, 400);
                t_rmdir(dest);
            } else {
                CHECK_EQ(rc, BP_EIO);
                CHECK(strstr(bp_last_error(), "snapshot") != NULL);
                CHECK_EQ(access(dest, F_OK), -1);
            }
            CHECK_EQ(access(partial, F_OK), -1);
            failed++;
            bp_store_stats st = BP_STORE_STATS_INIT; /* the store is not fail-stopped */
            CHECK_OK(bp_store_stats_get(s, &st));
            CHECK(!st.failed);
        }
    }
    CHECK_OK(bp_append(s, NULL, "e", "x", BP_KIND(1, 1), "0123456789abcdef", 16));
    fprintf(stderr, "  snapshot faults: %d failing steps, each left no partial copy\n", failed);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(dir);
}

/* SIGKILL a process in the middle of snapshots (while it appends): each DEST that exists
 * afterwards is a whole store that verifies. */
static void test_snapshot_kill9(void) {
    const char *dir = t_dir("snap-kill");
    char base[1200];
    snprintf(base, sizeof base, "%s-copies", dir);
    t_rmdir(base);
    mkdir(base, 0755);
    const char *env = getenv("BP_SNAPSHOT_KILLS");
    int kills = env ? atoi(env) : 20, whole = 0;
    srand(7);
    for (int k = 0; k < kills; k++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            bp_open_options oo = BP_OPEN_OPTIONS_INIT;
            oo.segment_size = 32 * 1024;
            bp_store *s;
            if (bp_store_open(&s, dir, &oo)) {
                fprintf(stderr, "open: %s\n", bp_last_error());
                _exit(3);
            }
            appender a = {s, false, 0, 0};
            pthread_t th;
            if (pthread_create(&th, NULL, append_loop, &a)) _exit(4);
            for (int i = 0;; i++) {
                char dest[1400];
                snprintf(dest, sizeof dest, "%s/run%d-%d", base, k, i);
                if (bp_store_snapshot(s, NULL, dest)) {
                    fprintf(stderr, "snapshot: %s\n", bp_last_error());
                    _exit(5);
                }
            }
        }
        struct timespec ts = {0, (long)(20000 + rand() % 80000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        CHECK(WIFSIGNALED(st)); /* it was still snapshotting */
    }
    char **names;
    size_t n;
    CHECK_EQ(bp_pf_list(base, "", &names, &n), 0);
    for (size_t i = 0; i < n; i++) {
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", base, names[i]);
        if (names[i][0] == '.' || strstr(names[i], ".partial-"))
            continue; /* the unfinished copy: never renamed */
        bp_open_options o = BP_OPEN_OPTIONS_INIT;
        o.read_only = true;
        bp_store *c;
        CHECK_OK(bp_store_open(&c, p, &o));
        bp_store_open_report orep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(c, &orep);
        CHECK_EQ(orep.bytes_cut, 0);
        CHECK_EQ(orep.frames_cut, 0);
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_OK(bp_store_verify(c, &vr, NULL));
        CHECK_OK(bp_store_close(c));
        whole++;
    }
    bp_pf_list_free(names, n);
    CHECK(whole > 0);
    /* the source survived its kills too */
    bp_store *s = t_open(dir, NULL);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    fprintf(stderr, "  snapshot crash test: %d SIGKILLs, %d finished copies all verify\n", kills,
            whole);
    t_rmdir(base);
    t_rmdir(dir);
}

/* ---------------------------------------------------------- a copy cut afterwards */

/* The newest segment file of store dir (its number), or 0. */
static uint32_t newest_segment(const char *dir) {
    char segdir[1100];
    snprintf(segdir, sizeof segdir, "%s/segments", dir);
    char **names;
    size_t n = 0;
    if (bp_pf_list(segdir, ".fbat", &names, &n) || !n) return 0;
    uint32_t segno = (uint32_t)strtoul(names[n - 1], NULL, 10);
    bp_pf_list_free(names, n);
    return segno;
}

static int truncate_by(const char *dir, uint32_t segno, uint64_t cut) {
    char path[1200];
    snprintf(path, sizeof path, "%s/segments/%06u.fbat", dir, segno);
    struct stat st;
    if (stat(path, &st) || (uint64_t)st.st_size <= cut) return -1;
    return truncate(path, st.st_size - (off_t)cut);
}

/* A copy records what it holds, as a clean close does (index.ckpt): a copy cut afterwards (a
 * truncated backup: its newest segment, or its last sealed one when the store's point was
 * the end of a segment) is refused at open as acknowledged events lost, read-only too, and
 * verify says so, instead of opening as a crash's torn tail with the events gone unsaid. */
static void test_snapshot_cut_afterwards(void) {
    const char *dir = t_dir("snap-cut");
    char copy[1100], copy2[1100];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    snprintf(copy2, sizeof copy2, "%s-copy2", dir);
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 8192});
    char pay[100];
    memset(pay, 's', sizeof pay);
    for (int i = 0; i < 120; i++)
        CHECK_OK(bp_append(s, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay));
    bp_snapshot_report rep = BP_SNAPSHOT_REPORT_INIT;
    CHECK_OK(bp_store_snapshot(s, &rep, copy)); /* the point is inside the newest segment */
    CHECK_OK(bp_store_close(s));
    /* a clean close seals a segment of 1 MiB and more: the next point ends a sealed segment
     * (an empty one follows in the copy) */
    t_rmdir(dir);
    s = t_open(dir, &(t_open_opts){.segment_size = 4u << 20});
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = BP_NO_SYNC;
    for (int i = 0; i < 6000; i++)
        CHECK_OK(bp_append_ex(s, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, pay, sizeof pay,
                              &o));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = 4u << 20});
    CHECK_OK(bp_store_snapshot(s, &rep, copy2));
    CHECK_OK(bp_store_close(s));
    for (int k = 0; k < 2; k++) {
        const char *c = k ? copy2 : copy;
        uint32_t newest = newest_segment(c);
        bp_store *r;
        CHECK_OK(t_open_try(&r, c, &(t_open_opts){.read_only = true, .no_create = true}));
        CHECK_OK(bp_store_close(r)); /* whole: opens */
        /* the copy2's newest is the empty segment (a header only): cut the sealed one before */
        char np[1200];
        struct stat st;
        snprintf(np, sizeof np, "%s/segments/%06u.fbat", c, newest);
        CHECK(stat(np, &st) == 0);
        CHECK_EQ(k ? st.st_size : 0, k ? 48 : 0);
        uint32_t cut = k ? newest - 1 : newest;
        CHECK_EQ(truncate_by(c, cut, 300), 0);
        CHECK_EQ(t_open_try(&r, c, &(t_open_opts){.read_only = true, .no_create = true}),
                 BP_ECORRUPT);
        CHECK(strstr(bp_last_error(), "segment") != NULL);
        CHECK_EQ(t_open_try(&r, c, &(t_open_opts){.no_create = true}), BP_ECORRUPT); /* writable */
        t_rmdir(c);
    }
    t_rmdir(dir);
}

/* A snapshot whose point is below what the index holds: it waited for a group commit's sync
 * while another thread's append was written (unpublished, waiting for the next sync). The
 * copy's checkpoint gives each entity its head as of the point, not that newer event's, so
 * the copy's next append chains on its last event and the copy verifies (with the head of
 * the event it does not hold, "prev_hash does not match its previous event"). */
static void *append_late(void *arg) {
    if (bp_append(arg, NULL, "acct:1", "bank", 0x1001, "late", 4))
        fprintf(stderr, "append_late: %s\n", bp_last_error());
    return NULL;
}

typedef struct snap_job {
    bp_store *s;
    const char *dest;
    bp_snapshot_report rep;
    bp_status rc;
} snap_job;

static void *snap_thread(void *arg) {
    snap_job *j = arg;
    j->rep = (bp_snapshot_report)BP_SNAPSHOT_REPORT_INIT;
    j->rc = bp_store_snapshot(j->s, &j->rep, j->dest);
    return NULL;
}

static void wait_sleepers(bp_store *s, uint32_t n) {
    while (__atomic_load_n(&s->sync_sleepers, __ATOMIC_SEQ_CST) < n)
        sched_yield();
}

static void test_snapshot_point_below_the_index(void) {
    const char *dir = t_dir("snap-past");
    char copy[1100];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    bp_fault f;
    bp_fault_init(&f);
    bp_store *w;
    CHECK_OK(t_open_try(&w, dir, &(t_open_opts){.fault = &f, .durability = BP_DURABLE}));
    for (int i = 0; i < 20; i++)
        CHECK_OK(bp_append(w, NULL, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, "x", 1));
    f.sync_delay_us = 300000;
    uint64_t syncs0 = t_fault_syncs(&f);
    pthread_t a, b, st;
    CHECK(pthread_create(&a, NULL, append_late, w) == 0); /* event 21: its sync sleeps */
    while (t_fault_syncs(&f) == syncs0)
        sched_yield();
    snap_job j = {w, copy, BP_SNAPSHOT_REPORT_INIT, BP_OK};
    CHECK(pthread_create(&st, NULL, snap_thread, &j) == 0); /* waits for that sync */
    wait_sleepers(w, 1);
    CHECK(pthread_create(&b, NULL, append_late, w) == 0); /* event 22: written, waits */
    wait_sleepers(w, 2);
    pthread_join(st, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    f.sync_delay_us = 0;
    CHECK_OK(j.rc);
    CHECK_EQ(j.rep.global_seq, 21); /* the point: event 22 was not published yet */
    CHECK_OK(bp_store_close(w));
    bp_store *c;
    CHECK_OK(t_open_try(&c, copy, &(t_open_opts){.no_create = true}));
    uint64_t clock = 0;
    CHECK_OK(bp_entity_head(c, &clock, NULL, "acct:1"));
    CHECK_EQ(clock, 11);
    CHECK_OK(bp_append(c, NULL, "acct:1", "bank", 0x1001, "next", 4));
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(c, &vr, NULL));
    CHECK_EQ(vr.problems, 0);
    CHECK_OK(bp_store_close(c));
    bp_fault_destroy(&f);
    t_rmdir(copy);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_snapshot_under_writes);
    RUN(test_snapshot_includes_returned_appends);
    RUN(test_snapshot_faults);
    RUN(test_snapshot_kill9);
    RUN(test_snapshot_cut_afterwards);
    RUN(test_snapshot_point_below_the_index);
    T_DONE();
}
