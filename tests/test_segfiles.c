/* Segment files and descriptors: a store of 1,500 segments under RLIMIT_NOFILE 256 opens
 * (writable and read-only), reads every event, verifies, exports, snapshots, reports stats,
 * compacts and rotates across hundreds more segments, with the count of open descriptors
 * bounded throughout; the reader cache evicts without harming events still held; with every
 * mapping failing (pread fallback) the descriptors stay bounded too.
 *
 *   test_segfiles                 the tests
 *   test_segfiles --make DIR N    make a store of about N segments in DIR (cli_test.sh) */
#include "t.h"
#include "bp_testing.h"
#include "platform/platform.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define SEG_SIZE 4096
#define PAY 1400 /* two events per 4 KiB segment */
#define N_ENTS 7
#define LIMIT 256

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

static void payload(uint64_t i, uint8_t *out) {
    for (size_t j = 0; j < PAY; j++)
        out[j] = (uint8_t)(i * 131 + j * 7 + (j >> 5));
}

/* Event i carries payload(i) and its index in the idempotency-free payload's first bytes. */
static bool intact(const bp_event *ev, uint64_t i) {
    uint8_t want[PAY];
    payload(i, want);
    return ev && ev->payload_len == PAY && memcmp(ev->payload, want, PAY) == 0;
}

/* Append n events (event i: entity i % N_ENTS, payload(i)) from i = first. */
static bool append_n(bp_store *s, uint64_t first, uint64_t n) {
    uint8_t p[PAY];
    for (uint64_t i = first; i < first + n; i++) {
        char ent[32];
        snprintf(ent, sizeof ent, "fd:%llu", (unsigned long long)(i % N_ENTS));
        payload(i, p);
        if (bp_append(s, NULL, ent, "fd", BP_KIND(1, 1), p, PAY)) return false;
    }
    return true;
}

static uint32_t segments_of(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    return bp_store_stats_get(s, &st) ? 0 : st.segments;
}

/* Every event in seq order, each payload checked (event seq k is event k - 1 as appended,
 * when nothing was compacted). */
static void read_all(bp_store *s, uint64_t n, int fd_bound) {
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &(bp_region)BP_REGION_INIT, BP_READ_FULL));
    const bp_event *ev;
    uint64_t k = 0;
    int peak = 0;
    while (bp_iter_next(it, &ev) == BP_OK) {
        CHECK(intact(ev, ev->global_seq - 1));
        if (++k % 256 == 0) {
            int now = open_fds();
            if (now > peak) peak = now;
        }
    }
    bp_iter_free(it);
    CHECK_EQ(k, n);
    CHECK(peak <= fd_bound);
}

static void make_store(const char *dir, uint32_t segments) {
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = SEG_SIZE});
    CHECK(s);
    CHECK(append_n(s, 0, 2ull * segments));
    CHECK(segments_of(s) >= segments);
    CHECK_OK(bp_store_close(s));
}

static const char *g_dir;
static uint64_t g_events;

/* In a child under RLIMIT_NOFILE = LIMIT: everything works and the descriptors stay few. */
static void under_limit(void) {
    struct rlimit rl = {LIMIT, LIMIT};
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int base = open_fds();
    CHECK(base > 0 && base < 16);
    /* the store's own: lock, the active segment (writer, reader), the cached ones that keep
     * a descriptor (RLIMIT_NOFILE / 8 = 32), one at a time for verify, snapshot, compaction,
     * and a few more for files it reads whole */
    int bound = base + 48;
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE});
    CHECK(s);
    CHECK(open_fds() <= base + 4);
    int f0 = t_failures;
    read_all(s, g_events, bound);
    if (t_failures != f0) return;
    /* gets: each event read by id, several held at once from far apart segments */
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &(bp_region)BP_REGION_INIT, BP_READ_INDEX_ONLY));
    const bp_event *ev;
    bp_event *held[8] = {0};
    uint64_t k = 0;
    while (bp_iter_next(it, &ev) == BP_OK) {
        if (k++ % 7) continue;
        bp_event *g;
        CHECK_OK(bp_get(s, &g, &ev->event_id));
        CHECK(intact(g, ev->global_seq - 1));
        bp_event_free(held[k % 8]);
        held[k % 8] = g;
    }
    bp_iter_free(it);
    for (int i = 0; i < 8; i++) {
        CHECK(!held[i] || intact(held[i], held[i]->global_seq - 1));
        bp_event_free(held[i]);
    }
    CHECK(open_fds() <= bound);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, g_events);
    CHECK(vr.segments >= 1500);
    t_membuf m = {0};
    CHECK_OK(bp_export(s, t_to_mem, &m, NULL));
    size_t lines = 0;
    for (size_t i = 0; i < m.n; i++)
        lines += m.p[i] == '\n';
    free(m.p);
    CHECK_EQ(lines, g_events);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments >= 1500);
    CHECK(st.bytes_on_disk >= (uint64_t)st.segments * 3000);
    char snap[1100];
    snprintf(snap, sizeof snap, "%s-snap", g_dir);
    t_rmdir(snap);
    bp_snapshot_report sr = BP_SNAPSHOT_REPORT_INIT;
    CHECK_OK(bp_store_snapshot(s, &sr, snap));
    CHECK(sr.segments >= 1500);
    CHECK(open_fds() <= bound);
    /* appends across 300 more segments: each rotation leaves no descriptor behind */
    uint32_t before = segments_of(s);
    CHECK(append_n(s, g_events, 600));
    CHECK(segments_of(s) >= before + 300);
    CHECK(open_fds() <= bound);
    read_all(s, g_events + 600, bound);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(open_fds(), base);
    /* the snapshot, read-only */
    s = t_open(snap, &(t_open_opts){.segment_size = SEG_SIZE, .read_only = true});
    CHECK(s);
    read_all(s, g_events, bound);
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
    t_rmdir(snap);
    /* compaction of 1,800 segments (and a read of what it kept, and more appends) */
    s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE});
    CHECK(s);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 400;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK(cr.changed);
    CHECK(cr.segments_before >= 1800);
    CHECK_EQ(cr.events_kept, 400 * N_ENTS);
    CHECK(open_fds() <= bound);
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 400 * N_ENTS);
    CHECK(append_n(s, g_events + 600, 100));
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK(open_fds() <= bound);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(open_fds(), base);
}

static void run_child(void (*fn)(void)) {
    fflush(NULL);
    int f0 = t_failures;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(t_failures != f0 ? 1 : 0);
    }
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
}

static void test_many_segments_low_fd_limit(void) {
    int f0 = t_failures;
    g_dir = t_dir("segfiles");
    make_store(g_dir, 1500);
    if (t_failures != f0) return;
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE, .read_only = true});
    CHECK(s);
    CHECK(segments_of(s) >= 1500);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    g_events = st.events;
    CHECK_OK(bp_store_close(s));
    run_child(under_limit);
    t_rmdir(g_dir);
}

/* The cache evicts (a bound of 100 segfiles here), and an event held meanwhile keeps the
 * mapping of its evicted segment; with every mapping failing, reads use pread and the
 * descriptors kept for it are bounded (RLIMIT_NOFILE / 8) too. */
static void evict_and_fallback(void) {
    struct rlimit rl = {LIMIT, LIMIT};
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int base = open_fds();
    bp__segfile_max = 100;
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE});
    CHECK(s);
    bp_iter *it;
    CHECK_OK(bp_query(s, &it, &(bp_region)BP_REGION_INIT, BP_READ_INDEX_ONLY));
    const bp_event *ev;
    CHECK_OK(bp_iter_next(it, &ev));
    bp_event *first;
    CHECK_OK(bp_get(s, &first, &ev->event_id));
    bp_iter_free(it);
    read_all(s, g_events, base + 48); /* evicts the first segment's segfile many times over */
    bp_segment_info *info = calloc(4096, sizeof *info);
    info[0].struct_size = sizeof *info;
    size_t nseg;
    CHECK_OK(bp_store_segments_list(s, info, 4096, &nseg));
    uint32_t mapped = 0;
    for (size_t i = 0; i < nseg; i++)
        mapped += info[i].mapped;
    free(info);
    CHECK(mapped <= 100 + 2);
    CHECK(intact(first, 0));
    bp_event_free(first);
    CHECK_OK(bp_store_close(s));
    bp__segfile_max = 0;
    /* every mapping fails: each segfile keeps a descriptor for pread */
    bp_fault f;
    bp_fault_init(&f);
    f.fail_mmap_at = 1;
    f.sticky = true;
    s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE, .read_only = true, .fault = &f});
    CHECK(s);
    read_all(s, g_events, base + 48);
    CHECK(f.tripped > 1000);
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    CHECK_EQ(open_fds(), base);
}

static void test_cache_eviction_and_pread_fallback(void) {
    int f0 = t_failures;
    g_dir = t_dir("segfiles-evict");
    make_store(g_dir, 600);
    if (t_failures != f0) return;
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = SEG_SIZE, .read_only = true});
    CHECK(s);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    g_events = st.events;
    CHECK_OK(bp_store_close(s));
    run_child(evict_and_fallback);
    t_rmdir(g_dir);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--make")) { /* for cli_test.sh */
        /* made on tmpfs when there is one (thousands of synced rotations), then copied */
        char tmp[600], cmd[2000];
        snprintf(tmp, sizeof tmp, "/dev/shm/batpak-make-%ld", (long)getpid());
        struct stat sb;
        bool shm = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode);
        make_store(shm ? tmp : argv[2], (uint32_t)atoi(argv[3]));
        if (shm) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", argv[2], tmp, argv[2]);
            if (!t_failures && system(cmd) != 0) t_failures++;
            t_rmdir(tmp);
        }
        return t_failures ? 1 : 0;
    }
    /* thousands of segment rotations, each synced: on tmpfs when there is one (what is
     * tested, descriptors and mappings, does not depend on the file system) */
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char base[512];
        snprintf(base, sizeof base, "/dev/shm/batpak-tests-%ld", (long)getpid());
        mkdir(base, 0700);
        setenv("BP_TEST_TMP", base, 1);
    }
    RUN(test_many_segments_low_fd_limit);
    RUN(test_cache_eviction_and_pread_fallback);
    if (getenv("BP_TEST_TMP") && !strncmp(getenv("BP_TEST_TMP"), "/dev/shm/", 9))
        rmdir(getenv("BP_TEST_TMP"));
    T_DONE();
}
