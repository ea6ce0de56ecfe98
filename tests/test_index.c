/* The in-memory index with the seq holes compaction leaves: holes take no entry in the id
 * table, so its size and the probes of its lookups follow the events, not the seqs, both
 * when events and holes are inserted one by one (appends, recovery) and when blocks with
 * seqs are loaded (a checkpoint, then segment footers: open); every event is found at its
 * slot, and an all-zero id (the id of every hole) is not found; and a store compacted to
 * one event in ten opens (with its checkpoint, from its footers) with the same table. */
#include "t.h"
#include "store/store_impl.h"

#include <stdio.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) { /* xorshift64*: deterministic ids */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* The segment event seq is in: a checkpoint's block spans several. */
static uint32_t seg_of(uint64_t seq) {
    return 1 + (uint32_t)(seq / 50000);
}

static bp_irec rec_for(uint64_t seq) {
    bp_irec r;
    memset(&r, 0, sizeof r);
    uint64_t a = rng(), b = rng();
    memcpy(r.id.b, &a, 8);
    memcpy(r.id.b + 8, &b, 8);
    r.hlc = seq;
    r.segno = seg_of(seq);
    r.offset = 48;
    r.frame_len = 100;
    r.kind = 1;
    return r;
}

/* Insert one event at seq (holes before it), entity e<k>. */
static int add_event(bp_index *x, uint64_t seq, uint32_t entities) {
    if (bp_index_holes(x, seq - 1, seg_of(seq))) return -1;
    bp_irec r = rec_for(seq);
    char e[32];
    int el = snprintf(e, sizeof e, "e%u", (unsigned)(seq % entities));
    bp_hash h;
    memset(&h, (int)(seq & 0xFF), sizeof h);
    return bp_index_insert(x, &r, e, (size_t)el, "s", 1, &h, NULL, 0);
}

/* Is slot in one of the ranges whose ids the table leaves out (segment index files answer)? */
static bool in_noid(const bp_index *x, uint64_t slot) {
    for (uint32_t r = 0; r < x->n_noid; r++)
        if (slot >= x->noid[2 * r] && slot < x->noid[2 * r + 1]) return true;
    return false;
}

/* The table holds exactly the events but those of the noid ranges, each found at its slot,
 * lookups stay short, and the id of a hole is found nowhere. */
static void check_table(const bp_index *x, const char *what) {
    uint64_t entries = 0, probes = 0;
    bp_index_idtab_stats(x, &entries, &probes);
    fprintf(stderr, "  %s: %llu seqs, %llu holes, %llu entries, %llu probes, table %llu\n", what,
            (unsigned long long)x->n, (unsigned long long)x->holes, (unsigned long long)entries,
            (unsigned long long)probes, (unsigned long long)x->idcap);
    CHECK_EQ(entries, x->n - x->holes - x->noids);
    CHECK(probes <= 3 * entries); /* load <= 1/2: about 1.5 probes per entry expected */
    CHECK(x->idcap <= 4 * entries + 1024);
    /* the six tier's events (below rbase, records in their files) are all noid */
    uint64_t noids = 0;
    for (uint32_t e = 0; e < x->entity_names.n; e++)
        noids += x->entities[e].tier;
    for (uint64_t s = 0; s < x->rbase; s++)
        CHECK(in_noid(x, s));
    for (uint64_t s = x->rbase; s < x->n; s++)
        noids += in_noid(x, s) && !BP_IREC_HOLE(&BP_XREC(x, s));
    CHECK_EQ(noids, x->noids);
    for (uint64_t s = x->rbase; s < x->n; s++) {
        const bp_irec *r = &BP_XREC(x, s);
        if (BP_IREC_HOLE(r)) continue;
        if (in_noid(x, s)) {
            CHECK_EQ(bp_index_find_id(x, &r->id), -1);
            continue;
        }
        if (bp_index_find_id(x, &r->id) != (int64_t)s) {
            CHECK_EQ(bp_index_find_id(x, &r->id), s);
        }
    }
    bp_id zero;
    memset(&zero, 0, sizeof zero);
    CHECK_EQ(bp_index_find_id(x, &zero), -1);
    for (uint64_t s = x->rbase + 1; s < x->n; s++) /* holes too: open looks segments up */
        if (BP_XREC(x, s).segno < BP_XREC(x, s - 1).segno)
            CHECK_EQ(BP_XREC(x, s).segno, BP_XREC(x, s - 1).segno);
}

/* One event in every `every` seqs, inserted one at a time (holes then the event), checked at
 * each power of ten of holes up to max_holes. */
static void test_inserted(void) {
    const uint64_t every = 10, max_holes = 1000000;
    bp_index x;
    CHECK_OK(bp_index_init(&x));
    uint64_t seq = 0, next_check = 1000;
    while (x.holes < max_holes) {
        seq += every;
        if (add_event(&x, seq, 1000)) {
            CHECK(!"insert failed");
        }
        if (x.holes >= next_check) {
            check_table(&x, "inserted");
            if (t_failures) break;
            next_check *= 10;
        }
    }
    bp_index_free(&x);
}

/* What open does: a checkpoint's block with seqs (the compacted range, holes between), then
 * the footer of each segment after it (dense), each load growing the table. */
static void test_loaded(void) {
    const uint64_t every = 10, max_holes = 1000000;
    const int f0 = t_failures;
    for (uint64_t holes = 1000; holes <= max_holes && t_failures == f0; holes *= 10) {
        bp_index a, b;
        CHECK_OK(bp_index_init(&a));
        CHECK_OK(bp_index_init(&b));
        uint64_t seq = 0;
        while (a.holes < holes) {
            seq += every;
            if (add_event(&a, seq, 1000)) CHECK(!"insert failed");
        }
        uint64_t ck = a.n;
        bp_iblock blk;
        CHECK_OK(bp_index_export(&a, 0, ck, &blk)); /* the checkpoint: with seqs */
        CHECK(blk.seqs != NULL);
        CHECK_OK(bp_index_load_block(&b, &blk));
        bp_index_block_release(&blk);
        check_table(&b, "checkpoint");
        /* then dense footers, each as large as everything before it (the table doubles) */
        for (int k = 0; k < 2 && t_failures == f0; k++) {
            uint64_t from = a.n, upto = a.n + (a.n - a.holes);
            while (a.n < upto)
                if (add_event(&a, a.n + 1, 1000)) CHECK(!"insert failed");
            CHECK_OK(bp_index_export(&a, from, a.n, &blk));
            CHECK(blk.seqs == NULL);
            CHECK_OK(bp_index_load_block(&b, &blk));
            bp_index_block_release(&blk);
            check_table(&b, "footer");
        }
        CHECK_EQ(b.n, a.n);
        CHECK_EQ(b.holes, a.holes);
        /* and appends after open */
        for (int k = 0; k < 1000 && t_failures == f0; k++)
            if (add_event(&b, b.n + 1, 1000)) CHECK(!"insert failed");
        check_table(&b, "appended");
        bp_index_free(&a);
        bp_index_free(&b);
    }
}

/* The stores of these tests: 1 MiB segments, appends synced at close only (BP_NO_SYNC). */
static const t_open_opts OPTS = {.segment_size = 1u << 20, .durability = {.mode = BP_DUR_NONE}};

/* The store's id table after open: the events, no hole; every kept event is found by id, a
 * removed one and the zero id are not. */
static void check_store(bp_store *s, const bp_id *ids, uint64_t n, uint32_t keep_every,
                        const char *what) {
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK_EQ(st.events, n / keep_every);
    CHECK_EQ(s->idx.holes, n - n / keep_every);
    check_table(&s->idx, what);
    for (uint64_t i = 0; i < n; i++) {
        bp_event *ev = NULL;
        bp_status rc = bp_get(s, &ev, &ids[i]);
        if ((i + 1) % keep_every == 0) { /* the newest of its entity's events is kept */
            CHECK_OK(rc);
            CHECK_EQ(ev->global_seq, i + 1);
            bp_event_free(ev);
        } else {
            CHECK_EQ(rc, BP_ENOTFOUND);
        }
    }
    bp_id zero;
    memset(&zero, 0, sizeof zero);
    bp_event *ev = NULL;
    CHECK_EQ(bp_get(s, &ev, &zero), BP_ENOTFOUND);
}

static void test_open_compacted(void) {
    const uint64_t n = 100000;
    const uint32_t per = 10; /* events per entity, in a row: keep_last 1 keeps every tenth */
    const char *dir = t_dir("index-holes");
    bp_store *s = t_open(dir, &OPTS);
    bp_id *ids = malloc(n * sizeof *ids);
    CHECK(ids != NULL);
    for (uint64_t i = 0; i < n; i++) {
        char e[32];
        snprintf(e, sizeof e, "e%llu", (unsigned long long)(i / per));
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append(s, &r, e, "s", BP_KIND(1, 1), "x", 1) != BP_OK) CHECK_OK(1);
        ids[i] = r.event_id;
    }
    bp_compact_options o = BP_COMPACT_OPTIONS_INIT;
    o.keep_last = 1;
    bp_compact_report rep = BP_COMPACT_REPORT_INIT;
    CHECK_OK(bp_compact(s, &rep, &o));
    CHECK_EQ(rep.events_removed, n - n / per);
    check_store(s, ids, n, per, "compacted");
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, &OPTS); /* with the checkpoint */
    check_store(s, ids, n, per, "open with checkpoint");
    CHECK_OK(bp_store_close(s));
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/index.ckpt", dir);
    CHECK_EQ(unlink(ck), 0);
    s = t_open(dir, &OPTS); /* from the segments' footers */
    check_store(s, ids, n, per, "open from footers");
    CHECK_OK(bp_store_close(s));
    free(ids);
    t_rmdir(dir);
}

int main(void) {
    RUN(test_inserted);
    RUN(test_loaded);
    RUN(test_open_compacted);
    T_DONE();
}
