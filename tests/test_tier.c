/* Records in place: after an open, the sealed segments whose index files are current (the six
 * tier) have no record in memory (idx.rbase); every read of them goes through their files and
 * frames, and answers exactly as an index in memory would: header-only reads (hlc and flags
 * from the frames), time bounds (the files' hlc ranges, then the frames), entity prefixes,
 * seq bounds. A file whose CRCs hold but which names the wrong event never makes a read
 * return it. */
#include "t_six.h"
#include "store/store_impl.h"

#include <sys/stat.h>

#define N 3000
#define ENTITIES 37

typedef struct written {
    bp_id id;
    uint64_t hlc, clock;
    uint16_t kind, flags;
} written;

static const char *g_dir;
static written g_w[N + 200];

static void ent_of(int i, char *out, size_t cap) {
    snprintf(out, cap, "%s:%d", i % 2 ? "acct" : "user", i % ENTITIES);
}

/* Event i: entity ent_of(i), scope s<i%3>, kind (1, i%5), schema version i%4 in its flags. */
static void fill(bp_store *s, int from, int n) {
    for (int i = from; i < from + n; i++) {
        char ent[32], scope[16], pay[40];
        ent_of(i, ent, sizeof ent);
        snprintf(scope, sizeof scope, "s%d", i % 3);
        memset(pay, 'a' + i % 26, sizeof pay);
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        o.schema_version = (uint8_t)(i % 4);
        bp_receipt r = BP_RECEIPT_INIT;
        CHECK_OK(bp_append_ex(s, &r, ent, scope, BP_KIND(1, i % 5), pay, sizeof pay, &o));
        g_w[i] = (written){r.event_id, r.hlc, r.clock, BP_KIND(1, i % 5), (uint16_t)(i % 4)};
        if (i % 400 == 0) usleep(3000); /* wall times that differ across the segments */
    }
}

/* The events a query returns, each against what was written: every field of the header. */
static void check_run(bp_store *s, const bp_region *q, unsigned flags, int n,
                      bool (*want)(int i, const void *ctx), const void *ctx) {
    bp_iter *it = NULL;
    CHECK_OK(bp_query(s, &it, q, flags));
    const bp_event *e;
    int i = 0, got = 0;
    for (;; i++) {
        while (i < n && !want(i, ctx))
            i++;
        bp_status rc = bp_iter_next(it, &e);
        if (i == n) {
            CHECK_EQ(rc, BP_DONE);
            break;
        }
        CHECK_OK(rc);
        if (rc) break;
        got++;
        char ent[32], scope[16];
        ent_of(i, ent, sizeof ent);
        snprintf(scope, sizeof scope, "s%d", i % 3);
        CHECK_EQ(e->global_seq, (uint64_t)i + 1);
        CHECK(memcmp(e->event_id.b, g_w[i].id.b, 16) == 0);
        CHECK_EQ(e->hlc, g_w[i].hlc);
        CHECK_EQ(e->clock, g_w[i].clock);
        CHECK_EQ(e->kind, g_w[i].kind);
        CHECK_EQ(BP_EVENT_SCHEMA_VERSION(e->flags), g_w[i].flags);
        CHECK(strcmp(e->entity, ent) == 0);
        CHECK(strcmp(e->scope, scope) == 0);
        CHECK_EQ(e->header_only, (flags & BP_READ_INDEX_ONLY) != 0);
        if (!(flags & BP_READ_INDEX_ONLY)) CHECK_EQ(e->payload_len, 40u);
    }
    bp_iter_free(it);
}

static bool want_all(int i, const void *ctx) {
    (void)i;
    (void)ctx;
    return true;
}

typedef struct window {
    uint64_t since, until, from, to;
    const char *prefix;
    int scope, kind;
} window;

static bool want_window(int i, const void *ctx) {
    const window *w = ctx;
    uint64_t ms = BP_HLC_WALL_MS(g_w[i].hlc);
    char ent[32];
    ent_of(i, ent, sizeof ent);
    return (!w->since || ms >= w->since) && (!w->until || ms <= w->until) &&
           (!w->from || (uint64_t)i + 1 >= w->from) && (!w->to || (uint64_t)i + 1 <= w->to) &&
           (!w->prefix || strncmp(ent, w->prefix, strlen(w->prefix)) == 0) &&
           (w->scope < 0 || i % 3 == w->scope) && (w->kind < 0 || i % 5 == w->kind);
}

static void check_window(bp_store *s, int n, window w) {
    char sc[8];
    snprintf(sc, sizeof sc, "s%d", w.scope);
    uint16_t kind = BP_KIND(1, w.kind);
    bp_region q = BP_REGION_INIT;
    q.since_ms = w.since;
    q.until_ms = w.until;
    q.from_seq = w.from;
    q.to_seq = w.to;
    q.entity_prefix = w.prefix;
    q.scope = w.scope >= 0 ? sc : NULL;
    q.kinds = w.kind >= 0 ? &kind : NULL;
    q.n_kinds = w.kind >= 0;
    check_run(s, &q, BP_READ_FULL, n, want_window, &w);
    check_run(s, &q, BP_READ_INDEX_ONLY, n, want_window, &w);
}

static void check_all(bp_store *s, int n) {
    bp_region q = BP_REGION_INIT;
    check_run(s, &q, BP_READ_FULL, n, want_all, NULL);
    check_run(s, &q, BP_READ_INDEX_ONLY, n, want_all, NULL);
    uint64_t t1 = BP_HLC_WALL_MS(g_w[700].hlc), t2 = BP_HLC_WALL_MS(g_w[2100].hlc);
    check_window(s, n, (window){t1, t2, 0, 0, NULL, -1, -1});
    check_window(s, n, (window){t1, 0, 0, 0, NULL, 1, -1});
    check_window(s, n, (window){0, t2, 0, 0, NULL, -1, 3});
    check_window(s, n, (window){t1, t2, 400, 2600, "acct:", -1, -1});
    check_window(s, n, (window){0, 0, 0, 0, "user:1", 2, -1});
    check_window(s, n, (window){t2 + 100000, 0, 0, 0, NULL, -1, -1}); /* after every event */
    check_window(s, n, (window){0, 0, 0, 0, "user:", -1, -1});        /* a prefix alone */
    check_window(s, n, (window){0, 0, 0, 0, "nobody", -1, -1});       /* no segment has it */
    check_window(s, n, (window){t1, 0, 0, 0, "acct:3", -1, -1});
    for (int e = 0; e < ENTITIES; e += 9) { /* a stream: its tier walk, index-only too */
        char ent[32];
        ent_of(e, ent, sizeof ent);
        bp_region q2 = BP_REGION_INIT;
        q2.entity = ent;
        window w = {0, 0, 0, 0, ent, -1, -1};
        check_run(s, &q2, BP_READ_INDEX_ONLY, n, want_window, &w);
    }
}

/* The tier's records are not in memory, and every query answers as before. */
static void test_records_in_place(void) {
    g_dir = t_dir("tier");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    bp__store_hot_events(s, 0); /* (by default the newest million records stay in memory) */
    fill(s, 0, N);
    check_all(s, N);
    /* each segment left memory once sealed and published (bp_tier_extend), as an open leaves
     * it: only the newest is in memory */
    CHECK(s->n_six >= 5 && s->n_six == s->n_segs - 1);
    CHECK_EQ(s->idx.rbase, s->segs[s->n_six].first_slot);
    CHECK_OK(bp_store_close(s));

    s = t_open(g_dir, NULL);
    CHECK(s->n_six >= 5 && s->n_six == s->n_segs - 1);
    CHECK_EQ(s->idx.rbase, s->segs[s->n_six].first_slot);
    CHECK(s->idx.n - s->idx.rbase < N / 5);              /* the active segment's records only */
    CHECK(s->idx.cap <= s->idx.n - s->idx.rbase + 1024); /* (room, not records) */
    check_all(s, N);
    fill(s, N, 200); /* appends go on past the tier */
    check_all(s, N + 200);
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, (uint64_t)N + 200);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));

    /* a compaction puts the records back in memory from the footers, and the store then
     * answers from memory alone */
    s = t_open(g_dir, NULL);
    CHECK(s->idx.rbase > 0);
    bp_compact_options co = BP_COMPACT_OPTIONS_INIT;
    co.dry_run = true;
    bp_compact_report cr = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &cr, &co));
    CHECK_EQ(s->idx.rbase, 0);
    CHECK_EQ(s->n_six, 0);
    check_all(s, N + 200);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* Record r of segment segno's index file gets another record's kind, with every CRC made
 * good again: a file that passes its checks but names events wrongly. */
static void swap_kinds(uint32_t segno, uint32_t r) {
    char p[600];
    snprintf(p, sizeof p, "%s/segments/%06u.fidx", g_dir, segno);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    bp_six x;
    CHECK(b && bp_six_open(&x, b, n, p) == BP_OK);
    if (!b) return;
    uint8_t *rec = b + x.off[BP_SIXB_RECS] + r * BP_SIX_REC_SIZE, *other = rec;
    uint16_t kind = bp_get_be16(rec + 10);
    while (bp_get_be16(other + 10) == kind)
        other += BP_SIX_REC_SIZE;
    bp_put_be16(rec + 10, bp_get_be16(other + 10));
    bp_put_be16(other + 10, kind);
    t_six_reseal(b, n);
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
    free(b);
}

/* A query by kind over a tier file that lies about kinds: every event it returns has the
 * kind asked for; the lie is caught by the frame read (an error, then the tier answers from
 * memory), and the next queries are whole. */
static void test_lying_file(void) {
    g_dir = t_dir("tier-lie");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 0, N);
    CHECK_OK(bp_store_close(s));
    swap_kinds(2, 3);
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK(s->n_six >= 5);
    int errors = 0;
    for (int k = 0; k < 5; k++) {
        bp_iter *it = NULL;
        CHECK_OK(bp_by_kind(s, &it, BP_KIND(1, k), BP_READ_INDEX_ONLY));
        const bp_event *e;
        bp_status rc;
        while ((rc = bp_iter_next(it, &e)) != BP_DONE) {
            if (rc == BP_ECORRUPT) {
                errors++;
                continue;
            }
            CHECK_OK(rc);
            if (rc) break;
            CHECK_EQ(e->kind, BP_KIND(1, k)); /* never another kind's event */
        }
        bp_iter_free(it);
    }
    CHECK_EQ(errors, 1); /* the first lie read; then the tier is in memory */
    CHECK_EQ(s->n_six, 0);
    check_all(s, N);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

static void ckpt_path(char *out, size_t cap) {
    snprintf(out, cap, "%s/entities.ckpt", g_dir);
}

/* Rewrite entities.ckpt with its first entity's clock moved by delta, its CRC made right. */
static void nudge_clock(int delta) {
    char p[600];
    ckpt_path(p, sizeof p);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b && n > 100);
    if (!b) return;
    bp_put_be64(b + 77, bp_get_be64(b + 77) + (uint64_t)(int64_t)delta);
    bp_put_be32(b + n - 4, bp_crc32(b, n - 4));
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
    free(b);
}

/* Flip a byte inside segment segno's SIDX footer (its trailer stays good). */
static void damage_footer(uint32_t segno) {
    char p[600];
    snprintf(p, sizeof p, "%s/segments/%06u.fbat", g_dir, segno);
    size_t n = 0;
    uint8_t *b = t_slurp(p, &n);
    CHECK(b && n > 100);
    if (!b) return;
    uint64_t foff = bp_get_be64(b + n - BP_TRAILER_SIZE);
    b[foff + 20] ^= 0x5a;
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
    free(b);
}

/* An open with entities.ckpt attaches the sealed segments by their index files alone: a
 * footer it never decodes may be damaged. One that is damaged, stale or does not add up is
 * passed over (the footers are read), and a writable open writes it again. */
static void test_entity_checkpoint(void) {
    g_dir = t_dir("tier-ents");
    t_open_opts small = {.segment_size = 64 << 10};
    bp_store *s = t_open(g_dir, &small);
    fill(s, 0, N);
    CHECK_OK(bp_store_close(s)); /* (a large active segment is sealed: all of them are) */
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    uint32_t sealed = s->n_segs - !s->segs[s->n_segs - 1].sealed;
    CHECK(sealed >= 5 && s->n_six == sealed);
    CHECK_EQ(s->entckpt_segno, s->segs[sealed - 1].segno);
    check_all(s, N);
    CHECK_OK(bp_store_close(s));

    /* its footers are not read: damaged, the tier is whole all the same */
    damage_footer(2);
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK_EQ(s->n_six, sealed);
    check_all(s, N);
    CHECK_OK(bp_store_close(s));

    /* a clock that does not add up: passed over; the footers then (segment 2's is damaged:
     * scanned, so the tier stops before it) */
    nudge_clock(1);
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK_EQ(s->entckpt_segno, 0);
    CHECK_EQ(s->n_six, 1);
    check_all(s, N);
    CHECK_OK(bp_store_close(s));
    nudge_clock(-1); /* as it was: used again */
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK_EQ(s->n_six, sealed);
    CHECK_OK(bp_store_close(s));

    /* stale (an older one) or missing: the footers past it, and a writable open writes the
     * tier's; appends then go on from the right heads */
    char p[600], old[620];
    ckpt_path(p, sizeof p);
    snprintf(old, sizeof old, "%s.old", p);
    CHECK_EQ(rename(p, old), 0);
    s = t_open(g_dir, &small); /* (repairs segment 2's footer) */
    CHECK_EQ(s->entckpt_segno, 0);
    fill(s, N, 200);
    CHECK_OK(bp_store_close(s));
    CHECK_EQ(rename(old, p), 0); /* the first one: names a segment before the newest sealed */
    s = t_open(g_dir, &small);
    CHECK(s->entckpt_segno > 0 && s->entckpt_segno < s->segs[s->n_six - 1].segno);
    check_all(s, N + 200);
    CHECK_OK(bp_store_close(s));
    s = t_open(g_dir, &(t_open_opts){.read_only = true}); /* the writable open wrote the tier's */
    CHECK_EQ(s->entckpt_segno, s->segs[s->n_six - 1].segno);
    check_all(s, N + 200);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_OK(bp_store_close(s));

    /* damaged (its CRC fails): not used */
    FILE *f = fopen(p, "r+b");
    CHECK(f && fseek(f, 90, SEEK_SET) == 0 && fputc('!', f) != EOF);
    if (f) fclose(f);
    s = t_open(g_dir, &(t_open_opts){.read_only = true});
    CHECK_EQ(s->entckpt_segno, 0);
    check_all(s, N + 200);
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* A segment sealed by this handle counts its footer: bp_store_segments_list says the file's
 * size, and a snapshot copies the footer and trailer (each snapshot segment but the newest is
 * sealed, and opens by its index file). */
static void test_sealed_size(void) {
    g_dir = t_dir("tier-size");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    fill(s, 0, 1500);
    bp_segment_info seg[64];
    for (int i = 0; i < 64; i++)
        seg[i] = (bp_segment_info)BP_SEGMENT_INFO_INIT;
    size_t n = 0;
    CHECK_OK(bp_store_segments_list(s, seg, 64, &n));
    CHECK(n >= 3);
    for (size_t i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/segments/%06u.fbat", g_dir, seg[i].segno);
        struct stat st;
        CHECK(stat(p, &st) == 0);
        if (seg[i].sealed) CHECK_EQ(seg[i].bytes, (uint64_t)st.st_size);
    }
    char dest[600];
    snprintf(dest, sizeof dest, "%s.snap", g_dir);
    bp_snapshot_report sr = BP_SNAPSHOT_REPORT_INIT;
    CHECK_OK(bp_store_snapshot(s, &sr, dest));
    CHECK_OK(bp_store_close(s));
    s = t_open(dest, &(t_open_opts){.read_only = true});
    CHECK(s->n_segs >= 3);
    for (uint32_t i = 0; i + 1 < s->n_segs; i++)
        CHECK(s->segs[i].sealed);
    CHECK_EQ(s->report.frames_scanned < 1500, true); /* (the sealed ones: not scanned) */
    check_all(s, 1500);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dest);
    t_rmdir(g_dir);
}

/* A store held open while it grows keeps in memory only the segment it has not sealed: each
 * sealed one leaves memory once its events are published, in the writer and in a reader that
 * follows it (bp_tier_extend). Ids, idempotency keys, optimistic appends and every query go
 * on across them as they do after an open. */
static void test_grows_in_place(void) {
    g_dir = t_dir("tier-grow");
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10});
    bp_receipt keyed = BP_RECEIPT_INIT;
    bp_append_options ko = BP_APPEND_OPTIONS_INIT;
    ko.idempotency_key = "order-17";
    CHECK_OK(bp_append_ex(s, &keyed, "keyed", "s0", BP_KIND(1, 0), "k", 1, &ko));
    bp_store *r = t_open(g_dir, &(t_open_opts){.read_only = true, .no_create = true});
    bp_store *hot = t_open(g_dir, &(t_open_opts){.read_only = true, .no_create = true});
    bp__store_hot_events(s, 0);
    bp__store_hot_events(r, 0);
    fill(s, 0, N / 2);
    CHECK(s->n_six >= 2 && s->n_six == s->n_segs - 1);
    CHECK_EQ(s->idx.rbase, s->segs[s->n_six].first_slot);
    CHECK(s->idx.cap <= s->idx.n - s->idx.rbase + 1024); /* (room, not records) */
    uint64_t mid = bp_index_bytes(&s->idx);
    fill(s, N / 2, N / 2);
    CHECK(s->n_six >= 5 && s->n_six == s->n_segs - 1);
    CHECK(bp_index_bytes(&s->idx) < mid + mid / 2); /* twice the events, not twice the memory */
    uint64_t placed, probes; /* the id table holds the ids of the records in memory, only */
    bp_index_idtab_stats(&s->idx, &placed, &probes);
    CHECK_EQ(placed, s->idx.n - s->idx.holes - s->idx.noids);
    CHECK_EQ(placed, s->idx.n - s->idx.rbase);
    /* (the keyed event was number 1: its seqs shift the others' by one) */
    for (int i = 0; i < N; i++) {
        bp_event *e = NULL;
        if (i % 97) continue;
        CHECK_OK(bp_get(s, &e, &g_w[i].id));
        CHECK(e && e->global_seq == (uint64_t)i + 2 && e->clock == g_w[i].clock);
        bp_event_free(e);
    }
    /* the key's event is in the tier now: the append is answered with its receipt */
    bp_receipt again = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &again, "keyed", "s0", BP_KIND(1, 0), "k", 1, &ko));
    CHECK(memcmp(again.event_id.b, keyed.event_id.b, 16) == 0 && again.global_seq == 1);
    /* optimistic appends against a head whose events are all in the tier */
    char ent[32];
    ent_of(5, ent, sizeof ent);
    uint64_t head = 0;
    for (int i = 0; i < N; i++)
        if (i % ENTITIES == 5) head = g_w[i].clock;
    bp_append_options co = BP_APPEND_OPTIONS_INIT;
    co.has_expected_clock = true;
    co.expected_clock = head - 1;
    CHECK_EQ(bp_append_ex(s, NULL, ent, "s0", BP_KIND(1, 0), "x", 1, &co), BP_ECONFLICT);
    co.expected_clock = head;
    bp_receipt cr = BP_RECEIPT_INIT;
    CHECK_OK(bp_append_ex(s, &cr, ent, "s0", BP_KIND(1, 0), "x", 1, &co));
    CHECK_EQ(cr.clock, head + 1);
    /* durable appends: a sealed segment's last events are published by a later sync, and
     * the segment leaves memory at the append after that */
    uint32_t segs0 = s->n_segs;
    char big[1024];
    memset(big, 'd', sizeof big);
    for (int k = 0; k < 1000 && s->n_segs == segs0; k++)
        CHECK_OK(bp_append(s, NULL, "durable:1", "s0", BP_KIND(1, 0), big, sizeof big));
    CHECK(s->n_segs > segs0);
    CHECK_OK(bp_append(s, NULL, "durable:1", "s0", BP_KIND(1, 0), big, sizeof big));
    CHECK_OK(bp_append(s, NULL, "durable:1", "s0", BP_KIND(1, 0), big, sizeof big));
    CHECK_EQ(s->n_six, s->n_segs - 1);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    /* the reader follows across the seals, and leaves them in place too */
    uint64_t pub = 0;
    CHECK_OK(bp_store_refresh(r, &pub));
    CHECK_EQ(pub, s->published);
    CHECK(r->n_six >= 5 && r->n_six == r->n_segs - 1);
    CHECK_EQ(r->idx.rbase, r->segs[r->n_six].first_slot);
    CHECK(r->idx.cap <= r->idx.n - r->idx.rbase + 1024);
    bp_index_idtab_stats(&r->idx, &placed, &probes);
    CHECK_EQ(placed, r->idx.n - r->idx.holes - r->idx.noids);
    bp_event *e = NULL;
    CHECK_OK(bp_get(r, &e, &keyed.event_id));
    CHECK(e && e->global_seq == 1);
    bp_event_free(e);
    for (int i = 0; i < N; i += 97) {
        CHECK_OK(bp_get(r, &e, &g_w[i].id));
        CHECK(e && e->global_seq == (uint64_t)i + 2);
        bp_event_free(e);
    }
    bp_iter *it;
    CHECK_OK(bp_stream(r, &it, ent, BP_READ_FULL));
    const bp_event *ev;
    uint64_t clock = 0;
    while (bp_iter_next(it, &ev) == BP_OK)
        CHECK_EQ(ev->clock, ++clock);
    bp_iter_free(it);
    CHECK_EQ(clock, head + 1);
    CHECK_OK(bp_store_close(r));
    /* with the default window the newest records stay in memory: all of these */
    CHECK_OK(bp_store_refresh(hot, &pub));
    CHECK_EQ(hot->n_six, 0);
    CHECK_EQ(hot->idx.rbase, 0);
    bp__store_hot_events(hot, 1000); /* a smaller window: the oldest leave, the newest stay */
    CHECK_OK(bp_append(s, NULL, "keyed", "s0", BP_KIND(1, 0), "k", 1));
    CHECK_OK(bp_store_refresh(hot, &pub));
    CHECK(hot->n_six > 0 && hot->n_six < hot->n_segs - 1);
    CHECK(hot->idx.n - hot->idx.rbase <= 1000 + 1000 / 2);
    CHECK(hot->idx.n - hot->segs[hot->n_six - 1].first_slot > 1000);
    CHECK_OK(bp_get(hot, &e, &keyed.event_id));
    CHECK(e && e->global_seq == 1);
    bp_event_free(e);
    CHECK_OK(bp_store_close(hot));
    CHECK_OK(bp_store_close(s));
    t_rmdir(g_dir);
}

/* A seal whose index file could not be written (its rename failed: counted, not fatal): the
 * segment's records stay in memory only until the tier reaches it, when the writer writes the
 * file again and the segment joins the tier. */
static void test_index_file_written_again(void) {
    g_dir = t_dir("tier-again");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(g_dir, &(t_open_opts){.segment_size = 64 << 10, .fault = &f});
    bp__store_hot_events(s, 0);
    uint32_t segs0 = s->n_segs;
    char pay[200];
    memset(pay, 'p', sizeof pay);
    uint64_t appended = 0;
    for (int k = 0; k < 2000 && s->n_segs == segs0; k++, appended++) {
        f.fail_rename_at = f.renames + 1; /* (appends rename nothing: the seal's first one) */
        bp_append_options o = BP_APPEND_OPTIONS_INIT;
        o.durability = BP_NO_SYNC;
        CHECK_OK(bp_append_ex(s, NULL, "again:1", "s0", BP_KIND(1, 0), pay, sizeof pay, &o));
    }
    f.fail_rename_at = 0;
    CHECK(s->n_segs > segs0);
    CHECK(f.tripped >= 1 && s->six_failed >= 1); /* the seal's index file: not written */
    CHECK_EQ(s->n_six, s->n_segs - 1);           /* written again, and in the tier */
    char p[600];
    snprintf(p, sizeof p, "%s/segments/%06u.fidx", g_dir, s->segs[0].segno);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    bp_iter *it;
    CHECK_OK(bp_stream(s, &it, "again:1", BP_READ_FULL));
    const bp_event *ev;
    uint64_t clock = 0;
    while (bp_iter_next(it, &ev) == BP_OK)
        CHECK_EQ(ev->clock, ++clock);
    bp_iter_free(it);
    CHECK_EQ(clock, appended); /* every event, across the file written again */
    CHECK_OK(bp_store_close(s));
    bp_fault_destroy(&f);
    t_rmdir(g_dir);
}

int main(void) {
    test_records_in_place();
    test_lying_file();
    test_entity_checkpoint();
    test_sealed_size();
    test_grows_in_place();
    test_index_file_written_again();
    printf("%d checks, %d failures\n", t_checks, t_failures);
    return t_failures ? 1 : 0;
}
