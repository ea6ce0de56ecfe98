/* Damaged bytes on disk: each case builds a store with small segments (so that
 * sealed segments with SIDX footers exist), closes it, damages bytes with plain
 * POSIX I/O, reopens and checks the behaviour doc/FORMAT.md ("Recovery rules")
 * defines: torn tails and incomplete batches at the end of the newest segment
 * are cut to quarantine/, damage elsewhere is BP_ECORRUPT naming segment and
 * offset (or kept as a valid prefix with salvage), damaged caches (SIDX footer,
 * index.ckpt) are ignored and rebuilt from the frames. Never a crash, never
 * garbage: after every successful reopen the events are compared with the
 * receipts and bytes recorded when they were appended. */
#include "t.h"
#include "format/format.h"

#include <dirent.h>
#include <fcntl.h>
#include <zlib.h>

#define SEG_SIZE 4096
#define MAXEV 160
#define HDR 48 /* segment header size */

/* ------------------------------------------------------------ the model */

/* What was appended: receipts plus the inputs, by global_seq - 1. */
typedef struct model {
    int n;
    bp_receipt r[MAXEV];
    char entity[MAXEV][16];
    uint16_t kind[MAXEV];
    uint8_t payload[MAXEV][200];
    size_t len[MAXEV];
} model;

static model M;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: EXPECT failed: %s (last error: %s)\n", __FILE__, __LINE__,     \
                    #cond, bp_last_error());                                                       \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

static void gen(int i, const char *entity_fmt) {
    snprintf(M.entity[i], sizeof M.entity[i], entity_fmt, i % 3);
    M.kind[i] = (uint16_t)(0x1001 + i % 4);
    M.len[i] = 60 + (size_t)((i * 37) % 100);
    for (size_t k = 0; k < M.len[i]; k++)
        M.payload[i][k] = (uint8_t)(i * 131 + (int)k * 7 + 1);
}

static bp_status open_s(bp_store **s, const char *dir, bool ro, bool salvage) {
    *s = (bp_store *)&M; /* must be overwritten (NULL on error) */
    return t_open_try(s, dir,
                      &(t_open_opts){.segment_size = SEG_SIZE,
                                     .durability = BP_NO_SYNC, /* close syncs; no power cut */
                                     .read_only = ro,
                                     .salvage = salvage});
}

/* Append events M.n .. M.n+k-1 as single appends. */
static bool append_singles(bp_store *s, int k) {
    for (int j = 0; j < k; j++) {
        int i = M.n;
        EXPECT(i < MAXEV);
        gen(i, "c:%d");
        EXPECT(bp_append(s, &M.r[i], M.entity[i], "corr", M.kind[i], M.payload[i], M.len[i]) ==
               BP_OK);
        EXPECT(M.r[i].global_seq == (uint64_t)i + 1);
        M.n++;
    }
    return true;
}

/* Append events M.n .. M.n+k-1 as one atomic batch. */
static bool append_batch(bp_store *s, int k) {
    bp_batch_item items[8];
    EXPECT(k <= 8 && M.n + k <= MAXEV);
    for (int j = 0; j < k; j++) {
        int i = M.n + j;
        gen(i, "c:%d");
        items[j] = (bp_batch_item){M.entity[i], "corr", M.kind[i], M.payload[i], M.len[i], NULL};
    }
    EXPECT(bp_append_batch(s, &M.r[M.n], items, (size_t)k) == BP_OK);
    M.n += k;
    return true;
}

/* A fresh store with n single events, closed. */
static bool populate(const char *dir, int n) {
    memset(&M, 0, sizeof M);
    t_receipts(M.r, MAXEV);
    bp_store *s;
    EXPECT(open_s(&s, dir, false, false) == BP_OK);
    bool ok = append_singles(s, n);
    EXPECT(bp_store_close(s) == BP_OK);
    return ok;
}

/* The store holds exactly the events with global_seq 1..present, each equal to
 * what was appended; events present+1..M.n are unknown. Checks bp_get and a
 * full iteration. Event number `damaged` (0-based, -1 for none) is known to be
 * damaged on disk: with damaged_rc == BP_ECORRUPT every read of it must say so;
 * with BP_OK it is not looked at. */
static bool events_except(bp_store *s, int present, int damaged, bp_status damaged_rc) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    EXPECT(bp_store_stats_get(s, &st) == BP_OK);
    EXPECT(st.events == (uint64_t)present);
    for (int i = 0; i < M.n; i++) {
        bp_event *e = NULL;
        bp_status rc = bp_get(s, &e, &M.r[i].event_id);
        if (i >= present) {
            EXPECT(rc == BP_ENOTFOUND);
            EXPECT(e == NULL);
            continue;
        }
        if (i == damaged) {
            if (damaged_rc == BP_ECORRUPT) EXPECT(rc == BP_ECORRUPT && e == NULL);
            bp_event_free(e);
            continue;
        }
        EXPECT(rc == BP_OK);
        bool same = e->global_seq == M.r[i].global_seq && e->clock == M.r[i].clock &&
                    e->hlc == M.r[i].hlc && memcmp(e->event_hash.b, M.r[i].event_hash.b, 32) == 0 &&
                    strcmp(e->entity, M.entity[i]) == 0 && strcmp(e->scope, "corr") == 0 &&
                    e->kind == M.kind[i] && e->payload_len == M.len[i] &&
                    memcmp(e->payload, M.payload[i], M.len[i]) == 0;
        bp_event_free(e);
        if (!same) fprintf(stderr, "event seq %d differs from what was appended\n", i + 1);
        EXPECT(same);
    }
    bp_iter *it;
    bp_region all = BP_REGION_INIT;
    EXPECT(bp_query(s, &it, &all, BP_READ_FULL) == BP_OK);
    const bp_event *e;
    int k = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &e)) != BP_DONE) {
        if (k == damaged && damaged_rc == BP_ECORRUPT) {
            if (rc != BP_ECORRUPT) break;
        } else if (rc != BP_OK || k >= present) {
            break;
        } else if (k != damaged &&
                   (memcmp(e->event_hash.b, M.r[k].event_hash.b, 32) != 0 ||
                    e->payload_len != M.len[k] || memcmp(e->payload, M.payload[k], M.len[k]) != 0))
            break;
        k++;
    }
    bp_iter_free(it);
    EXPECT(rc == BP_DONE);
    EXPECT(k == present);
    return true;
}

static bool events_are(bp_store *s, int present) {
    return events_except(s, present, -1, BP_OK);
}

static bool verify_clean(bp_store *s, int events) {
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bp_status rc = bp_store_verify(s, &vr, NULL);
    if (rc) fprintf(stderr, "verify: %s\n", vr.first_problem);
    EXPECT(rc == BP_OK);
    EXPECT(vr.problems == 0);
    EXPECT(vr.events == (uint64_t)events);
    return true;
}

/* Reopen (writable) and check that the store holds exactly events 1..present. */
static bool reopen_holds(const char *dir, int present) {
    bp_store *s;
    EXPECT(open_s(&s, dir, false, false) == BP_OK);
    bool ok = events_are(s, present) && verify_clean(s, present);
    EXPECT(bp_store_close(s) == BP_OK);
    return ok;
}

/* ------------------------------------------------------------ files */

static const char *pathf(char *buf, const char *dir, const char *fmt, unsigned long long v) {
    char rel[256];
    snprintf(rel, sizeof rel, fmt, v);
    snprintf(buf, 1200, "%s/%s", dir, rel);
    return buf;
}
static const char *join(char *buf, const char *dir, const char *rel) {
    snprintf(buf, 1200, "%s/%s", dir, rel);
    return buf;
}
#define SEG(buf, dir, segno) pathf(buf, dir, "segments/%06llu.fbat", (unsigned long long)(segno))

static long long fsize(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static uint8_t *slurp(const char *path, size_t *n) {
    long long sz = fsize(path);
    if (sz < 0) return NULL;
    uint8_t *p = malloc((size_t)sz + 1);
    int fd = open(path, O_RDONLY);
    if (!p || fd < 0 || pread(fd, p, (size_t)sz, 0) != (ssize_t)sz) {
        free(p);
        if (fd >= 0) close(fd);
        return NULL;
    }
    close(fd);
    *n = (size_t)sz;
    return p;
}

/* Replace the file's contents with p[0..n). */
static bool spit(const char *path, const uint8_t *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = write(fd, p, n) == (ssize_t)n;
    return close(fd) == 0 && ok;
}

/* Flip one bit of the byte at off. */
static bool flip(const char *path, uint64_t off, int bit) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return false;
    uint8_t b;
    bool ok = pread(fd, &b, 1, (off_t)off) == 1;
    b ^= (uint8_t)(1u << (bit & 7));
    ok = ok && pwrite(fd, &b, 1, (off_t)off) == 1;
    return close(fd) == 0 && ok;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) {
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A segment file's layout, read straight from its bytes (doc/FORMAT.md). */
typedef struct segmap {
    uint64_t size;
    bool sealed;
    uint64_t foff; /* SIDX footer offset (sealed) */
    uint32_t flen;
    int n; /* frames */
    uint64_t off[64];
    uint32_t len[64]; /* prefix + body */
} segmap;

static bool map_segment(const char *path, segmap *m) {
    size_t n;
    uint8_t *d = slurp(path, &n);
    EXPECT(d);
    memset(m, 0, sizeof *m);
    m->size = n;
    uint64_t end = n;
    if (n >= HDR + 16 && memcmp(d + n - 4, "SEAL", 4) == 0) {
        m->sealed = true;
        m->foff = be64(d + n - 16);
        m->flen = be32(d + n - 8);
        end = m->foff;
    }
    uint64_t pos = HDR;
    while (pos + 8 <= end && m->n < 64) {
        uint32_t l = be32(d + pos);
        if (!l || pos + 8 + l > end) break; /* zeros: what the writer fills ahead */
        m->off[m->n] = pos;
        m->len[m->n] = 8 + l;
        m->n++;
        pos += 8 + l;
    }
    free(d);
    return true;
}

static int count_segments(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/segments", dir);
    DIR *d = opendir(p);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".fbat") == 0) n++;
    }
    closedir(d);
    return n;
}

/* Remove DIR/index.ckpt, DIR/entities.ckpt and everything in DIR/quarantine. */
static void reset_caches(const char *dir) {
    char p[1200];
    snprintf(p, sizeof p, "%s/index.ckpt", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/entities.ckpt", dir); /* (it stands for the footers) */
    unlink(p);
    snprintf(p, sizeof p, "%s/quarantine", dir);
    DIR *d = opendir(p);
    if (!d) return;
    struct dirent *e;
    char f[1500];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(f, sizeof f, "%s/%s", p, e->d_name);
        unlink(f);
    }
    closedir(d);
}

/* Remove segment files numbered above keep (made by appends after a cut). */
static void drop_segments_after(const char *dir, int keep) {
    char p[1200];
    for (int i = keep + 1; exists(SEG(p, dir, i)); i++)
        unlink(p);
}

/* True when some file in DIR/quarantine holds exactly p[0..n). */
static bool quarantine_holds(const char *dir, const uint8_t *p, size_t n) {
    char q[1200], f[1500];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    DIR *d = opendir(q);
    if (!d) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(f, sizeof f, "%s/%s", q, e->d_name);
        size_t fn;
        uint8_t *fb = slurp(f, &fn);
        found = fb && fn == n && memcmp(fb, p, n) == 0;
        free(fb);
    }
    closedir(d);
    return found;
}

/* ------------------------------------------------------------ cases */

/* A flipped bit in a frame of a sealed (non-newest) segment. Open trusts the
 * checkpoint and the SIDX footer for such a segment and does not read its
 * frames (FORMAT.md, recovery rule 1), so the damage surfaces when the event is
 * read and in verify. When open has to scan the segment (no checkpoint, footer
 * unusable) it refuses with BP_ECORRUPT naming segment and offset; salvage
 * keeps the valid prefix. */
static void test_sealed_segment_frame_flip(void) {
    const char *dir = t_dir("corr-sealed");
    CHECK(populate(dir, 80));
    CHECK(count_segments(dir) >= 4);
    char seg1[1200], p[1200];
    SEG(seg1, dir, 1);
    segmap m;
    CHECK(map_segment(seg1, &m));
    CHECK(m.sealed);
    CHECK(m.n > 8);
    const int k = 5; /* the frame of global_seq 6 */
    uint64_t bad = m.off[k];
    CHECK(flip(seg1, bad + m.len[k] - 5, 3)); /* inside the payload */
    char where[64];
    snprintf(where, sizeof where, "segment 000001 offset %llu", (unsigned long long)bad);

    /* fast paths: footer (no checkpoint), then checkpoint (written by that close) */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) reset_caches(dir);
        bp_store *s;
        CHECK_OK(open_s(&s, dir, false, false));
        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.checkpoint_used, pass == 1);
        CHECK_EQ(rep.events, 80);
        bp_event *e = NULL;
        CHECK_EQ(bp_get(s, &e, &M.r[k].event_id), BP_ECORRUPT);
        CHECK(e == NULL);
        CHECK(strstr(bp_last_error(), where) != NULL);
        CHECK(events_except(s, 80, k, BP_ECORRUPT));
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
        CHECK(vr.problems > 0);
        CHECK(strstr(vr.first_problem, where) != NULL);
        CHECK_OK(bp_store_close(s));
    }

    /* the segment must be scanned: no checkpoint, footer unusable */
    reset_caches(dir);
    CHECK(flip(seg1, m.foff + m.flen - 1, 0)); /* footer CRC */
    long long size1 = fsize(seg1);
    bp_store *s;
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(s == NULL);
    CHECK(strstr(bp_last_error(), dir) != NULL);
    CHECK(strstr(bp_last_error(), where) != NULL);
    CHECK_EQ(fsize(seg1), size1); /* refusing changes nothing */
    CHECK(!exists(pathf(p, dir, "quarantine/000001.fbat.at-%llu.cut", bad)));
    CHECK_EQ(open_s(&s, dir, true, false), BP_ECORRUPT); /* read-only too */
    CHECK(strstr(bp_last_error(), where) != NULL);

    /* salvage keeps the valid prefix and moves the rest aside */
    int nsegs = count_segments(dir);
    CHECK_OK(open_s(&s, dir, false, true));
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK_EQ(rep.events, k);
    CHECK_EQ(rep.bytes_cut, (uint64_t)size1 - bad);
    /* and says what it moved: every event after the damaged frame (which has no seq to count),
     * in that segment and the ones set aside */
    CHECK_EQ(rep.events_lost, 80 - k - 1);
    CHECK_EQ(rep.first_lost_seq, k + 2);
    CHECK_EQ(rep.segments_lost, nsegs - 1);
    CHECK(strstr(rep.loss_note, "salvage: segment 000001") != NULL);
    CHECK(events_are(s, k));
    CHECK(verify_clean(s, k));
    CHECK_EQ(fsize(seg1), (long long)bad);
    CHECK_EQ(fsize(pathf(p, dir, "quarantine/000001.fbat.at-%llu.cut", bad)),
             (long long)(size1 - (long long)bad));
    for (int i = 2; i <= nsegs; i++) {
        CHECK(exists(pathf(p, dir, "quarantine/%06llu.fbat.salvaged", (unsigned long long)i)));
        CHECK(!exists(SEG(p, dir, i)));
    }
    /* the store carries on from the prefix */
    M.n = k;
    CHECK(append_singles(s, 3));
    CHECK_OK(bp_store_close(s));
    CHECK(reopen_holds(dir, k + 3));
    reset_caches(dir);
    CHECK(reopen_holds(dir, k + 3));
    t_rmdir(dir);
}

/* A flipped bit in the last frame of the newest segment, as a torn write leaves
 * it after a crash (so no checkpoint covers it): open cuts it to quarantine. */
static void test_torn_tail_flip(void) {
    const char *dir = t_dir("corr-torn");
    CHECK(populate(dir, 80));
    int nsegs = count_segments(dir);
    char segn[1200], q[1200];
    SEG(segn, dir, nsegs);
    segmap m;
    CHECK(map_segment(segn, &m));
    CHECK(!m.sealed);
    CHECK(m.n >= 2);
    uint64_t last = m.off[m.n - 1];
    CHECK_EQ(last + m.len[m.n - 1], m.size);
    CHECK(flip(segn, last + m.len[m.n - 1] / 2, 5));
    size_t n;
    uint8_t *damaged = slurp(segn, &n);
    CHECK(damaged);

    /* with the checkpoint of the clean close, open trusts the covered bytes: the
     * damage shows when the event is read (see also test_damage_after_open) */
    bp_store *s;
    CHECK_OK(open_s(&s, dir, false, false));
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    CHECK_EQ(rep.bytes_cut, 0);
    CHECK(events_except(s, 80, 79, BP_ECORRUPT));
    CHECK_OK(bp_store_close(s));

    reset_caches(dir);
    CHECK_OK(open_s(&s, dir, false, false));
    bp_store_open_report_get(s, &rep);
    CHECK(!rep.checkpoint_used);
    CHECK_EQ(rep.bytes_cut, m.len[m.n - 1]);
    CHECK_EQ(rep.frames_cut, 0);
    CHECK_EQ(rep.events, 79);
    CHECK(events_are(s, 79));
    CHECK(verify_clean(s, 79));
    CHECK_EQ(fsize(segn), (long long)last);
    /* the cut bytes are kept, byte for byte */
    size_t qn = 0;
    char qname[200];
    snprintf(qname, sizeof qname, "quarantine/%06d.fbat.at-%llu.cut", nsegs,
             (unsigned long long)last);
    uint8_t *qb = slurp(join(q, dir, qname), &qn);
    CHECK(qb);
    bool same = qn == m.len[m.n - 1] && memcmp(qb, damaged + last, qn) == 0;
    free(qb);
    free(damaged);
    CHECK(same);
    /* the store carries on: the cut event's entity continues from its predecessor */
    M.n = 79;
    CHECK(append_singles(s, 1));
    CHECK_EQ(M.r[79].global_seq, 80);
    CHECK_OK(bp_store_close(s));
    CHECK(reopen_holds(dir, 80));
    t_rmdir(dir);
}

/* The newest segment cut in the middle of its last frame (inside the prefix,
 * inside the body, one byte short). */
static void test_truncated_tail(void) {
    const char *dir = t_dir("corr-trunc");
    CHECK(populate(dir, 80));
    int nsegs = count_segments(dir);
    char segn[1200], q[1200], qname[200];
    SEG(segn, dir, nsegs);
    segmap m;
    CHECK(map_segment(segn, &m));
    uint64_t last = m.off[m.n - 1];
    uint32_t flen = m.len[m.n - 1];
    size_t n;
    uint8_t *pristine = slurp(segn, &n);
    CHECK(pristine);
    snprintf(qname, sizeof qname, "quarantine/%06d.fbat.at-%llu.cut", nsegs,
             (unsigned long long)last);
    uint64_t cuts[3] = {last + 3, last + flen / 2, last + flen - 1};
    for (int c = 0; c < 3; c++) {
        CHECK(spit(segn, pristine, n));
        reset_caches(dir); /* a crash leaves no checkpoint for the tail */
        CHECK_EQ(truncate(segn, (off_t)cuts[c]), 0);
        bp_store *s;
        CHECK_OK(open_s(&s, dir, false, false));
        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.bytes_cut, cuts[c] - last);
        CHECK_EQ(rep.frames_cut, 0);
        CHECK_EQ(rep.events, 79);
        CHECK(events_are(s, 79));
        CHECK(verify_clean(s, 79));
        CHECK_OK(bp_store_close(s));
        CHECK_EQ(fsize(segn), (long long)last);
        CHECK_EQ(fsize(join(q, dir, qname)), (long long)(cuts[c] - last));
        CHECK(reopen_holds(dir, 79));
    }
    /* read-only: the tail is ignored in memory, nothing on disk changes */
    CHECK(spit(segn, pristine, n));
    reset_caches(dir);
    CHECK_EQ(truncate(segn, (off_t)(last + flen / 2)), 0);
    bp_store *s;
    CHECK_OK(open_s(&s, dir, true, false));
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK_EQ(rep.bytes_cut, flen / 2);
    CHECK(events_are(s, 79));
    CHECK(verify_clean(s, 79));
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(fsize(segn), (long long)(last + flen / 2));
    CHECK(!exists(join(q, dir, qname)));

    /* the tail cut after a clean close: the checkpoint covers bytes that are
     * gone. Open must not crash or trust it; it refuses with BP_ECORRUPT naming
     * the segment file and saying how to accept the loss (FORMAT.md). */
    CHECK(spit(segn, pristine, n));
    reset_caches(dir);
    CHECK(reopen_holds(dir, 80)); /* writes a checkpoint covering event 80 */
    CHECK_EQ(truncate(segn, (off_t)(last + flen / 2)), 0);
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(s == NULL);
    char segname[32];
    snprintf(segname, sizeof segname, "segment %06d", nsegs);
    CHECK(strstr(bp_last_error(), segname) != NULL);
    CHECK(strstr(bp_last_error(), "acknowledged events lost") != NULL);
    CHECK(strstr(bp_last_error(), "accept_loss") != NULL);
    CHECK_EQ(open_s(&s, dir, false, true), BP_ECORRUPT); /* salvage does not change that */
    CHECK_EQ(fsize(segn), (long long)(last + flen / 2)); /* the refusal wrote nothing */
    /* doing what the message says accepts the loss: the torn tail is cut */
    bp_open_options ao = BP_OPEN_OPTIONS_INIT;
    ao.no_open_event = true;
    ao.segment_size = SEG_SIZE;
    ao.accept_loss = true;
    CHECK_OK(bp_store_open(&s, dir, &ao));
    bp_store_open_report_get(s, &rep);
    CHECK_EQ(rep.events_lost, 1);
    CHECK_EQ(rep.first_lost_seq, 80);
    CHECK_EQ(rep.segments_lost, 1);
    /* the 79 left, then the open event that records the loss (written even with
     * no_open_event: accepting a loss is never silent) */
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, 80);
    for (int i = 0; i < 79; i++) {
        bp_event *e = NULL;
        CHECK_OK(bp_get(s, &e, &M.r[i].event_id));
        CHECK_EQ(e->global_seq, (uint64_t)i + 1);
        bp_event_free(e);
    }
    CHECK(verify_clean(s, 80));
    bp_iter *it = NULL;
    const bp_event *ev, *lifecycle = NULL;
    CHECK_OK(bp_stream(s, &it, "batpak:store", 0));
    while (bp_iter_next(it, &ev) == BP_OK)
        lifecycle = ev;
    CHECK(lifecycle != NULL);
    CHECK_EQ(lifecycle->global_seq, 80);
    CHECK_EQ(lifecycle->kind, BP_KIND_SYSTEM_OPEN_COMPLETED);
    CHECK(memmem(lifecycle->payload, lifecycle->payload_len, "events_lost", 11) != NULL);
    bp_iter_free(it);
    CHECK_OK(bp_store_close(s));
    free(pristine);
    t_rmdir(dir);
}

/* A flipped bit in the SIDX footer (or the trailer) of a sealed segment. The
 * footer is a cache: a damaged one is not trusted, open rebuilds that segment
 * from its frames (FORMAT.md "SIDX footer"); a read-only open leaves the
 * damage (verify reports it), a writable one rewrites the footer. A damaged trailer in front of an
 * intact footer is found by searching for the footer: every open succeeds, a read-only one leaves
 * the damage (verify reports it), a writable one repairs the trailer. */
static void test_sidx_footer_flip(void) {
    const char *dir = t_dir("corr-sidx");
    CHECK(populate(dir, 80));
    reset_caches(dir);
    int nsegs = count_segments(dir);
    CHECK(nsegs >= 4);
    int sealed = nsegs - 1;
    char seg2[1200];
    SEG(seg2, dir, 2);
    segmap m2, mn;
    CHECK(map_segment(seg2, &m2));
    CHECK(m2.sealed);
    char segn[1200];
    CHECK(map_segment(SEG(segn, dir, nsegs), &mn));
    bp_store *s;
    CHECK_OK(open_s(&s, dir, true, false)); /* baseline: every footer used */
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK_EQ(rep.footers_used, sealed);
    CHECK_EQ(rep.frames_scanned, mn.n);
    CHECK_OK(bp_store_close(s));

    /* magic, version, body length, index block, CRC */
    uint64_t at[5] = {m2.foff, m2.foff + 5, m2.foff + 10, m2.foff + 12 + m2.flen / 2,
                      m2.foff + m2.flen - 2};
    size_t plen2;
    uint8_t *orig = slurp(seg2, &plen2);
    CHECK(orig);
    for (int i = 0; i < 5; i++) {
        CHECK(flip(seg2, at[i], i));
        for (int ro = 1; ro >= 0; ro--) {
            CHECK_OK(open_s(&s, dir, ro, false));
            bp_store_open_report_get(s, &rep);
            CHECK_EQ(rep.footers_used, sealed - 1);
            CHECK_EQ(rep.frames_scanned, m2.n + mn.n);
            CHECK_EQ(rep.events, 80);
            CHECK_EQ(rep.bytes_cut, 0);
            CHECK(events_are(s, 80));
            bp_verify_report vr = BP_VERIFY_REPORT_INIT;
            if (ro) { /* not repaired: verify reports the damaged footer */
                CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
                CHECK_EQ(vr.problems, 1);
                CHECK_EQ(vr.events, 80);
                CHECK(strstr(vr.first_problem, "segment 000002") != NULL);
                CHECK(strstr(vr.first_problem, "SIDX") != NULL);
            } else { /* repaired during open */
                CHECK(verify_clean(s, 80));
            }
            CHECK_OK(bp_store_close(s));
            reset_caches(dir);
        }
        /* the writable open rewrote the footer: the file is as it was */
        size_t n2;
        uint8_t *now = slurp(seg2, &n2);
        bool same = now && n2 == plen2 && memcmp(now, orig, plen2) == 0;
        free(now);
        CHECK(same);
        CHECK_OK(open_s(&s, dir, true, false));
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.footers_used, sealed);
        CHECK(verify_clean(s, 80));
        CHECK_OK(bp_store_close(s));
    }
    free(orig);
    CHECK(reopen_holds(dir, 80));
    reset_caches(dir);

    /* trailer: "SEAL", footer length, footer offset */
    uint64_t tr[3] = {m2.size - 1, m2.size - 6, m2.size - 9};
    size_t plen;
    uint8_t *pristine = slurp(seg2, &plen);
    CHECK(pristine);
    for (int i = 0; i < 3; i++) {
        CHECK(flip(seg2, tr[i], 1));
        reset_caches(dir);
        CHECK_OK(open_s(&s, dir, true, false)); /* read-only: found, not repaired */
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.footers_used, sealed);
        CHECK(events_are(s, 80));
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
        CHECK(strstr(vr.first_problem, "segment 000002") != NULL);
        CHECK_OK(bp_store_close(s));
        CHECK_OK(open_s(&s, dir, false, false)); /* writable: repaired */
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.footers_used, sealed);
        CHECK(events_are(s, 80));
        CHECK(verify_clean(s, 80));
        CHECK_OK(bp_store_close(s));
        size_t n2;
        uint8_t *now = slurp(seg2, &n2);
        bool same = now && n2 == plen && memcmp(now, pristine, plen) == 0;
        free(now);
        CHECK(same);
    }
    free(pristine);
    /* a damaged trailer and a damaged footer: the older segment is corrupt */
    CHECK(flip(seg2, tr[0], 1));
    CHECK(flip(seg2, m2.foff + m2.flen - 2, 3));
    reset_caches(dir);
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(s == NULL);
    CHECK(strstr(bp_last_error(), "segment 000002") != NULL);
    CHECK(flip(seg2, tr[0], 1));
    CHECK(flip(seg2, m2.foff + m2.flen - 2, 3));
    reset_caches(dir);
    CHECK_EQ(fsize(seg2), (long long)m2.size);
    CHECK(reopen_holds(dir, 80));
    t_rmdir(dir);
}

/* A flipped bit in index.ckpt: ignored (note says why), rebuilt from segments. */
static void test_checkpoint_flip(void) {
    const char *dir = t_dir("corr-ckpt");
    CHECK(populate(dir, 80));
    int nsegs = count_segments(dir);
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/index.ckpt", dir);
    size_t n;
    uint8_t *pristine = slurp(ck, &n);
    CHECK(pristine);
    CHECK(n > 200);
    /* magic, version, covered offset, index block, CRC */
    uint64_t at[5] = {1, 5, 33, n / 2, n - 1};
    const char *note[5] = {"CRC or structure mismatch", "unknown version",
                           "CRC or structure mismatch", "CRC or structure mismatch",
                           "CRC or structure mismatch"};
    for (int i = 0; i < 5; i++) {
        CHECK(spit(ck, pristine, n));
        CHECK(flip(ck, at[i], 2));
        bp_store *s;
        CHECK_OK(open_s(&s, dir, false, false));
        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &rep);
        CHECK(!rep.checkpoint_used);
        CHECK(strcmp(rep.checkpoint_note, note[i]) == 0);
        CHECK_EQ(rep.footers_used, nsegs - 1);
        CHECK(rep.frames_scanned > 0);
        CHECK_EQ(rep.events, 80);
        CHECK(events_are(s, 80));
        CHECK(verify_clean(s, 80));
        CHECK_OK(bp_store_close(s));
    }
    free(pristine);
    /* the close rewrote a good checkpoint */
    bp_store *s;
    CHECK_OK(open_s(&s, dir, true, false));
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.checkpoint_used);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* The STORE identity file: bad magic, CRC or size is BP_ECORRUPT naming the
 * file; an unknown version is BP_EVERSION naming both versions (checked first,
 * so a flipped bit in the version field reads as an unknown version). */
static void test_store_file_damage(void) {
    const char *dir = t_dir("corr-store");
    CHECK(populate(dir, 5));
    char sp[1200];
    snprintf(sp, sizeof sp, "%s/STORE", dir);
    size_t n;
    uint8_t *pristine = slurp(sp, &n);
    CHECK(pristine);
    CHECK_EQ(n, 48);
    uint64_t at[6] = {0, 7, 13, 20, 35, 46}; /* magic, magic NUL, reserved, uuid, time, CRC */
    bp_store *s;
    for (int i = 0; i < 6; i++) {
        CHECK(spit(sp, pristine, n));
        CHECK(flip(sp, at[i], i));
        CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
        CHECK(s == NULL);
        CHECK(strstr(bp_last_error(), sp) != NULL);
        CHECK_EQ(open_s(&s, dir, true, false), BP_ECORRUPT);
    }
    /* a flipped bit in the version field */
    CHECK(spit(sp, pristine, n));
    CHECK(flip(sp, 11, 1));
    CHECK_EQ(open_s(&s, dir, false, false), BP_EVERSION);
    CHECK(strstr(bp_last_error(), sp) != NULL);
    /* a well-formed STORE of format version 2 */
    uint8_t v2[48];
    memcpy(v2, pristine, 48);
    put_be32(v2 + 8, 2);
    put_be32(v2 + 44, (uint32_t)crc32(0L, v2, 44));
    CHECK(spit(sp, v2, 48));
    CHECK_EQ(open_s(&s, dir, false, false), BP_EVERSION);
    CHECK(s == NULL);
    CHECK(strstr(bp_last_error(), sp) != NULL);
    CHECK(strstr(bp_last_error(), "version 2") != NULL);
    CHECK(strstr(bp_last_error(), "version 1") != NULL);
    /* short, long, empty */
    CHECK(spit(sp, pristine, 47));
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), sp) != NULL);
    uint8_t longer[49];
    memcpy(longer, pristine, 48);
    longer[48] = 0;
    CHECK(spit(sp, longer, 49));
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(spit(sp, pristine, 0));
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    /* missing while segments exist: not a fresh directory */
    CHECK_EQ(unlink(sp), 0);
    CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), sp) != NULL);
    CHECK(!exists(sp)); /* no new identity was made up */
    /* restored, the store is whole */
    CHECK(spit(sp, pristine, n));
    free(pristine);
    CHECK(reopen_holds(dir, 5));
    t_rmdir(dir);
}

/* An atomic batch whose last frames are missing or damaged at the end of the
 * newest segment: the whole batch is cut, none of its events is visible. */
static void test_incomplete_batch(void) {
    const char *dir = t_dir("corr-batch");
    memset(&M, 0, sizeof M);
    t_receipts(M.r, MAXEV);
    bp_store *s;
    CHECK_OK(open_s(&s, dir, false, false));
    CHECK(append_singles(s, 10));
    CHECK(append_batch(s, 4));
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(M.r[10].global_seq, 11);
    int nsegs = count_segments(dir);
    char segn[1200], q[1200], qname[200];
    SEG(segn, dir, nsegs);
    segmap m;
    CHECK(map_segment(segn, &m));
    CHECK(m.n >= 4);
    int b = m.n - 4; /* the batch: frames b..b+3 */
    uint64_t b0 = m.off[b];
    CHECK_EQ(m.off[b + 3] + m.len[b + 3], m.size);
    size_t n;
    uint8_t *pristine = slurp(segn, &n);
    CHECK(pristine);
    snprintf(qname, sizeof qname, "quarantine/%06d.fbat.at-%llu.cut", nsegs,
             (unsigned long long)b0);
    static model saved;
    saved = M;

    /* 0: two complete frames of four; 1: and half of the third; 2: the last
     * frame damaged */
    for (int c = 0; c < 3; c++) {
        M = saved;
        CHECK(spit(segn, pristine, n));
        drop_segments_after(dir, nsegs);
        reset_caches(dir);
        uint64_t end = m.size;
        int cut_frames = 0;
        if (c == 0) {
            end = m.off[b + 2];
            cut_frames = 2;
        } else if (c == 1) {
            end = m.off[b + 2] + m.len[b + 2] / 2;
            cut_frames = 2;
        } else {
            CHECK(flip(segn, m.off[b + 3] + 20, 4));
            cut_frames = 3;
        }
        if (end != m.size) CHECK_EQ(truncate(segn, (off_t)end), 0);
        CHECK_OK(open_s(&s, dir, false, false));
        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.frames_cut, cut_frames);
        CHECK_EQ(rep.bytes_cut, end - b0);
        CHECK_EQ(rep.events, 10);
        CHECK(events_are(s, 10)); /* the batch's four events are all unknown */
        CHECK(verify_clean(s, 10));
        CHECK_EQ(fsize(segn), (long long)b0);
        CHECK_EQ(fsize(join(q, dir, qname)), (long long)(end - b0));
        /* the entities' clocks continue from before the batch */
        M.n = 10;
        CHECK(append_singles(s, 3));
        for (int i = 10; i < 13; i++)
            CHECK_EQ(M.r[i].clock, (uint64_t)(i / 3 + 1));
        CHECK_OK(bp_store_close(s));
        CHECK(reopen_holds(dir, 13));
    }
    free(pristine);
    t_rmdir(dir);
}

/* Every 7th byte of a small store's newest segment, one bit at a time, on a
 * fresh copy each time, with no checkpoint (so open parses the whole newest
 * segment): open returns BP_OK (the damage was in the last frame and was cut)
 * or BP_ECORRUPT (damage followed by valid frames, or in the header); never a
 * crash, never garbage. */
static void test_bitflip_sweep_newest(void) {
    const char *dir = t_dir("corr-sweep");
    CHECK(populate(dir, 40));
    int nsegs = count_segments(dir);
    CHECK(nsegs >= 2);
    char segn[1200], want[64];
    SEG(segn, dir, nsegs);
    segmap m;
    CHECK(map_segment(segn, &m));
    CHECK(m.n >= 3);
    uint64_t last = m.off[m.n - 1];
    int before = M.n - m.n; /* events in the sealed segments */
    size_t n;
    uint8_t *pristine = slurp(segn, &n);
    CHECK(pristine);
    snprintf(want, sizeof want, "segment %06d", nsegs);
    int ok = 0, corrupt = 0;
    for (uint64_t pos = 0; pos < n; pos += 7) {
        CHECK(spit(segn, pristine, n));
        reset_caches(dir);
        CHECK(flip(segn, pos, (int)(pos % 8)));
        bp_store *s;
        bp_status rc = open_s(&s, dir, false, false);
        if (rc != BP_OK) {
            if (rc != BP_ECORRUPT && !(rc == BP_EVERSION && pos >= 4 && pos < 6))
                fprintf(stderr, "flip at %llu: %d %s\n", (unsigned long long)pos, rc,
                        bp_last_error());
            CHECK(rc == BP_ECORRUPT || (rc == BP_EVERSION && pos >= 4 && pos < 6));
            CHECK(s == NULL);
            CHECK(strstr(bp_last_error(), want) != NULL || strstr(bp_last_error(), segn) != NULL);
            CHECK(pos < last); /* damage in the last frame is always a torn tail */
            corrupt++;
            continue;
        }
        ok++;
        CHECK(pos >= last);
        bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(s, &rep);
        CHECK_EQ(rep.events, M.n - 1);
        CHECK_EQ(rep.bytes_cut, n - last);
        CHECK(events_are(s, M.n - 1));
        CHECK(verify_clean(s, M.n - 1));
        CHECK_OK(bp_store_close(s));
    }
    CHECK(ok > 0 && corrupt > 0);
    CHECK(before > 0);
    CHECK(spit(segn, pristine, n));
    reset_caches(dir);
    free(pristine);
    CHECK(reopen_holds(dir, M.n));
    t_rmdir(dir);
}

/* Every 7th byte of a sealed segment, after a clean close (read-only opens, in
 * place, each flip undone): open reads a sealed segment's header and footer only,
 * so damage to the header fails the open, and damage elsewhere must surface on
 * read: every bp_get returns the appended event unchanged or BP_ECORRUPT; verify
 * never passes a damaged segment. */
static void test_bitflip_sweep_sealed(void) {
    const char *dir = t_dir("corr-sweep2");
    CHECK(populate(dir, 40));
    char seg1[1200];
    SEG(seg1, dir, 1);
    segmap m;
    CHECK(map_segment(seg1, &m));
    CHECK(m.sealed);
    int unread = 0;
    for (uint64_t pos = 0; pos < m.size; pos += 7) {
        CHECK(flip(seg1, pos, (int)(pos % 8)));
        bp_store *s;
        bp_status orc = open_s(&s, dir, true, false);
        if (pos < HDR) { /* the segment header: checked by every open */
            CHECK(orc == BP_ECORRUPT || (orc == BP_EVERSION && pos >= 4 && pos < 6));
            CHECK(strstr(bp_last_error(), "000001.fbat") != NULL);
            CHECK(flip(seg1, pos, (int)(pos % 8)));
            continue;
        }
        CHECK_OK(orc);
        int bad = 0;
        for (int i = 0; i < M.n; i++) {
            bp_event *e = NULL;
            bp_status rc = bp_get(s, &e, &M.r[i].event_id);
            if (rc == BP_ECORRUPT) {
                CHECK(e == NULL);
                CHECK(strstr(bp_last_error(), "segment 000001 offset") != NULL);
                bad++;
                continue;
            }
            CHECK_OK(rc);
            bool same = memcmp(e->event_hash.b, M.r[i].event_hash.b, 32) == 0 &&
                        e->payload_len == M.len[i] &&
                        memcmp(e->payload, M.payload[i], M.len[i]) == 0 &&
                        strcmp(e->entity, M.entity[i]) == 0 && e->global_seq == (uint64_t)i + 1;
            bp_event_free(e);
            CHECK(same);
        }
        CHECK(bad <= 1);
        bool in_frame = pos >= HDR && pos < m.foff;
        CHECK_EQ(bad, in_frame); /* a frame's damage is found when it is read */
        if (!in_frame) unread++;
        bp_verify_report vr = BP_VERIFY_REPORT_INIT;
        CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
        CHECK(strstr(vr.first_problem, "segment 000001") != NULL);
        CHECK_OK(bp_store_close(s));
        CHECK(flip(seg1, pos, (int)(pos % 8)));
    }
    CHECK(unread > 0);
    CHECK(reopen_holds(dir, M.n));
    t_rmdir(dir);
}

/* Damage made while the store is open: reads report BP_ECORRUPT, never garbage,
 * and an iterator can be advanced past the damaged event. */
static void test_damage_after_open(void) {
    const char *dir = t_dir("corr-live");
    memset(&M, 0, sizeof M);
    t_receipts(M.r, MAXEV);
    bp_store *s;
    CHECK_OK(open_s(&s, dir, false, false));
    CHECK(append_singles(s, 60));
    CHECK_OK(bp_store_sync(s));
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(st.segments >= 3);
    char seg1[1200], segn[1200];
    SEG(seg1, dir, 1);
    SEG(segn, dir, st.segments);
    segmap m1, mn;
    CHECK(map_segment(seg1, &m1));
    CHECK(map_segment(segn, &mn));
    CHECK(m1.sealed && !mn.sealed);
    const int k = 6; /* global_seq 7: entity c:0, clock 3 */
    CHECK(flip(seg1, m1.off[k] + 40, 6));
    char where[64];
    snprintf(where, sizeof where, "segment 000001 offset %llu", (unsigned long long)m1.off[k]);
    bp_event *e = NULL;
    CHECK_EQ(bp_get(s, &e, &M.r[k].event_id), BP_ECORRUPT);
    CHECK(e == NULL);
    CHECK(strstr(bp_last_error(), where) != NULL);
    /* iteration: the damaged event is an error, the iterator carries on past it */
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "c:0", BP_READ_FULL));
    const bp_event *ev;
    int got = 0, errors = 0;
    uint64_t clock = 0;
    bp_status rc;
    while ((rc = bp_iter_next(it, &ev)) != BP_DONE) {
        clock++;
        if (rc == BP_ECORRUPT) {
            CHECK(ev == NULL);
            CHECK_EQ(bp_iter_position(it), k + 1);
            errors++;
            continue;
        }
        CHECK_OK(rc);
        CHECK_EQ(ev->clock, clock);
        int i = (int)ev->global_seq - 1;
        CHECK(memcmp(ev->event_hash.b, M.r[i].event_hash.b, 32) == 0);
        CHECK(ev->payload_len == M.len[i] && memcmp(ev->payload, M.payload[i], M.len[i]) == 0);
        got++;
    }
    bp_iter_free(it);
    CHECK_EQ(errors, 1);
    CHECK_EQ(got, 19);
    /* index-only reads need no disk */
    CHECK_OK(bp_stream(s, &it, "c:0", BP_READ_INDEX_ONLY));
    got = 0;
    while (bp_iter_next(it, &ev) == BP_OK)
        got++;
    bp_iter_free(it);
    CHECK_EQ(got, 20);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
    CHECK(strstr(vr.first_problem, where) != NULL);
    CHECK(flip(seg1, m1.off[k] + 40, 6)); /* undo */
    CHECK_OK(bp_get(s, &e, &M.r[k].event_id));
    bp_event_free(e);

    /* the newest segment: a flipped bit, then a truncation under the reader */
    int l = M.n - 1;
    uint64_t lo = mn.off[mn.n - 1];
    CHECK(flip(segn, lo + mn.len[mn.n - 1] - 3, 0));
    CHECK_EQ(bp_get(s, &e, &M.r[l].event_id), BP_ECORRUPT);
    CHECK(e == NULL);
    CHECK(flip(segn, lo + mn.len[mn.n - 1] - 3, 0));
    size_t n;
    uint8_t *pristine = slurp(segn, &n);
    CHECK(pristine);
    CHECK_EQ(truncate(segn, (off_t)(lo + 10)), 0);
    CHECK_EQ(bp_get(s, &e, &M.r[l].event_id), BP_ECORRUPT);
    CHECK(e == NULL);
    CHECK_OK(bp_get(s, &e, &M.r[l - 1].event_id));
    bp_event_free(e);
    CHECK(spit(segn, pristine, n)); /* restore before the close writes its checkpoint */
    free(pristine);
    CHECK(events_are(s, M.n));
    CHECK(verify_clean(s, M.n));
    CHECK_OK(bp_store_close(s));
    CHECK(reopen_holds(dir, M.n));
    t_rmdir(dir);
}

/* A frame altered together with its CRC (a deliberate edit, not a random flip):
 * open checks CRCs and chains, not event hashes (FORMAT.md, recovery rule 2),
 * so it opens; bp_store_verify recomputes the hash and reports the event. */
static void test_crc_valid_tamper(void) {
    const char *dir = t_dir("corr-tamper");
    CHECK(populate(dir, 40));
    char seg1[1200];
    SEG(seg1, dir, 1);
    segmap m;
    CHECK(map_segment(seg1, &m));
    const int k = 2;
    size_t n;
    uint8_t *d = slurp(seg1, &n);
    CHECK(d);
    uint8_t *fr = d + m.off[k];
    fr[m.len[k] - 1] ^= 0x01; /* last payload byte */
    put_be32(fr + 4, (uint32_t)crc32(0L, fr + 8, m.len[k] - 8));
    CHECK(spit(seg1, d, n));
    free(d);
    reset_caches(dir);
    char where[80];
    snprintf(where, sizeof where, "segment 000001 offset %llu: event hash mismatch",
             (unsigned long long)m.off[k]);
    bp_store *s;
    CHECK_OK(open_s(&s, dir, false, false));
    CHECK(events_except(s, 40, k, BP_OK)); /* reads do not recompute hashes */
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_EQ(bp_store_verify(s, &vr, NULL), BP_ECORRUPT);
    CHECK_EQ(vr.problems, 1);
    CHECK(strstr(vr.first_problem, where) != NULL);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Frames with a right CRC but the wrong content for their place, made by re-encoding one
 * frame of segment 1 (the rest of the segment is laid out again after it). Recovery must
 * refuse each with BP_ECORRUPT naming segment, offset and reason, and salvage must keep
 * exactly the events before it. */
typedef enum { T_SEQ, T_VERSION, T_BATCH_OPEN, T_BATCH_MIDDLE } tamper_kind;

static bool tamper_segment(const char *seg, int k, tamper_kind how, uint64_t *at,
                           uint64_t *at_next) {
    size_t n;
    uint8_t *d = slurp(seg, &n);
    EXPECT(d);
    segmap m;
    EXPECT(map_segment(seg, &m));
    EXPECT(k + 1 < m.n);
    bp_buf out = {0};
    EXPECT(bp_buf_append(&out, d, HDR) == 0);
    for (int i = 0; i < m.n; i++) {
        const uint8_t *body = d + m.off[i] + 8;
        size_t blen = m.len[i] - 8;
        if (i == k) *at = out.len;
        if (i == k + 1) *at_next = out.len;
        if (i != k) {
            EXPECT(bp_buf_append(&out, d + m.off[i], m.len[i]) == 0);
            continue;
        }
        if (how == T_VERSION) { /* body version 2: decodes nowhere, CRC made right */
            uint8_t *c = malloc(m.len[i]);
            memcpy(c, d + m.off[i], m.len[i]);
            c[8 + 3] = 2;
            put_be32(c + 4, (uint32_t)crc32(0L, c + 8, blen));
            EXPECT(bp_buf_append(&out, c, m.len[i]) == 0);
            free(c);
            continue;
        }
        bp_frame fr;
        EXPECT(bp_frame_decode(body, blen, &fr) == BP_OK);
        if (how == T_SEQ) fr.f.global_seq += 1;
        if (how == T_BATCH_OPEN) { /* the first of a batch of 2 whose second never comes */
            fr.f.batch_id = fr.f.global_seq;
            fr.f.batch_index = 0;
            fr.f.batch_count = 2;
        }
        if (how == T_BATCH_MIDDLE) { /* the second of a batch that never started */
            fr.f.batch_id = fr.f.global_seq - 1;
            fr.f.batch_index = 1;
            fr.f.batch_count = 2;
        }
        EXPECT(bp_frame_encode(&out, &fr) == 0);
    }
    bool ok = spit(seg, out.data, out.len);
    bp_buf_free(&out);
    free(d);
    return ok;
}

static void test_crc_valid_misplaced(void) {
    static const char *why[] = {"global_seq 7, expected 6", "invalid body version",
                                "incomplete batch followed by other events",
                                "batch frame 1/2 out of place"};
    for (int how = T_SEQ; how <= T_BATCH_MIDDLE; how++) {
        const char *dir = t_dir("corr-misplaced");
        CHECK(populate(dir, 20));
        char seg1[1200];
        SEG(seg1, dir, 1);
        const int k = 5;
        uint64_t at = 0, at_next = 0;
        CHECK(tamper_segment(seg1, k, (tamper_kind)how, &at, &at_next));
        if (how == T_BATCH_OPEN) at = at_next; /* found where the batch should go on */
        reset_caches(dir);
        bp_store *s = NULL;
        CHECK_EQ(open_s(&s, dir, false, false), BP_ECORRUPT);
        char where[80];
        snprintf(where, sizeof where, "segment 000001 offset %llu", (unsigned long long)at);
        if (!strstr(bp_last_error(), where) || !strstr(bp_last_error(), why[how]))
            fprintf(stderr, "tamper %d: %s\n", how, bp_last_error());
        CHECK(strstr(bp_last_error(), where) != NULL);
        CHECK(strstr(bp_last_error(), why[how]) != NULL);
        CHECK(s == NULL);
        /* salvage keeps exactly the events before the misfit frame (or its open batch) */
        CHECK_OK(open_s(&s, dir, false, true));
        if (s) {
            CHECK(events_except(s, k, -1, BP_OK));
            CHECK(verify_clean(s, k));
            CHECK_OK(bp_store_close(s));
        }
        t_rmdir(dir);
    }
}

/* Quarantine keeps what it is given: bytes a salvage moved aside (valid,
 * acknowledged events among them) must survive a later cut at the same
 * segment offset, which happens when the first append after the salvage is
 * torn. */
static void test_quarantine_keeps_earlier_cuts(void) {
    const char *dir = t_dir("corr-quar");
    CHECK(populate(dir, 80));
    char seg1[1200], p[1200], ck[1200];
    SEG(seg1, dir, 1);
    snprintf(ck, sizeof ck, "%s/index.ckpt", dir);
    segmap m;
    CHECK(map_segment(seg1, &m));
    const int k = 5;
    uint64_t bad = m.off[k];
    CHECK(flip(seg1, bad + 20, 1));
    CHECK(flip(seg1, m.foff + m.flen - 1, 0)); /* footer CRC: the segment is scanned */
    reset_caches(dir);
    bp_store *s;
    CHECK_OK(open_s(&s, dir, false, true)); /* salvage */
    size_t n;
    uint8_t *salvaged = slurp(pathf(p, dir, "quarantine/000001.fbat.at-%llu.cut", bad), &n);
    CHECK(salvaged);
    CHECK_EQ(n, m.size - bad);
    M.n = k;
    CHECK(append_singles(s, 1)); /* written at offset bad of segment 1 */
    CHECK_OK(bp_store_close(s));
    CHECK(flip(seg1, bad + 30, 2)); /* ... and torn by a crash */
    CHECK_EQ(unlink(ck), 0);
    CHECK_OK(open_s(&s, dir, false, false));
    bp_store_open_report rep = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &rep);
    CHECK(rep.bytes_cut > 0);
    CHECK_EQ(rep.events, k);
    CHECK_OK(bp_store_close(s));
    bool kept = quarantine_holds(dir, salvaged, n);
    free(salvaged);
    CHECK(kept);
    t_rmdir(dir);
}

/* Header fields that pass the CRC but break the format: each refused with a
 * message that names the field. */
static void put_crc(uint8_t *p, size_t n) {
    uint32_t c = (uint32_t)crc32(0L, p, (uInt)(n - 4));
    p[n - 4] = (uint8_t)(c >> 24);
    p[n - 3] = (uint8_t)(c >> 16);
    p[n - 2] = (uint8_t)(c >> 8);
    p[n - 1] = (uint8_t)c;
}

static void test_header_fields(void) {
    const char *dir = t_dir("corr-hdr");
    CHECK(populate(dir, 10));
    char seg1[1200], st[1200];
    SEG(seg1, dir, 1);
    size_t n;
    uint8_t *orig = slurp(seg1, &n);
    CHECK(orig && n > 48);
    uint8_t *p = malloc(n);
    CHECK(p);
    const struct {
        size_t at;
        uint8_t v;
        const char *says;
    } cases[2] = {{7, 47, "size field 47"}, {15, 1, "flags 0x1"}};
    bp_store *s;
    for (int i = 0; i < 2; i++) {
        memcpy(p, orig, n);
        p[cases[i].at] = cases[i].v;
        put_crc(p, 48);
        CHECK(spit(seg1, p, n));
        reset_caches(dir);
        CHECK_EQ(open_s(&s, dir, true, false), BP_ECORRUPT);
        CHECK(strstr(bp_last_error(), cases[i].says) != NULL);
    }
    CHECK(spit(seg1, orig, n));
    free(p);
    free(orig);
    pathf(st, dir, "STORE", 0);
    CHECK(spit(st, (const uint8_t *)"", 0));
    CHECK_EQ(open_s(&s, dir, true, false), BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "0 bytes, expected 48") != NULL);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_sealed_segment_frame_flip);
    RUN(test_torn_tail_flip);
    RUN(test_truncated_tail);
    RUN(test_sidx_footer_flip);
    RUN(test_checkpoint_flip);
    RUN(test_store_file_damage);
    RUN(test_incomplete_batch);
    RUN(test_bitflip_sweep_newest);
    RUN(test_bitflip_sweep_sealed);
    RUN(test_damage_after_open);
    RUN(test_crc_valid_tamper);
    RUN(test_crc_valid_misplaced);
    RUN(test_quarantine_keeps_earlier_cuts);
    RUN(test_header_fields);
    T_DONE();
}
