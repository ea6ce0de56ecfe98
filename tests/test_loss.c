/* Lost data is refused, never dropped (issue 23, GUIDE "Recover from damage"): every way
 * of losing what index.ckpt, ANCHORS or the segment numbering say the store held fails the
 * open with BP_ECORRUPT naming what is missing, and the refused open writes nothing (every
 * file byte-identical, no cut, no quarantine, no checkpoint, no lifecycle event). With
 * accept_loss the open goes on, the report and the SYSTEM_OPEN_COMPLETED event say what
 * was lost, and a new checkpoint makes the next open (without the flag) succeed. */
#include "t.h"

#include <stddef.h>

#include <dirent.h>
#include <msgpack.h>

#define SEG_SIZE 8192

/* How these tests open (8 KiB segments): writable; writable with the open event; read-only;
 * accepting a loss, writable (with the open event that records it) or read-only. */
static const t_open_opts PLAIN = {.segment_size = SEG_SIZE};
static const t_open_opts EVENT = {.segment_size = SEG_SIZE, .open_event = true};
static const t_open_opts RO = {.segment_size = SEG_SIZE, .read_only = true};
static const t_open_opts ACCEPT = {
    .segment_size = SEG_SIZE, .accept_loss = true, .open_event = true};
static const t_open_opts ACCEPT_RO = {
    .segment_size = SEG_SIZE, .accept_loss = true, .read_only = true};

/* 300 durable appends (the default durability) and a clean close. */
static bool populate(const char *dir, int n) {
    bp_store *s;
    if (t_open_try(&s, dir, &PLAIN)) return false;
    char p[64];
    for (int i = 0; i < n; i++) {
        int len = snprintf(p, sizeof p, "{\"i\":%d}", i);
        if (bp_append(s, NULL, i % 2 ? "acct:a" : "acct:b", "ledger", BP_KIND(1, 1), p,
                      (size_t)len))
            return false;
    }
    return bp_store_close(s) == BP_OK;
}

/* ------------------------------------------------- every file, for byte compares */

typedef struct tree {
    char *text; /* "path size fnv\n" per file, sorted by the walk */
    size_t n, cap;
} tree;

static void tree_add(tree *t, const char *line) {
    size_t l = strlen(line);
    if (t->n + l + 1 > t->cap) {
        t->cap = (t->n + l + 1) * 2;
        t->text = realloc(t->text, t->cap);
    }
    memcpy(t->text + t->n, line, l + 1);
    t->n += l;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file under dir but LOCK (it holds the pid of the last opener): name, size, FNV-1a. */
static void tree_walk(tree *t, const char *dir, const char *rel) {
    char path[2048];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return;
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 512)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char r[1024], full[3100];
        snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", names[i]);
        snprintf(full, sizeof full, "%s/%s", dir, r);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            char line[1100];
            snprintf(line, sizeof line, "%s/\n", r);
            tree_add(t, line);
            tree_walk(t, dir, r);
        } else if (strcmp(r, "LOCK")) {
            uint64_t h = 1469598103934665603ull;
            FILE *f = fopen(full, "rb");
            int c;
            while (f && (c = fgetc(f)) != EOF)
                h = (h ^ (uint8_t)c) * 1099511628211ull;
            if (f) fclose(f);
            char line[1200];
            snprintf(line, sizeof line, "%s %lld %016llx\n", r, (long long)st.st_size,
                     (unsigned long long)h);
            tree_add(t, line);
        }
        free(names[i]);
    }
}

static char *snap(const char *dir) {
    tree t = {0};
    tree_add(&t, "");
    tree_walk(&t, dir, "");
    return t.text;
}

/* Both a writable and a read-only open are refused with needle, and nothing changes. */
#define CHECK_REFUSED(dir, needle)                                                                 \
    do {                                                                                           \
        char *_before = snap(dir);                                                                 \
        bp_store *_s;                                                                              \
        CHECK_FAILS(t_open_try(&_s, dir, &EVENT), BP_ECORRUPT, needle);                            \
        CHECK(_s == NULL);                                                                         \
        CHECK_FAILS(t_open_try(&_s, dir, &RO), BP_ECORRUPT, needle);                               \
        char *_after = snap(dir);                                                                  \
        int _same = strcmp(_before, _after) == 0;                                                  \
        if (!_same) fprintf(stderr, "before:\n%s\nafter:\n%s\n", _before, _after);                 \
        free(_before);                                                                             \
        free(_after);                                                                              \
        CHECK(_same);                                                                              \
    } while (0)

static int count_segments(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/segments", dir);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".fbat") && !strstr(e->d_name, ".compact");
    if (d) closedir(d);
    return n;
}

static const char *seg(char *out, const char *dir, int k) {
    snprintf(out, 1200, "%s/segments/%06d.fbat", dir, k);
    return out;
}

static uint64_t events_in(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    return bp_store_stats_get(s, &st) ? 0 : st.events;
}

/* The loss keys of the newest SYSTEM_OPEN_COMPLETED event: events_lost and the "loss" note. */
static bool lifecycle_loss(bp_store *s, uint64_t *events_lost, uint64_t *first_lost, char *note,
                           size_t cap) {
    bp_iter *it;
    const bp_event *ev;
    bool found = false;
    if (bp_stream(s, &it, "batpak:store", BP_READ_FULL)) return false;
    while (bp_iter_next(it, &ev) == BP_OK) {
        if (ev->kind != BP_KIND_SYSTEM_OPEN_COMPLETED) continue;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        found = false;
        if (msgpack_unpack_next(&u, (const char *)ev->payload, ev->payload_len, NULL) ==
                MSGPACK_UNPACK_SUCCESS &&
            u.data.type == MSGPACK_OBJECT_MAP) {
            const msgpack_object_map *m = &u.data.via.map;
            for (uint32_t i = 0; i < m->size; i++) {
                const msgpack_object_str *k = &m->ptr[i].key.via.str;
                const msgpack_object *v = &m->ptr[i].val;
                if (k->size == 11 && !memcmp(k->ptr, "events_lost", 11)) {
                    *events_lost = v->via.u64;
                    found = true;
                } else if (k->size == 14 && !memcmp(k->ptr, "first_lost_seq", 14)) {
                    *first_lost = v->via.u64;
                } else if (k->size == 4 && !memcmp(k->ptr, "loss", 4)) {
                    snprintf(note, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
                }
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    bp_iter_free(it);
    return found;
}

/* Accept the loss (writable, with the lifecycle event), check what the report and the event
 * say, close, and check that a later open needs no flag and verifies clean. */
static void accept_and_check(const char *dir, uint64_t kept, uint64_t lost, uint32_t segs_lost,
                             const char *needle) {
    bp_store *s;
    /* read-only with accept_loss: shows what is left, writes nothing */
    char *before = snap(dir);
    CHECK_OK(t_open_try(&s, dir, &ACCEPT_RO));
    CHECK_EQ(events_in(s), kept);
    CHECK_OK(bp_store_close(s));
    char *after = snap(dir);
    CHECK(strcmp(before, after) == 0);
    free(before);
    free(after);

    CHECK_OK(t_open_try(&s, dir, &ACCEPT));
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    CHECK_EQ(r.events, kept);
    CHECK_EQ(r.events_lost, lost);
    CHECK_EQ(r.first_lost_seq, lost ? kept + 1 : 0);
    CHECK_EQ(r.segments_lost, segs_lost);
    CHECK(strstr(r.loss_note, needle) != NULL);
    uint64_t ev_lost = 0, ev_first = 0;
    char note[200] = "";
    CHECK(lifecycle_loss(s, &ev_lost, &ev_first, note, sizeof note));
    CHECK_EQ(ev_lost, lost);
    CHECK_EQ(ev_first, r.first_lost_seq);
    CHECK(strcmp(note, r.loss_note) == 0);
    CHECK_OK(bp_store_close(s));
    /* the loss is recorded: an open without the flag succeeds, and nothing else is lost */
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    bp_store_open_report_get(s, &r);
    CHECK_EQ(r.events, kept + 1); /* and the lifecycle event */
    CHECK_EQ(r.events_lost, 0);
    CHECK(r.loss_note[0] == '\0');
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));
}

/* Events held by segments 1..k (read-only open of a copy without the rest). */
static uint64_t events_before_segment(const char *dir, int k) {
    char copy[1200], cmd[4000];
    snprintf(copy, sizeof copy, "%s-prefix", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s' && rm -f '%s/index.ckpt'", copy, dir,
             copy, copy);
    if (system(cmd)) return UINT64_MAX;
    int n = count_segments(copy);
    for (int i = k + 1; i <= n; i++) {
        char p[1200];
        unlink(seg(p, copy, i));
    }
    bp_store *s;
    uint64_t e = UINT64_MAX;
    if (t_open_try(&s, copy, &RO) == BP_OK) {
        e = events_in(s);
        bp_store_close(s);
    }
    t_rmdir(copy);
    return e;
}

/* The case: 300 durable appends, 8 KiB segments, clean close, the newest segment
 * removed. It opened with fewer events and the close replaced the evidence. */
static void test_newest_segment_removed(void) {
    const char *dir = t_dir("loss-newest");
    CHECK(populate(dir, 300));
    int n = count_segments(dir);
    CHECK(n >= 4);
    uint64_t kept = events_before_segment(dir, n - 1);
    CHECK(kept < 300);
    char p[1200], want[64];
    CHECK_EQ(unlink(seg(p, dir, n)), 0);
    snprintf(want, sizeof want, "segment %06d is missing", n);
    CHECK_REFUSED(dir, want);
    CHECK_REFUSED(dir, "accept_loss");
    CHECK_REFUSED(dir, "global_seq 300");
    accept_and_check(dir, kept, 300 - kept, 1, want);
    t_rmdir(dir);
}

/* The newest segment truncated to 0 (what a crash before its header reached the disk
 * leaves, but index.ckpt covers it) or to its header. */
static void test_newest_segment_emptied(void) {
    long sizes[2] = {0, 48}; /* nothing, the header alone */
    for (int c = 0; c < 2; c++) {
        const char *dir = t_dir("loss-empty");
        CHECK(populate(dir, 300));
        int n = count_segments(dir);
        uint64_t kept = events_before_segment(dir, n - 1);
        char p[1200], want[64];
        CHECK_EQ(truncate(seg(p, dir, n), sizes[c]), 0);
        snprintf(want, sizeof want, "segment %06d ends at offset", n);
        CHECK_REFUSED(dir, want);
        CHECK_REFUSED(dir, "accept_loss");
        accept_and_check(dir, kept, 300 - kept, 1, want);
        t_rmdir(dir);
    }
}

/* A segment in the middle removed: the gap was refused already; with accept_loss the
 * segments after it go to quarantine/ (the events there chain from the missing ones). */
static void test_middle_segment_removed(void) {
    const char *dir = t_dir("loss-middle");
    CHECK(populate(dir, 300));
    int n = count_segments(dir);
    CHECK(n >= 4);
    uint64_t kept = events_before_segment(dir, 1);
    char p[1200];
    CHECK_EQ(unlink(seg(p, dir, 2)), 0);
    CHECK_REFUSED(dir, "segment 000002 is missing (the next one is 000003.fbat)");
    CHECK_REFUSED(dir, "accept_loss");
    accept_and_check(dir, kept, 300 - kept, (uint32_t)n - 1, "segment 000002 is missing");
    char q[1200];
    snprintf(q, sizeof q, "%s/quarantine/000003.fbat.salvaged", dir);
    struct stat st;
    CHECK_EQ(stat(q, &st), 0); /* kept aside, never deleted */
    t_rmdir(dir);
}

/* The first segment removed: what follows chains from it, so the loss cannot be accepted. */
static void test_first_segment_removed(void) {
    const char *dir = t_dir("loss-first");
    CHECK(populate(dir, 300));
    char p[1200];
    CHECK_EQ(unlink(seg(p, dir, 1)), 0);
    CHECK_REFUSED(dir, "segment 000001 is missing (the first segment is 000002)");
    char *before = snap(dir);
    bp_store *s;
    CHECK_FAILS(t_open_try(&s, dir, &ACCEPT), BP_ECORRUPT, "cannot be accepted");
    char *after = snap(dir);
    CHECK(strcmp(before, after) == 0);
    free(before);
    free(after);
    t_rmdir(dir);
}

/* An older backup of the segments next to a newer index.ckpt. */
static void test_old_segments_new_checkpoint(void) {
    const char *dir = t_dir("loss-backup");
    char bak[1200], cmd[4000];
    snprintf(bak, sizeof bak, "%s-bak", dir);
    CHECK(populate(dir, 100));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s/segments' '%s'", bak, dir, bak);
    CHECK_EQ(system(cmd), 0);
    int old_n = count_segments(dir);
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    for (int i = 0; i < 200; i++)
        CHECK_OK(bp_append(s, NULL, "acct:c", "ledger", BP_KIND(1, 1), "{}", 2));
    CHECK_OK(bp_store_close(s));
    int new_n = count_segments(dir);
    CHECK(new_n > old_n);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/segments' && cp -a '%s' '%s/segments'", dir, bak, dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_REFUSED(dir, "index.ckpt (written at a clean close) covers events up to global_seq 300");
    accept_and_check(dir, 100, 200, (uint32_t)(new_n - old_n), "global_seq 300");
    t_rmdir(bak);

    /* the same within one segment: the backup's newest segment is shorter than the
     * checkpoint says (the refusal the library already had for a cut) */
    dir = t_dir("loss-backup1");
    CHECK(populate(dir, 10));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s/segments' '%s'", bak, dir, bak);
    CHECK_EQ(system(cmd), 0);
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, NULL, "acct:c", "ledger", BP_KIND(1, 1), "{}", 2));
    CHECK_OK(bp_store_close(s));
    snprintf(cmd, sizeof cmd, "rm -rf '%s/segments' && cp -a '%s' '%s/segments'", dir, bak, dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_REFUSED(dir, "segment 000001 ends at offset");
    accept_and_check(dir, 10, 5, 1, "global_seq 15");
    t_rmdir(bak);
    t_rmdir(dir);
}

/* STORE removed while segments exist: refused (a create-open must not make a new store
 * over the old segments), and accept_loss does not change that. */
static void test_store_file_removed(void) {
    const char *dir = t_dir("loss-store");
    CHECK(populate(dir, 50));
    char p[1200];
    snprintf(p, sizeof p, "%s/STORE", dir);
    CHECK_EQ(unlink(p), 0);
    CHECK_REFUSED(dir, "STORE: missing, but");
    bp_store *s;
    CHECK_FAILS(t_open_try(&s, dir, &ACCEPT), BP_ECORRUPT, "Restore STORE");
    CHECK(!(access(p, F_OK) == 0));
    t_rmdir(dir);
}

/* After a compaction: ANCHORS removed (the compacted segments no longer start at 1), and
 * compacted segments removed with no index.ckpt left (ANCHORS is the evidence). */
static void test_compacted_store(void) {
    const char *dir = t_dir("loss-compact");
    CHECK(populate(dir, 300));
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.keep_last = 100;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK_OK(bp_store_close(s));
    char p[1200], cmd[4000], copy[1200];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, dir, copy);
    CHECK_EQ(system(cmd), 0);
    snprintf(p, sizeof p, "%s/ANCHORS", dir);
    CHECK_EQ(unlink(p), 0);
    CHECK_REFUSED(dir, "is missing");

    /* the newest compacted segment removed, and index.ckpt (which covers the one after) */
    int first = 0, last = 0;
    for (int k = 1; k < 1000; k++)
        if (access(seg(p, copy, k), F_OK) == 0) {
            if (!first) first = k;
            last = k;
        }
    CHECK(first >= 1 && last > first);
    CHECK_EQ(unlink(seg(p, copy, last)), 0); /* the active one, after the compacted ones */
    snprintf(p, sizeof p, "%s/index.ckpt", copy);
    CHECK_EQ(unlink(p), 0);
    CHECK(last - 1 > first); /* keep_last 100 leaves several compacted segments */
    {
        CHECK_EQ(unlink(seg(p, copy, last - 1)), 0);
        char want[64];
        snprintf(want, sizeof want, "segment %06d is missing: ANCHORS", last - 1);
        CHECK_REFUSED(copy, want);
        CHECK_OK(t_open_try(&s, copy, &ACCEPT));
        bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &r);
        CHECK(r.segments_lost >= 1);
        CHECK(strstr(r.loss_note, "ANCHORS") != NULL);
        CHECK_OK(bp_store_close(s));
        CHECK_OK(t_open_try(&s, copy, &PLAIN)); /* ANCHORS was rewritten */
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_OK(bp_store_verify(s, &vr, NULL));
        CHECK_OK(bp_store_close(s));
    }
    t_rmdir(copy);
    t_rmdir(dir);
}

/* Key files. One data key file removed is what bp_forget does (that entity's payloads
 * read as forgotten: the crypto-shredding contract); DIR/dkeys removed while sealed events
 * exist lost every key and would turn sealing off for good: refused. DIR/keys (public keys
 * of receipt signers) holds no event data: receipts can still be checked with the key. */
static void test_data_keys_removed(void) {
    const char *dir = t_dir("loss-dkeys");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.seal_payloads = true;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &o));
    for (int i = 0; i < 20; i++)
        CHECK_OK(
            bp_append(s, NULL, i % 2 ? "user:1" : "user:2", "crm", BP_KIND(1, 1), "secret", 6));
    CHECK_OK(bp_store_close(s));
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/dkeys'", dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_REFUSED(dir, "dkeys: acknowledged data lost: the directory is missing, but 20 events");
    CHECK_REFUSED(dir, "accept_loss");
    CHECK_OK(t_open_try(&s, dir, &ACCEPT));
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    CHECK(strstr(r.loss_note, "payloads of 20 sealed events") != NULL);
    CHECK_EQ(r.events_lost, 0); /* the events are there; their payloads are not */
    uint64_t ev_lost = 1, ev_first = 1;
    char note[200] = "";
    CHECK(lifecycle_loss(s, &ev_lost, &ev_first, note, sizeof note));
    CHECK(strcmp(note, r.loss_note) == 0);
    CHECK_OK(bp_append(s, NULL, "user:3", "crm", BP_KIND(1, 1), "new", 3));
    CHECK_OK(bp_store_close(s));
    CHECK_OK(t_open_try(&s, dir, &PLAIN)); /* recorded; still sealing */
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(s, &it, "user:3", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->flags & BP_EVENT_SEALED);
    CHECK(ev->payload_len == 3 && memcmp(ev->payload, "new", 3) == 0);
    bp_iter_free(it);
    CHECK_OK(bp_stream(s, &it, "user:1", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->payload_forgotten);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* DIR/dkeys removed and a segment lost too: the open that accepts both notes the segment's
 * loss (the first found) and still goes on sealing (it made DIR/dkeys anew): a new payload is
 * sealed. It used to leave sealing off when another loss had been accepted first. */
static void test_data_keys_and_segment_removed(void) {
    const char *dir = t_dir("loss-dkeys-seg");
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.seal_payloads = true;
    o.segment_size = SEG_SIZE;
    bp_store *s;
    CHECK_OK(bp_store_open(&s, dir, &o));
    char pay[200];
    memset(pay, 's', sizeof pay);
    for (int i = 0; i < 200; i++)
        CHECK_OK(
            bp_append(s, NULL, i % 2 ? "user:1" : "user:2", "crm", BP_KIND(1, 1), pay, sizeof pay));
    CHECK_OK(bp_store_close(s));
    int n = count_segments(dir);
    CHECK(n >= 3);
    char cmd[2400], p[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/dkeys'", dir);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(unlink(seg(p, dir, n)), 0);
    CHECK_OK(t_open_try(&s, dir, &ACCEPT));
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    CHECK(strstr(r.loss_note, "is missing") != NULL);
    CHECK_OK(bp_append(s, NULL, "user:3", "crm", BP_KIND(1, 1), "new", 3));
    CHECK_OK(bp_store_close(s));
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(s, &it, "user:3", BP_READ_FULL));
    CHECK_OK(bp_iter_next(it, &ev));
    CHECK(ev->flags & BP_EVENT_SEALED); /* still sealing */
    CHECK(ev->payload_len == 3 && memcmp(ev->payload, "new", 3) == 0);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A checkpoint of another history of this store (a copy that went its own way), longer
 * than this store's segment: not a record of this store, ignored as before, not a loss. */
static void test_diverged_copy_checkpoint_is_no_loss(void) {
    const char *dir = t_dir("loss-diverged");
    char copy[1200], from[1300], to[1300];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    t_rmdir(copy);
    CHECK(populate(dir, 10));
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    CHECK_OK(bp_store_snapshot(s, NULL, copy));
    CHECK_OK(bp_append(s, NULL, "acct:a", "ledger", BP_KIND(1, 1), "s", 1));
    CHECK_OK(bp_store_close(s));
    CHECK_OK(t_open_try(&s, copy, &PLAIN));
    char big[400];
    memset(big, 'c', sizeof big);
    CHECK_OK(bp_append(s, NULL, "acct:a", "ledger", BP_KIND(1, 1), big, sizeof big));
    CHECK_OK(bp_store_close(s));
    snprintf(from, sizeof from, "%s/index.ckpt", copy);
    snprintf(to, sizeof to, "%s/index.ckpt", dir);
    CHECK_EQ(rename(from, to), 0);
    CHECK_OK(t_open_try(&s, dir, &RO));
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    CHECK(strcmp(r.checkpoint_note, "does not fit the segments") == 0);
    CHECK(r.loss_note[0] == '\0');
    CHECK_EQ(r.events, 11);
    CHECK_OK(bp_store_close(s));
    t_rmdir(copy);
    t_rmdir(dir);
}

/* An options struct of another size (built against other headers) is refused: no loss is
 * accepted through it. */
static void test_old_options_refuse(void) {
    const char *dir = t_dir("loss-v5");
    CHECK(populate(dir, 300));
    char p[1200];
    CHECK_EQ(unlink(seg(p, dir, count_segments(dir))), 0);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.struct_size = (uint32_t)offsetof(bp_open_options, accept_loss);
    o.segment_size = SEG_SIZE;
    o.accept_loss = true;
    bp_store *s;
    CHECK_FAILS(bp_store_open(&s, dir, &o), BP_EINVAL, "struct_size");
    o.accept_loss = false;
    o.struct_size = sizeof o;
    CHECK_FAILS(bp_store_open(&s, dir, &o), BP_ECORRUPT, "accept_loss");
    o.accept_loss = true;
    CHECK_OK(bp_store_open(&s, dir, &o));
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Nothing removed: a clean store and one with a crash-shaped unborn newest segment (no
 * checkpoint covers it) open without accept_loss, and report no loss. */
static void test_no_false_alarm(void) {
    const char *dir = t_dir("loss-none");
    CHECK(populate(dir, 300));
    bp_store *s;
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    CHECK(r.loss_note[0] == '\0');
    CHECK_EQ(r.events_lost, 0);
    CHECK_OK(bp_store_close(s));
    int n = count_segments(dir);
    char p[1200];
    FILE *f = fopen(seg(p, dir, n + 1), "wb"); /* created, header never written */
    CHECK(f != NULL);
    fclose(f);
    CHECK_OK(t_open_try(&s, dir, &PLAIN));
    bp_store_open_report_get(s, &r);
    CHECK(r.loss_note[0] == '\0');
    CHECK_EQ(r.events, 300);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_newest_segment_removed);
    RUN(test_newest_segment_emptied);
    RUN(test_middle_segment_removed);
    RUN(test_first_segment_removed);
    RUN(test_old_segments_new_checkpoint);
    RUN(test_store_file_removed);
    RUN(test_compacted_store);
    RUN(test_data_keys_removed);
    RUN(test_data_keys_and_segment_removed);
    RUN(test_diverged_copy_checkpoint_is_no_loss);
    RUN(test_old_options_refuse);
    RUN(test_no_false_alarm);
    T_DONE();
}
