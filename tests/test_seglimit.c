/* The segment limit: a frame's offset in its segment is 32 bits in the index, so no frame may
 * end past 4 GiB - 1 in a segment. With the limit lowered (bp__seg_end_max) so that small
 * payloads reach it: single appends and batches rotate to a new segment rather than cross
 * it; a batch that not even an empty segment holds is refused (BP_ETOOBIG, naming the batch
 * and the limit) and nothing of it is written or visible, before or after a reopen; the
 * largest batch that fits is accepted at the exact edge; recovery refuses a frame past the
 * limit. With BP_SEGLIMIT_REAL=1 (CTest seglimit_real, label torture: about 8.5 GiB of memory
 * and 4 GiB of disk; 4 minutes here) the same at the real 4 GiB edge with 16 MiB payloads. */
#include "t.h"
#include "bp_testing.h"
#include "store/store_impl.h"

/* Every frame in the index ends at or below the limit. */
static bool frames_within(bp_store *s, uint64_t limit) {
    for (uint64_t i = 0; i < s->idx.n; i++) {
        bp_irec r;
        if (bp_store_rec(s, i, &r, 0) > 0 && (uint64_t)r.offset + r.frame_len > limit) return false;
    }
    return true;
}

static uint64_t published(bp_store *s) {
    bp_store_diagnostics d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    if (bp_store_diagnostics_get(s, &d) != BP_OK) return UINT64_MAX;
    return d.published_seq;
}

static uint32_t segments(bp_store *s) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    if (bp_store_stats_get(s, &st) != BP_OK) return 0;
    return st.segments;
}

/* payload i: its bytes are (i + k) & 0xFF */
static uint8_t *pattern(size_t len, unsigned i) {
    uint8_t *p = malloc(len ? len : 1);
    for (size_t k = 0; p && k < len; k++)
        p[k] = (uint8_t)(i + k);
    return p;
}

/* Each receipt's event reads back with its payload. */
static bool readable(bp_store *s, const bp_receipt *r, size_t n, const size_t *lens) {
    for (size_t i = 0; i < n; i++) {
        bp_event *ev = NULL;
        if (bp_get(s, &ev, &r[i].event_id) != BP_OK) {
            fprintf(stderr, "event %zu (seq %llu): %s\n", i, (unsigned long long)r[i].global_seq,
                    bp_last_error());
            return false;
        }
        uint8_t *want = pattern(lens[i], (unsigned)i);
        bool same = ev->global_seq == r[i].global_seq && ev->payload_len == lens[i] &&
                    memcmp(ev->payload, want, lens[i]) == 0;
        free(want);
        bp_event_free(ev);
        if (!same) return false;
    }
    return true;
}

/* n items of lens[i] bytes, payload i = pattern(lens[i], i) */
typedef struct batch {
    bp_batch_item *items;
    uint8_t **pay;
    size_t *lens;
    size_t n;
} batch;

static batch make_batch(size_t n, size_t len) {
    batch b = {calloc(n, sizeof(bp_batch_item)), calloc(n, sizeof(uint8_t *)),
               calloc(n, sizeof(size_t)), n};
    for (size_t i = 0; i < n; i++) {
        b.lens[i] = len;
        b.pay[i] = pattern(len, (unsigned)i);
        b.items[i] = (bp_batch_item){"acct:1", "ledger", BP_KIND(1, 1), b.pay[i], len, NULL};
    }
    return b;
}

static void free_batch(batch *b) {
    for (size_t i = 0; i < b->n; i++)
        free(b->pay[i]);
    free(b->items);
    free(b->pay);
    free(b->lens);
}

/* Bytes the frames of a batch take, measured in a store without the lowered limit. */
static uint64_t frames_bytes(const char *dir, const batch *b) {
    uint64_t saved = bp__seg_end_max;
    bp__seg_end_max = BP_SEG_END_MAX;
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    uint64_t total = 0;
    if (s && bp_append_batch(s, NULL, b->items, b->n) == BP_OK)
        for (uint64_t i = 0; i < s->idx.n; i++) {
            bp_irec r;
            if (bp_store_rec(s, i, &r, 0) > 0) total += r.frame_len;
        }
    if (s) bp_store_close(s);
    t_rmdir(dir);
    bp__seg_end_max = saved;
    return total;
}

/* ------------------------------------------------------------- lowered limit */

#define LIMIT (64u << 10)

/* Appends and batches that would cross the limit start a new segment (segment_size is far
 * above it: only the limit makes them rotate). */
static void test_rotates(void) {
    const char *dir = t_dir("seglimit-rotate");
    bp__seg_end_max = LIMIT;
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    CHECK(s != NULL);
    uint8_t *p = pattern(7000, 0);
    for (int i = 0; i < 30; i++) /* ~210 KiB of single appends */
        CHECK_OK(bp_append(s, NULL, "acct:0", "ledger", BP_KIND(1, 1), p, 7000));
    free(p);
    CHECK(segments(s) >= 4);
    CHECK(frames_within(s, LIMIT));
    /* a batch of ~40 KiB after ~half a segment: rotates, whole, into the next one */
    uint32_t before = segments(s);
    batch b = make_batch(10, 4000);
    bp_receipt r[10];
    t_receipts(r, sizeof r / sizeof r[0]);
    CHECK_OK(bp_append_batch(s, r, b.items, b.n));
    CHECK_OK(bp_append_batch(s, r, b.items, b.n));
    CHECK(segments(s) > before);
    CHECK(frames_within(s, LIMIT));
    bp_irec r0, ri;
    CHECK_EQ(bp_store_rec(s, r[0].global_seq - 1, &r0, 0), 1);
    for (size_t i = 1; i < b.n; i++) { /* a batch is never split over two segments */
        CHECK_EQ(bp_store_rec(s, r[i].global_seq - 1, &ri, 0), 1);
        CHECK_EQ(ri.segno, r0.segno);
    }
    CHECK(readable(s, r, b.n, b.lens));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    CHECK(s != NULL);
    CHECK(frames_within(s, LIMIT));
    CHECK(readable(s, r, b.n, b.lens));
    CHECK_OK(bp_store_close(s));
    free_batch(&b);
    bp__seg_end_max = BP_SEG_END_MAX;
    t_rmdir(dir);
}

/* A batch that no segment holds is refused, with nothing written or visible; the exact edge:
 * frames that end at the limit are accepted, one byte more is refused. */
static void test_refused(void) {
    const char *dir = t_dir("seglimit-refuse");
    bp__seg_end_max = LIMIT;
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    CHECK(s != NULL);
    bp_receipt r0 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r0, "acct:0", "ledger", BP_KIND(1, 1), "x", 1));
    uint32_t segs = segments(s);
    uint64_t size = s->segs[s->n_segs - 1].size;
    /* payloads alone above the limit (refused before encoding) */
    batch big = make_batch(20, 4000);
    CHECK_FAILS(bp_append_batch(s, NULL, big.items, big.n), BP_ETOOBIG, "batch of 20 events");
    CHECK(strstr(bp_last_error(), "split it") != NULL);
    /* a single append above it */
    uint8_t *p = pattern(LIMIT, 0);
    CHECK_FAILS(bp_append(s, NULL, "acct:0", "ledger", BP_KIND(1, 1), p, LIMIT), BP_ETOOBIG,
                "65488 bytes a segment holds");
    free(p);
    free_batch(&big);
    /* payloads that fit but frames that do not (refused by the frames' exact size) */
    batch edge = make_batch(16, 4000);
    uint64_t fb = frames_bytes(t_dir("seglimit-measure"), &edge);
    CHECK(fb > 16 * 4000);
    bp__seg_end_max = BP_SEG_HEADER_SIZE + fb - 1; /* one byte short */
    CHECK_FAILS(bp_append_batch(s, NULL, edge.items, edge.n), BP_ETOOBIG,
                "batch of 16 events carries");
    /* nothing of the refused batches was written, no segment was started */
    CHECK_EQ(segments(s), segs);
    CHECK_EQ(s->segs[s->n_segs - 1].size, size);
    CHECK_EQ(published(s), r0.global_seq);
    bp_receipt r[16];
    t_receipts(r, sizeof r / sizeof r[0]);
    CHECK_OK(bp_append(s, &r[0], "acct:0", "ledger", BP_KIND(1, 1), "y", 1));
    CHECK_EQ(r[0].global_seq, r0.global_seq + 1);
    /* frames that end exactly at the limit: accepted, in a new segment */
    bp__seg_end_max = BP_SEG_HEADER_SIZE + fb;
    CHECK_OK(bp_append_batch(s, r, edge.items, edge.n));
    CHECK_EQ(segments(s), segs + 1);
    CHECK_EQ(s->segs[s->n_segs - 1].size, bp__seg_end_max);
    CHECK(frames_within(s, bp__seg_end_max));
    CHECK(readable(s, r, edge.n, edge.lens));
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    CHECK(s != NULL);
    CHECK_EQ(published(s), r[15].global_seq);
    CHECK(readable(s, r, edge.n, edge.lens));
    CHECK_OK(bp_store_close(s));
    free_batch(&edge);
    bp__seg_end_max = BP_SEG_END_MAX;
    t_rmdir(dir);
}

/* Recovery refuses a frame that ends past the limit (what a writer without it could leave):
 * BP_ECORRUPT naming segment and offset; salvage keeps what precedes. */
static void test_recovery(void) {
    const char *dir = t_dir("seglimit-recover");
    bp__seg_end_max = BP_SEG_END_MAX;
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30});
    CHECK(s != NULL);
    uint8_t *p = pattern(20000, 0);
    bp_receipt r[3];
    t_receipts(r, sizeof r / sizeof r[0]);
    for (int i = 0; i < 3; i++)
        CHECK_OK(bp_append(s, &r[i], "acct:0", "ledger", BP_KIND(1, 1), p, 20000));
    free(p);
    CHECK_OK(bp_store_close(s));
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/index.ckpt", dir);
    CHECK_EQ(unlink(ck), 0); /* recovery scans the segment */
    bp__seg_end_max = 50000; /* the third frame ends past it */
    CHECK(t_open_try(&s, dir, &(t_open_opts){.segment_size = 1u << 30}) != BP_OK && !s);
    CHECK(strstr(bp_last_error(), "segment 000001 offset") != NULL);
    CHECK(strstr(bp_last_error(), "past the 50000 bytes a segment can index") != NULL);
    s = t_open(dir, &(t_open_opts){.segment_size = 1u << 30, .salvage = true});
    CHECK(s != NULL);
    CHECK_EQ(published(s), r[1].global_seq);
    CHECK(frames_within(s, 50000));
    CHECK_OK(bp_store_close(s));
    bp__seg_end_max = BP_SEG_END_MAX;
    t_rmdir(dir);
}

/* ------------------------------------------------------------- the real edge */

#define MIB16 (16u << 20)

/* 258 × 16 MiB (within the payload and batch limits) is refused; 255 × 16 MiB fits in one
 * segment and reads back, its last events included, before and after a reopen; a batch
 * whose payloads fill the segment exactly is refused by its frames' size. */
static void test_real_edge(void) {
    const char *dir = t_dir("seglimit-real");
    bp__seg_end_max = BP_SEG_END_MAX;
    bp_store *s = t_open(dir, &(t_open_opts){.segment_size = BP_DEFAULT_SEGMENT_SIZE});
    CHECK(s != NULL);
    bp_receipt r0 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r0, "acct:0", "ledger", BP_KIND(1, 1), "x", 1));
    /* every item shares one 16 MiB buffer: payload i is pattern(.., 0) */
    uint8_t *p = pattern(MIB16, 0);
    CHECK(p != NULL);
    bp_batch_item *items = calloc(258, sizeof *items);
    bp_receipt *r = t_receipts(calloc(258, sizeof(bp_receipt)), 258);
    for (size_t i = 0; i < 258; i++) {
        items[i] = (bp_batch_item){"acct:1", "ledger", BP_KIND(1, 1), p, MIB16, NULL};
    }
    CHECK_FAILS(bp_append_batch(s, r, items, 258), BP_ETOOBIG, "batch of 258 events");
    /* payloads that fill an empty segment to the byte: the frames' headers do not fit */
    items[255].len = BP_SEG_END_MAX - BP_SEG_HEADER_SIZE - 255ull * MIB16;
    CHECK_FAILS(bp_append_batch(s, r, items, 256), BP_ETOOBIG, "batch of 256 events carries");
    CHECK_EQ(published(s), r0.global_seq);
    CHECK_EQ(segments(s), 1);
    /* 255 × 16 MiB: a new segment of almost 4 GiB, every event readable */
    CHECK_OK(bp_append_batch(s, r, items, 255));
    CHECK_EQ(segments(s), 2);
    CHECK(frames_within(s, BP_SEG_END_MAX));
    bp_receipt last[3] = {r[0], r[253], r[254]};
    for (int k = 0; k < 3; k++) {
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &last[k].event_id));
        CHECK_EQ(ev->payload_len, MIB16);
        CHECK(memcmp(ev->payload, p, MIB16) == 0);
        bp_event_free(ev);
    }
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &(t_open_opts){.segment_size = BP_DEFAULT_SEGMENT_SIZE});
    CHECK(s != NULL);
    CHECK_EQ(published(s), r[254].global_seq);
    for (int k = 0; k < 3; k++) {
        bp_event *ev = NULL;
        CHECK_OK(bp_get(s, &ev, &last[k].event_id));
        CHECK(memcmp(ev->payload, p, MIB16) == 0);
        bp_event_free(ev);
    }
    /* and the next append goes to a new segment */
    CHECK_OK(bp_append(s, &r0, "acct:0", "ledger", BP_KIND(1, 1), "y", 1));
    CHECK_EQ(segments(s), 3);
    CHECK_OK(bp_store_close(s));
    free(p);
    free(items);
    free(r);
    t_rmdir(dir);
}

int main(void) {
    const char *real = getenv("BP_SEGLIMIT_REAL");
    if (real && *real == '1') {
        RUN(test_real_edge);
    } else {
        RUN(test_rotates);
        RUN(test_refused);
        RUN(test_recovery);
    }
    T_DONE();
}
