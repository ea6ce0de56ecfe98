/* The six tier (store_impl.h): the leading run of sealed segments whose index files are
 * current. Their records, ids, keys and list entries are not in memory (index.h: slots below
 * idx.rbase); every read of them goes through their files, and each answer a file gives is
 * one a reader can check (an id against its frame, an event against what the file said of
 * it). A file that cannot answer is marked (six_bad, s->untier): the answer comes from the
 * segment's SIDX footer meanwhile, and bp_six_repair puts the whole tier back in memory,
 * from the footers (bp_tier_untier_locked). */
#include "format/six.h"
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

uint32_t bp_six_tier_seg(const bp_store *s, uint64_t slot) {
    uint32_t lo = 0, hi = s->n_six;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (bp_six_end_slot(s, mid) <= slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mark_bad(bp_store *s, uint32_t i) {
    __atomic_store_n(&s->segs[i].six_bad, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&s->untier, 1, __ATOMIC_RELEASE);
}

void bp_tier_distrust(bp_store *s, uint32_t segno) {
    pthread_rwlock_rdlock(&s->ilock);
    for (uint32_t i = 0; i < s->n_six; i++)
        if (s->segs[i].segno == segno) mark_bad(s, i);
    pthread_rwlock_unlock(&s->ilock);
}

/* Tier segment i's blocks b0, b1, ... (up to four; BP_SIXB_NBLOCKS ends the list), checked:
 * false (and the segment marked) when one fails. */
static bool usable(bp_store *s, uint32_t i, unsigned b0, unsigned b1, unsigned b2, unsigned b3) {
    bp_segment *g = &s->segs[i];
    bp_six *x = &g->six->x;
    unsigned b[4] = {b0, b1, b2, b3};
    bool ok = !__atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE);
    for (int k = 0; ok && k < 4 && b[k] < BP_SIXB_NBLOCKS; k++)
        ok = bp_six_need(x, b[k]);
    if (!ok) mark_bad(s, i);
    return ok;
}

/* ------------------------------------------------------------ records from the footers */

/* Tier segment i's SIDX footer, decoded into *blk. */
static bp_status read_footer(bp_store *s, uint32_t i, bp_iblock *blk) {
    char path[4200];
    bp_segment_path(s, s->segs[i].segno, "", path, sizeof path);
    bp_file f = BP_FILE_INIT;
    uint64_t size = 0, foff = 0;
    uint32_t flen = 0;
    uint8_t t[BP_TRAILER_SIZE];
    uint8_t *buf = NULL;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (!e) e = bp_pf_size(&f, &size);
    if (!e && (size < BP_SEG_HEADER_SIZE + sizeof t ||
               bp_pf_pread(&f, t, sizeof t, size - sizeof t) != (ssize_t)sizeof t ||
               !bp_trailer_decode(t, size, &foff, &flen)))
        e = -EILSEQ;
    if (!e && !(buf = malloc(flen ? flen : 1))) e = -ENOMEM;
    if (!e && bp_pf_pread(&f, buf, flen, foff) != (ssize_t)flen) e = -EIO;
    bp_pf_close(&f);
    bp_status rc = e ? bp_err_sys(e == -ENOMEM ? BP_ENOMEM : BP_ECORRUPT, e,
                                  "%s: cannot read the SIDX footer", path)
                     : bp_footer_decode(blk, buf, flen, path);
    free(buf);
    return rc;
}

/* Record k of a footer block of tier segment i, numbered the index's way: false when the
 * block names an entity or scope the index does not know, or a slot outside the segment. */
static bool footer_rec(bp_store *s, uint32_t i, const bp_iblock *blk, uint32_t k, uint64_t *slot,
                       bp_irec *out) {
    const bp_irec *r = &blk->recs[k];
    *slot = (blk->seqs ? blk->seqs[k] : blk->first_seq + k) - 1;
    if (r->entity >= blk->n_entities || r->scope >= blk->n_scopes) return false;
    int64_t e =
        bp_index_entity(&s->idx, blk->entities[r->entity].name, blk->entities[r->entity].len);
    int64_t sc =
        bp_strtab_find(&s->idx.scope_names, blk->scopes[r->scope].name, blk->scopes[r->scope].len);
    if (e < 0 || sc < 0 || *slot < s->segs[i].first_slot || *slot >= bp_six_end_slot(s, i))
        return false;
    *out = *r;
    out->segno = s->segs[i].segno;
    out->entity = (uint32_t)e;
    out->scope = (uint32_t)sc;
    return true;
}

/* [i] The record of tier slot from tier segment i's footer (its file cannot answer): 1, 0
 * for a hole, -1 with the error set. */
static int rec_from_footer(bp_store *s, uint32_t i, uint64_t slot, bp_irec *out) {
    bp_iblock blk;
    if (read_footer(s, i, &blk)) return -1;
    int found = 0;
    for (uint32_t k = 0; k < blk.n_recs && !found; k++) {
        uint64_t q;
        bp_irec r;
        if (!footer_rec(s, i, &blk, k, &q, &r)) {
            found = -1;
            bp_err(BP_ECORRUPT, "%s: segment %06u: its SIDX footer does not fit the index", s->dir,
                   s->segs[i].segno);
        } else if (q == slot) {
            *out = r;
            found = 1;
        }
    }
    bp_iblock_free(&blk);
    return found;
}

/* [i] exclusive. The records of slots 0 .. idx.rbase - 1 from the tier's footers (malloc'd;
 * holes zeroed with the segno of the record after them). */
static bp_status tier_records(bp_store *s, bp_irec **out) {
    uint64_t n = s->idx.rbase;
    bp_irec *v = calloc(n ? n : 1, sizeof *v);
    if (!v) return bp_err(BP_ENOMEM, "%s: out of memory indexing the sealed segments", s->dir);
    bp_status rc = BP_OK;
    for (uint32_t i = 0; i < s->n_six && !rc; i++) {
        bp_iblock blk;
        if ((rc = read_footer(s, i, &blk))) break;
        for (uint32_t k = 0; k < blk.n_recs && !rc; k++) {
            uint64_t q;
            bp_irec r;
            if (!footer_rec(s, i, &blk, k, &q, &r) || q >= n)
                rc = bp_err(BP_ECORRUPT, "%s: segment %06u: its SIDX footer does not fit the index",
                            s->dir, s->segs[i].segno);
            else
                v[q] = r;
        }
        bp_iblock_free(&blk);
    }
    uint32_t next = s->n_six ? s->segs[s->n_six - 1].segno : 0;
    for (uint64_t q = n; q-- > 0;) {
        if (BP_IREC_HOLE(&v[q]))
            v[q].segno = next;
        else
            next = v[q].segno;
    }
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    return BP_OK;
}

void bp_tier_untier_locked(bp_store *s) {
    if (!s->n_six) return;
    if (bp_index_cold_all(&s->idx)) return; /* out of memory: the tier stays */
    bp_irec *below = NULL;
    if (s->idx.rbase && tier_records(s, &below)) {
        bp_err_clear(); /* the tier stays: its footers cannot be read */
        return;
    }
    if (bp_index_untier(&s->idx, below)) return; /* out of memory: the tier stays */
    for (uint32_t i = 0; i < s->n_six; i++)
        s->segs[i].six_tier = false;
    s->n_six = 0;
    __atomic_store_n(&s->untier, 0, __ATOMIC_RELEASE);
}

bp_status bp_six_untier(bp_store *s) {
    bool writer = !s->read_only;
    if (writer) pthread_mutex_lock(&s->wmu);
    pthread_rwlock_wrlock(&s->ilock);
    bp_tier_untier_locked(s);
    bool ok = s->n_six == 0;
    pthread_rwlock_unlock(&s->ilock);
    if (writer) pthread_mutex_unlock(&s->wmu);
    return ok ? BP_OK
              : bp_err(BP_ENOMEM,
                       "%s: out of memory (or a SIDX footer that cannot be read) indexing the "
                       "sealed segments",
                       s->dir);
}

/* ------------------------------------------------------------ records in place */

/* A tier record's entity and scope as its index file names them (ENTS, SCOPES and NAMES
 * checked). */
typedef struct rec_names {
    bp_six_ent ent;
    const char *scope;
    uint16_t slen;
} rec_names;

static void names_of(bp_six *six, const bp_six_rec *r, rec_names *out) {
    uint32_t count;
    bp_six_ent_get(six, r->entity, &out->ent);
    bp_six_scope_get(six, r->scope, &out->scope, &out->slen, &count);
}

/* An index record of segment segno from its index file's record r and id. */
static void set_irec(bp_irec *out, uint32_t segno, const bp_six_rec *r, const bp_id *id,
                     uint32_t entity, uint32_t scope) {
    memset(out, 0, sizeof *out);
    out->id = *id;
    out->segno = segno;
    out->offset = r->offset;
    out->frame_len = r->frame_len;
    out->entity = entity;
    out->scope = scope;
    out->kind = r->kind;
}

int bp_store_rec(bp_store *s, uint64_t slot, bp_irec *out, unsigned what) {
    bp_index *x = &s->idx;
    if (slot >= x->rbase) {
        if (slot >= x->n) return 0;
        *out = BP_XREC(x, slot);
        return !BP_IREC_HOLE(out);
    }
    uint32_t i = bp_six_tier_seg(s, slot);
    if (i == s->n_six || slot < s->segs[i].first_slot) return 0; /* between segments */
    bp_six *six = &s->segs[i].six->x;
    bool ids = what & BP_REC_IDS;
    if (usable(s, i, BP_SIXB_RECS, BP_SIXB_SEQS, BP_SIXB_IDS, BP_SIXB_NBLOCKS) &&
        (!ids || usable(s, i, BP_SIXB_ENTS, BP_SIXB_SCOPES, BP_SIXB_NAMES, BP_SIXB_NBLOCKS))) {
        int64_t k = bp_six_find_seq(six, slot + 1);
        if (k < 0 && !bp_six_failed(six)) return 0; /* a hole */
        bp_six_rec r;
        bp_id id;
        int64_t e = UINT32_MAX, sc = UINT32_MAX;
        if (k >= 0) {
            bp_six_rec_get(six, (uint32_t)k, &r);
            bp_six_id(six, (uint32_t)k, &id);
        }
        if (ids && !bp_six_failed(six)) {
            rec_names rn;
            names_of(six, &r, &rn);
            e = bp_index_entity(x, rn.ent.name, rn.ent.len);
            sc = bp_strtab_find(&x->scope_names, rn.scope, rn.slen);
        }
        if (!bp_six_failed(six) && e >= 0 && sc >= 0) { /* (every check of what it read held) */
            set_irec(out, s->segs[i].segno, &r, &id, (uint32_t)e, (uint32_t)sc);
            return 1;
        }
        mark_bad(s, i); /* a check failed, or names the index does not know: not this store's
                           answer */
    }
    return rec_from_footer(s, i, slot, out);
}

bool bp_tier_rec_at(bp_store *s, uint32_t i, uint32_t k, uint64_t slot, bp_irec *r,
                    char scope[BP_COORD_MAX + 1]) {
    if (i >= s->n_six || !usable(s, i, BP_SIXB_RECS, BP_SIXB_SEQS, BP_SIXB_IDS, BP_SIXB_SCOPES) ||
        !usable(s, i, BP_SIXB_NAMES, BP_SIXB_NBLOCKS, BP_SIXB_NBLOCKS, BP_SIXB_NBLOCKS))
        return false;
    bp_six *six = &s->segs[i].six->x;
    bp_six_rec sr;
    bp_six_rec_get(six, k, &sr);
    const char *sname;
    uint16_t slen;
    uint32_t count;
    bp_six_scope_get(six, sr.scope, &sname, &slen, &count);
    bp_id id;
    bp_six_id(six, k, &id);
    if (bp_six_failed(six)) {
        mark_bad(s, i);
        return false;
    }
    if (sr.seq != slot + 1 || slen > BP_COORD_MAX) return false;
    set_irec(r, s->segs[i].segno, &sr, &id, UINT32_MAX, UINT32_MAX);
    memcpy(scope, sname, slen);
    scope[slen] = 0;
    return true;
}

bool bp_tier_names(bp_store *s, uint64_t slot, char entity[BP_COORD_MAX + 1],
                   char scope[BP_COORD_MAX + 1]) {
    uint32_t i = bp_six_tier_seg(s, slot);
    if (i == s->n_six || !usable(s, i, BP_SIXB_RECS, BP_SIXB_SEQS, BP_SIXB_ENTS, BP_SIXB_SCOPES) ||
        !usable(s, i, BP_SIXB_NAMES, BP_SIXB_NBLOCKS, 0, 0))
        return false;
    bp_six *six = &s->segs[i].six->x;
    int64_t k = bp_six_find_seq(six, slot + 1);
    if (k < 0) return false;
    bp_six_rec r;
    bp_six_rec_get(six, (uint32_t)k, &r);
    rec_names rn;
    names_of(six, &r, &rn);
    if (bp_six_failed(six)) mark_bad(s, i);
    if (bp_six_failed(six) || rn.ent.len > BP_COORD_MAX || rn.slen > BP_COORD_MAX) return false;
    memcpy(entity, rn.ent.name, rn.ent.len);
    entity[rn.ent.len] = 0;
    memcpy(scope, rn.scope, rn.slen);
    scope[rn.slen] = 0;
    return true;
}

/* What a tier event's frame says that its index file does not. */
typedef struct tier_fields {
    uint64_t hlc, clock;
    uint16_t flags;
    bp_hash hash;
} tier_fields;

/* [i] shared or [w]. Read and check the frame of tier record r (of entity, when not NULL)
 * into *out: false when it cannot be read, fails its checks or is another entity's. */
static bool tier_frame(bp_store *s, const bp_irec *r, const char *entity, size_t elen,
                       tier_fields *out) {
    bp_segref ref;
    bp_buf buf = {0};
    bp_frame fr;
    bool ok = bp_segment_ref(s, r->segno, &ref) && bp_read_frame(s, r, &ref, &buf, &fr) == BP_OK &&
              (!entity || (fr.f.entity_len == elen && memcmp(fr.f.entity, entity, elen) == 0));
    if (ok) *out = (tier_fields){fr.f.hlc, fr.f.clock, fr.f.flags, fr.event_hash};
    bp_segref_drop(&ref); /* (the frame's strings go with it) */
    bp_buf_free(&buf);
    return ok;
}

bool bp_tier_time(bp_store *s, const bp_irec *r, uint64_t *hlc, uint16_t *flags) {
    tier_fields tf;
    if (!tier_frame(s, r, NULL, 0, &tf)) return false;
    *hlc = tf.hlc;
    *flags = tf.flags;
    return true;
}

bool bp_tier_hlc_within(bp_store *s, uint64_t slot, uint64_t since_ms, uint64_t until_ms,
                        bool *all) {
    uint32_t i = bp_six_tier_seg(s, slot);
    *all = false;
    if (i == s->n_six) return true;
    const bp_six *six = &s->segs[i].six->x;
    uint64_t lo = BP_HLC_WALL_MS(six->min_hlc), hi = BP_HLC_WALL_MS(six->max_hlc);
    if ((since_ms && hi < since_ms) || (until_ms && lo > until_ms)) return false;
    *all = (!since_ms || lo >= since_ms) && (!until_ms || hi <= until_ms);
    return true;
}

/* ------------------------------------------------------------ entity walks */

int bp_tier_head(void *ctx, const char *name, size_t len, uint64_t *clock, bp_hash *head) {
    bp_store *s = ctx;
    for (uint32_t i = s->n_six; i-- > 0;) { /* the newest segment that lists it */
        if (!usable(s, i, BP_SIXB_ENTS, BP_SIXB_POST, BP_SIXB_RECS, BP_SIXB_SEQS)) return 0;
        bp_six *x = &s->segs[i].six->x;
        int64_t e = bp_six_find_ent(x, name, len, NULL);
        bp_six_ent ent;
        bp_six_rec r;
        if (e >= 0) {
            bp_six_ent_get(x, (uint32_t)e, &ent);
            bp_six_rec_get(x, bp_six_post(x, ent.post + ent.count - 1), &r);
        }
        if (bp_six_failed(x)) {
            mark_bad(s, i);
            return 0;
        }
        if (e < 0) continue;
        bp_irec ir;
        tier_fields tf;
        uint64_t want = ent.first_clock + ent.count - 1;
        /* its frame: that entity's, at that clock (and its hash the head) */
        bool ok = r.seq - 1 >= s->segs[i].first_slot && r.seq - 1 < bp_six_end_slot(s, i) &&
                  bp_store_rec(s, r.seq - 1, &ir, 0) > 0 && tier_frame(s, &ir, name, len, &tf) &&
                  tf.clock == want;
        if (ok) {
            *clock = want;
            *head = tf.hash;
        }
        bp_err_clear();
        return ok ? 1 : 0;
    }
    return -1;
}

/* [i] shared. At the walk's k-th event of ent in tier segment i: ask the CPU for the index
 * record and id 2 * BP_READ_AHEAD events on, the frame BP_READ_AHEAD events on (a hint: a
 * record that fails a check is left to the walk to find). */
static void prefetch_ahead(bp_store *s, uint32_t i, const bp_six_ent *ent, uint64_t k) {
    bp_six *x = &s->segs[i].six->x;
    if (k + 2 * BP_READ_AHEAD < ent->count)
        bp_six_prefetch_rec(x, bp_six_post(x, ent->post + (uint32_t)(k + 2 * BP_READ_AHEAD)));
    if (k + BP_READ_AHEAD < ent->count) {
        bp_six_rec r;
        bp_six_rec_get(x, bp_six_post(x, ent->post + (uint32_t)(k + BP_READ_AHEAD)), &r);
        if (!bp_six_failed(x)) bp_segment_prefetch(s, s->segs[i].segno, r.offset, r.frame_len);
    }
}

int bp_tier_walk(bp_store *s, int64_t eid, uint64_t clock,
                 bool (*fn)(void *ctx, uint64_t slot, uint64_t clock, uint16_t kind), void *ctx,
                 bp_tier_hint *hint) {
    const bp_entity_state *es = &s->idx.entities[eid];
    if (!es->tier || clock > es->base + es->tier) return 0;
    const char *name = s->idx.entity_names.s[eid];
    size_t len = s->idx.entity_names.len[eid];
    bp_tier_hint none = BP_TIER_HINT_INIT;
    if (!hint || hint->seg >= s->n_six) hint = &none;
    for (uint32_t i = hint->seg; i < s->n_six; i++) {
        if (!usable(s, i, BP_SIXB_ENTS, BP_SIXB_POST, BP_SIXB_RECS, BP_SIXB_SEQS)) return -1;
        bp_six *x = &s->segs[i].six->x;
        int64_t e =
            i == hint->seg && hint->ent >= 0 ? hint->ent : bp_six_find_ent(x, name, len, NULL);
        hint->seg = i;
        hint->ent = e;
        bp_six_ent ent;
        if (e >= 0) bp_six_ent_get(x, (uint32_t)e, &ent);
        if (bp_six_failed(x)) { /* a check of what it read failed: the file cannot answer */
            mark_bad(s, i);
            return -1;
        }
        if (e < 0 || ent.first_clock + ent.count <= clock) continue;
        uint64_t lo = s->segs[i].first_slot, hi = bp_six_end_slot(s, i);
        for (uint64_t k = clock > ent.first_clock ? clock - ent.first_clock : 0; k < ent.count;
             k++) {
            bp_six_rec r;
            hint->rec = bp_six_post(x, ent.post + (uint32_t)k);
            bp_six_rec_get(x, hint->rec, &r);
            uint64_t slot = r.seq - 1;
            /* the file's answer must be one of its segment's slots (the reader checks the
             * event it reads there: bp_iter_next) */
            if (bp_six_failed(x) || slot < lo || slot >= hi) {
                mark_bad(s, i);
                return -1;
            }
            prefetch_ahead(s, i, &ent, k);
            if (!fn(ctx, slot, ent.first_clock + k, r.kind)) return 0;
        }
    }
    return 0;
}

static bool first_slot(void *ctx, uint64_t slot, uint64_t clock, uint16_t kind) {
    (void)clock;
    (void)kind;
    *(int64_t *)ctx = (int64_t)slot;
    return false;
}

int64_t bp_store_clock_slot(bp_store *s, int64_t eid, uint64_t clock) {
    const bp_entity_state *es = &s->idx.entities[eid];
    if (clock <= es->base || clock > bp_index_head_clock(&s->idx, eid)) return -1;
    if (clock > es->base + es->tier) return es->slots.v[clock - es->base - es->tier - 1];
    int64_t slot = -1;
    if (bp_tier_walk(s, eid, clock, first_slot, &slot, NULL)) return -2;
    return slot;
}

uint64_t bp_store_clock_of(bp_store *s, uint64_t slot) {
    const bp_index *x = &s->idx;
    if (slot >= x->list_base) return bp_index_clock_of(x, (uint32_t)slot);
    if (slot >= x->rbase && !x->entities[BP_XREC(x, slot).entity].tier) /* (listed) */
        return bp_index_clock_of(x, (uint32_t)slot);
    uint32_t lo = bp_six_tier_seg(s, slot);
    if (lo == s->n_six || !usable(s, lo, BP_SIXB_ENTS, BP_SIXB_POST, BP_SIXB_RECS, BP_SIXB_SEQS))
        return 0;
    bp_six *six = &s->segs[lo].six->x;
    int64_t r = bp_six_find_seq(six, slot + 1);
    if (r < 0) {
        if (bp_six_failed(six)) mark_bad(s, lo);
        return 0;
    }
    bp_six_rec rec;
    bp_six_rec_get(six, (uint32_t)r, &rec);
    bp_six_ent ent;
    bp_six_ent_get(six, rec.entity, &ent);
    uint32_t a = 0, b = ent.count; /* its place among the entity's records */
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (bp_six_post(six, ent.post + mid) < (uint32_t)r)
            a = mid + 1;
        else
            b = mid;
    }
    if (a == ent.count || bp_six_post(six, ent.post + a) != (uint32_t)r || bp_six_failed(six)) {
        if (bp_six_failed(six)) mark_bad(s, lo);
        return 0;
    }
    return ent.first_clock + a;
}

/* ------------------------------------------------------------ growing the tier */

/* Map segment g's index file when it is current and lists the events the index has of g. */
static bool attach_current(bp_store *s, bp_segment *g, uint64_t events, uint64_t first) {
    bp_six_pair pair;
    return !bp_six_pair_read(s, g->segno, &pair) &&
           bp_six_attach(s, g, pair.seg_size, pair.frames_end, pair.footer_crc, (uint32_t)events,
                         first + 1);
}

void bp_tier_open(bp_store *s) {
    s->hot_events = BP_HOT_EVENTS;
    s->tier_check = !s->read_only;
}

/* [w] (a reader's refresh). The newest tier segment was attached by a piece (six_end): once
 * it is sealed, published and its index file there, the file replaces the piece and the
 * segment's records past the piece leave memory. True while it waits for that. */
static bool complete_piece(bp_store *s) {
    uint32_t i = s->n_six - 1;
    bp_segment *g = &s->segs[i];
    bp_index *x = &s->idx;
    if (!g->sealed || i + 1 >= s->n_segs) return false; /* (the next segment's follow seals it) */
    uint64_t end = bp_seg_end_slot(s, i);
    if (end > s->published) return true;
    if (x->rbase != g->six_end || x->list_base != x->rbase || end <= g->six_end) return false;
    bp_segment full = *g;
    full.six = NULL;
    if (!attach_current(s, &full, g->six->x.n_recs + (end - g->six_end), g->first_slot))
        return true; /* (its writer writes it right after the seal) */
    const uint64_t bounds[2] = {g->six_end, end};
    pthread_rwlock_wrlock(&s->ilock);
    bool moved = bp_index_retier(x, bounds, 1) == 0;
    if (moved) {
        bp_index_noid_join(x, g->six_end);
        bp_six_detach(g); /* (ilock exclusive: no reader is in it) */
        g->six = full.six;
        g->ids_six = true;
        g->six_end = 0;
        s->tier_gen++;
    }
    pthread_rwlock_unlock(&s->ilock);
    if (!moved) {
        bp_six_detach(&full);
        return false; /* out of memory: the records stay */
    }
    bp_pf_heap_trim();
    return false;
}

bool bp_tier_extend(bp_store *s) {
    if (__atomic_load_n(&s->untier, __ATOMIC_ACQUIRE)) return false;    /* (a repair first) */
    if (__atomic_load_n(&s->compacting, __ATOMIC_ACQUIRE)) return true; /* (after it) */
    if (s->n_six && s->segs[s->n_six - 1].six_end && complete_piece(s)) return true;
    const bp_index *x = &s->idx;
    uint32_t i = s->n_six, j = i;
    if (x->rbase != x->list_base || i + 1 >= s->n_segs || s->segs[i].first_slot != x->rbase)
        return false;
    if (!s->segs[i].sealed) return false; /* ([w]: only this thread changes segs) */
    if (s->idx.n - s->segs[i].first_slot <= s->hot_events) return false;
    if (bp_seg_end_slot(s, i) > s->published) return true;
    bool again = false;
    pthread_rwlock_wrlock(&s->ilock); /* (a mapping made here is seen by readers at once) */
    for (; j + 1 < s->n_segs; j++) {  /* never the newest: it grows */
        bp_segment *g = &s->segs[j];
        uint64_t end = bp_seg_end_slot(s, j), first = end, events = 0;
        if (!g->sealed || __atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE)) break;
        if (x->n - g->first_slot <= s->hot_events) break; /* (what stays is the newest) */
        if (end > s->published) { /* (checked first: an append may call this again and again) */
            again = true;
            break;
        }
        for (uint64_t q = g->first_slot; q < end; q++)
            if (!BP_IREC_HOLE(&BP_XREC(x, q))) {
                if (first == end) first = q;
                events++;
            }
        if (!events) break;
        /* its index file: a writer whose seal could not write it (it counted the failure)
         * writes it again now */
        bool tried = s->read_only;
        while (!g->six && !attach_current(s, g, events, first)) {
            if (tried) break;
            bp_six_write_seg(s, j);
            tried = true;
        }
        if (!g->six) break;
    }
    uint64_t *bounds = j > i ? malloc(((size_t)(j - i) + 1) * sizeof *bounds) : NULL;
    for (uint32_t k = i; bounds && k <= j; k++)
        bounds[k - i] = k < j ? s->segs[k].first_slot : bp_seg_end_slot(s, j - 1);
    bool moved = bounds && bp_index_retier(&s->idx, bounds, j - i) == 0;
    if (moved) {
        for (uint32_t k = i; k < j; k++)
            s->segs[k].six_tier = s->segs[k].ids_six = true;
        s->n_six = j;
    }
    pthread_rwlock_unlock(&s->ilock);
    free(bounds);
    if (moved) bp_pf_heap_trim(); /* (what the records held goes back to the system) */
    return again;
}

void bp__store_tier(bp_store *s, uint32_t *n_six, uint64_t *piece_end) {
    pthread_rwlock_rdlock(&s->ilock);
    *n_six = s->n_six;
    *piece_end = s->n_six ? s->segs[s->n_six - 1].six_end : 0;
    pthread_rwlock_unlock(&s->ilock);
}
