/* verify: re-read every segment and check every CRC, hash, chain and footer. */
#include "format/six.h"
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Invariant: flagged[k] (k < n_flagged) says entity chains.names.s[k] had a problem
 * reported to on_problem already. */
typedef struct vstate {
    bp_store *s;
    bool moved; /* a read-only handle's files moved under its view during this pass */
    bp_verify_report *rep;
    bp_chains chains;
    uint64_t next_seq, limit;
    bp_problem_fn on_problem;
    void *ctx;
    uint8_t *flagged;
    size_t n_flagged;
    uint64_t upto;       /* seqs <= upto may be missing (compaction) */
    uint32_t last_segno; /* segments <= it are compacted */
} vstate;

/* Count a problem; the first one goes into the report, and on_problem hears of every problem
 * that is no entity's and of the first one of each entity (k: its chain, or -1). */
static void vproblem(vstate *v, int64_t k, const char *fmt, va_list ap) {
    /* found on files that are no longer the view's (a writer compacted meanwhile): not a
     * problem of the store; the pass is made again (bp_store_verify) */
    if (v->moved || (v->moved = bp_live_moved(v->s))) return;
    char msg[sizeof v->rep->first_problem];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (!v->rep->problems++) memcpy(v->rep->first_problem, msg, sizeof msg);
    if (!v->on_problem) return;
    if (k >= 0) {
        if ((size_t)k >= v->n_flagged) {
            size_t n = (size_t)k * 2 + 16;
            uint8_t *f = realloc(v->flagged, n);
            if (!f) return; /* the count and the report still have it */
            memset(f + v->n_flagged, 0, n - v->n_flagged);
            v->flagged = f;
            v->n_flagged = n;
        }
        if (v->flagged[k]) return;
        v->flagged[k] = 1;
        v->on_problem(v->ctx, v->chains.names.s[k], msg);
    } else {
        v->on_problem(v->ctx, NULL, msg);
    }
}

__attribute__((format(printf, 2, 3))) static void problem(vstate *v, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vproblem(v, -1, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void eproblem(vstate *v, int64_t k, const char *fmt,
                                                           ...) {
    va_list ap;
    va_start(ap, fmt);
    vproblem(v, k, fmt, ap);
    va_end(ap);
}

/* Check one decoded frame against the running chains. */
static bp_status check_event(vstate *v, bp_store *s, uint32_t segno, uint64_t pos, uint32_t flen,
                             const bp_frame *fr) {
    const bp_event_fields *f = &fr->f;
    bool compacted = segno <= v->last_segno;
    if (compacted ? f->global_seq < v->next_seq || f->global_seq > v->upto
                  : f->global_seq != v->next_seq)
        problem(v, "segment %06u offset %llu: global_seq %llu, expected %s%llu", segno,
                (unsigned long long)pos, (unsigned long long)f->global_seq,
                compacted ? "at least " : "", (unsigned long long)v->next_seq);
    v->next_seq = f->global_seq + 1;
    static const bp_hash zero;
    int64_t k = bp_chains_find(&v->chains, f->entity, f->entity_len);
    if (k < 0 && (k = bp_chains_add(&v->chains, f->entity, f->entity_len, 0, &zero)) < 0)
        return bp_err(BP_ENOMEM, "verify: out of memory");
    bp_hash h;
    bp_event_hash(f, &h);
    if (memcmp(h.b, fr->event_hash.b, 32) != 0)
        eproblem(v, k, "segment %06u offset %llu: event hash mismatch (entity '%.*s' clock %llu)",
                 segno, (unsigned long long)pos, (int)f->entity_len, f->entity,
                 (unsigned long long)f->clock);
    if (f->clock != v->chains.clock[k] + 1)
        eproblem(v, k, "segment %06u offset %llu: entity '%.*s' clock %llu after %llu", segno,
                 (unsigned long long)pos, (int)f->entity_len, f->entity,
                 (unsigned long long)f->clock, (unsigned long long)v->chains.clock[k]);
    if (memcmp(f->prev_hash.b, v->chains.head[k].b, 32) != 0)
        eproblem(v, k,
                 "segment %06u offset %llu: entity '%.*s' clock %llu: prev_hash does not match "
                 "its previous event",
                 segno, (unsigned long long)pos, (int)f->entity_len, f->entity,
                 (unsigned long long)f->clock);
    /* the in-memory index, which every read goes through, must point at this frame */
    bool indexed = false;
    pthread_rwlock_rdlock(&s->ilock);
    if (f->global_seq >= 1 && f->global_seq - 1 < s->idx.rbase) {
        indexed = true; /* the six tier's: its index file is checked record by record below */
    } else if (f->global_seq >= 1 && f->global_seq <= s->idx.n) {
        const bp_irec *r = &BP_XREC(&s->idx, f->global_seq - 1);
        indexed = r->segno == segno && r->offset == pos && r->frame_len == flen &&
                  r->kind == f->kind && r->hlc == f->hlc && memcmp(r->id.b, f->event_id.b, 16) == 0;
    }
    pthread_rwlock_unlock(&s->ilock);
    if (!indexed)
        eproblem(v, k,
                 "segment %06u offset %llu: the index's record of seq %llu does not match "
                 "this frame",
                 segno, (unsigned long long)pos, (unsigned long long)f->global_seq);
    v->chains.clock[k] = f->clock;
    v->chains.head[k] = fr->event_hash;
    v->rep->events++;
    return BP_OK;
}

/* A window over a segment file: verify reads frames through it, so memory
 * stays bounded whatever the segment size. Invariant: buf holds the file's
 * bytes [off, off + len). */
typedef struct window {
    bp_file f;
    uint64_t size; /* file size */
    uint8_t *buf;
    size_t cap, len;
    uint64_t off;
} window;

#define VERIFY_WINDOW (4u << 20)

/* Make [at, at + need) (clipped to the end) available: *out points to byte
 * at, *avail bytes from there are in the window. */
static bp_status window_at(window *w, bp_store *s, uint32_t segno, uint64_t at, size_t need,
                           const uint8_t **out, size_t *avail) {
    uint64_t left = w->size - at;
    if (need > left) need = (size_t)left;
    if (at < w->off || at + need > w->off + w->len) {
        size_t want = need > VERIFY_WINDOW ? need : VERIFY_WINDOW;
        if (want > left) want = (size_t)left;
        if (want > w->cap) {
            uint8_t *nb = realloc(w->buf, want ? want : 1);
            if (!nb) return bp_err(BP_ENOMEM, "verify: out of memory");
            w->buf = nb;
            w->cap = want;
        }
        ssize_t got = bp_pf_pread(&w->f, w->buf, want, at);
        if (got < 0)
            return bp_err_sys(BP_EIO, (int)got, "%s: segment %06u: read failed", s->dir, segno);
        w->off = at;
        w->len = (size_t)got;
    }
    *avail = (size_t)(w->off + w->len - at);
    *out = w->buf + (at - w->off);
    return BP_OK;
}

/* A sealed segment's index file, checked frame by frame against the segment. A missing,
 * damaged (CRC) or stale one (it names another file) is a cache miss, not a problem: readers
 * fall back the same way. One whose checks pass but that disagrees with a frame would send
 * reads to the wrong events: that is a problem. */
typedef struct sixcheck {
    bool on;
    bp_six x;
    uint8_t *buf;
    uint32_t *seen;   /* per index entity: its records met so far */
    uint32_t *scount; /* per scope: records met */
    uint32_t *kcount; /* per KINDS entry: records met */
    uint64_t keyed;   /* frames with an idempotency key */
    bool bad;         /* one problem reported for this file (the first) */
} sixcheck;

static void six_load(sixcheck *c, bp_store *s, uint32_t segno, window *w, uint64_t foff) {
    memset(c, 0, sizeof *c);
    char path[4200];
    bp_six_path(s, segno, path, sizeof path);
    size_t len = 0;
    uint8_t crc[4];
    bp_six_pair want = {segno, {0}, w->size, foff, 0};
    memcpy(want.uuid, s->ident.uuid, 16);
    if (bp_pf_pread(&w->f, crc, 4, w->size - BP_TRAILER_SIZE - 4) != 4) return;
    want.footer_crc = bp_get_be32(crc);
    if (bp_pf_read_all(path, &c->buf, &len)) return;
    if (bp_six_open(&c->x, c->buf, len, path) || !bp_six_pair_eq(&c->x.pair, &want) ||
        bp_six_check_all(&c->x, path)) {
        bp_err_clear();
        free(c->buf);
        c->buf = NULL;
        return;
    }
    c->seen = calloc(c->x.n_ents, sizeof *c->seen);
    c->scount = calloc(c->x.n_scopes, sizeof *c->scount);
    c->kcount = calloc(c->x.n_kinds, sizeof *c->kcount);
    c->on = c->seen && c->scount && c->kcount;
}

static void six_free(sixcheck *c) {
    free(c->buf);
    free(c->seen);
    free(c->scount);
    free(c->kcount);
    memset(c, 0, sizeof *c);
}

__attribute__((format(printf, 4, 5))) static void
six_problem(vstate *v, sixcheck *c, uint32_t segno, const char *fmt, ...) {
    if (c->bad) return;
    c->bad = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    problem(v, "segment %06u: index file %06u.fidx: %s", segno, segno, msg);
}

/* Record i of the index file against the frame at pos. */
static void six_frame(vstate *v, sixcheck *c, uint32_t segno, uint32_t i, uint64_t pos, uint32_t fl,
                      const bp_event_fields *f) {
    if (!c->on || c->bad) return;
    bp_six *x = &c->x;
    if (i >= x->n_recs) {
        six_problem(v, c, segno, "lists %u records, the segment holds more", x->n_recs);
        return;
    }
    bp_six_rec r;
    bp_six_rec_get(x, i, &r);
    bp_six_ent e;
    bp_six_ent_get(x, r.entity, &e);
    const char *sn;
    uint16_t sl;
    uint32_t scount;
    bp_six_scope_get(x, r.scope, &sn, &sl, &scount);
    uint32_t k = c->seen[r.entity];
    bool keyed_ok = true;
    if (f->idem_len) {
        uint32_t lo, hi;
        bp_six_idem_range(x, bp_six_key_hash(f->idem_key, f->idem_len), &lo, &hi);
        keyed_ok = false;
        for (uint32_t j = lo; j < hi && !keyed_ok; j++)
            keyed_ok = bp_six_idem_rec(x, j) == i;
        c->keyed++;
    }
    if (r.offset != pos || r.frame_len != fl || r.seq != f->global_seq || r.kind != f->kind ||
        e.len != f->entity_len || memcmp(e.name, f->entity, e.len) != 0 || sl != f->scope_len ||
        memcmp(sn, f->scope, sl) != 0 || k >= e.count || e.first_clock + k != f->clock ||
        bp_six_post(x, e.post + k) != i || bp_six_find_id(x, &f->event_id) != (int64_t)i ||
        f->hlc < x->min_hlc || f->hlc > x->max_hlc || !keyed_ok ||
        bp_six_find_kind(x, r.kind) < 0) {
        six_problem(v, c, segno, "record %u does not match the frame at offset %llu", i,
                    (unsigned long long)pos);
        return;
    }
    c->seen[r.entity]++;
    c->scount[r.scope]++;
    c->kcount[bp_six_find_kind(x, r.kind)]++; /* (listed: checked above) */
}

static void six_end(vstate *v, sixcheck *c, uint32_t segno, uint32_t nrec) {
    if (!c->on || c->bad) return;
    bp_six *x = &c->x;
    if (nrec != x->n_recs) {
        six_problem(v, c, segno, "lists %u records, the segment holds %u", x->n_recs, nrec);
        return;
    }
    for (uint32_t sc = 0; sc < x->n_scopes; sc++) {
        const char *sn;
        uint16_t sl;
        uint32_t count;
        bp_six_scope_get(x, sc, &sn, &sl, &count);
        if (count != c->scount[sc]) {
            six_problem(v, c, segno, "scope '%.*s' counts %u records, the segment holds %u",
                        (int)sl, sn, count, c->scount[sc]);
            return;
        }
    }
    for (uint32_t k = 0; k < x->n_kinds; k++) { /* (the counts add up to n_recs: checked) */
        uint16_t kind;
        uint32_t count;
        bp_six_kind_get(x, k, &kind, &count);
        if (count != c->kcount[k]) {
            six_problem(v, c, segno, "kind %u counts %u records, the segment holds %u", kind, count,
                        c->kcount[k]);
            return;
        }
    }
    if (c->keyed != x->n_idems)
        six_problem(v, c, segno, "lists %u idempotency keys, the segment holds %llu", x->n_idems,
                    (unsigned long long)c->keyed);
}

/* Verify segment segno, opened here (cmu is held: no compaction replaces it meanwhile). */
static bp_status verify_segment(vstate *v, bp_store *s, uint32_t segno) {
    /* past the compacted segments: the seqs their compaction removed at the end are holes */
    if (segno > v->last_segno && v->next_seq <= v->upto) v->next_seq = v->upto + 1;
    window w = {BP_FILE_INIT, 0, NULL, 0, 0, 0};
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    int e = bp_pf_open(&w.f, NULL, path, BP_O_READ);
    if (e) return bp_err_sys(BP_EIO, e, "%s: segment %06u: cannot open %s", s->dir, segno, path);
    e = bp_pf_size(&w.f, &w.size);
    if (e) {
        bp_pf_close(&w.f);
        return bp_err_sys(BP_EIO, e, "%s: segment %06u: stat failed", s->dir, segno);
    }
    char what[64];
    snprintf(what, sizeof what, "segment %06u", segno);
    bp_status rc = BP_OK;
    size_t avail;
    const uint8_t *p;
    if ((rc = window_at(&w, s, segno, 0, BP_SEG_HEADER_SIZE, &p, &avail))) goto out;
    bp_seg_header h;
    if (bp_seg_header_decode(&h, p, avail, what) || h.segno != segno ||
        memcmp(h.uuid, s->ident.uuid, 16) != 0) {
        problem(v, "segment %06u offset 0: bad segment header", segno);
        goto out;
    }
    uint64_t foff = 0, end = w.size;
    uint32_t flen = 0;
    bp_iblock blk;
    memset(&blk, 0, sizeof blk);
    bool sealed = false;
    if (w.size >= BP_SEG_HEADER_SIZE + BP_TRAILER_SIZE) {
        uint8_t t[BP_TRAILER_SIZE];
        ssize_t got = bp_pf_pread(&w.f, t, sizeof t, w.size - BP_TRAILER_SIZE);
        sealed = got == (ssize_t)sizeof t && bp_trailer_decode(t, w.size, &foff, &flen);
    }
    if (sealed) {
        end = foff;
        uint8_t *fb = malloc(flen);
        ssize_t got = fb ? bp_pf_pread(&w.f, fb, flen, foff) : -ENOMEM;
        if (got != (ssize_t)flen || bp_footer_decode(&blk, fb, flen, what)) {
            problem(v, "segment %06u offset %llu: SIDX footer invalid (%s)", segno,
                    (unsigned long long)foff,
                    got == (ssize_t)flen ? bp_last_error() : "unreadable");
            sealed = false;
        }
        free(fb);
    }
    sixcheck six;
    memset(&six, 0, sizeof six);
    if (sealed) six_load(&six, s, segno, &w, foff);
    uint64_t pos = BP_SEG_HEADER_SIZE;
    uint32_t nrec = 0;
    while (pos < end && v->next_seq <= v->limit) {
        /* the prefix first, then the whole frame it declares */
        if ((rc = window_at(&w, s, segno, pos, BP_FRAME_PREFIX, &p, &avail))) break;
        uint32_t body = bp_frame_body_len(p, avail);
        if (body <= BP_FRAME_MAX_BODY &&
            (rc = window_at(&w, s, segno, pos, BP_FRAME_PREFIX + (size_t)body, &p, &avail)))
            break;
        if (avail > end - pos) avail = (size_t)(end - pos);
        uint32_t fl;
        if (bp_frame_peek(p, avail, &fl) != BP_FRAME_OK) {
            problem(v, "segment %06u offset %llu: frame CRC or length invalid", segno,
                    (unsigned long long)pos);
            break;
        }
        bp_frame fr;
        if (bp_frame_decode(p + BP_FRAME_PREFIX, fl - BP_FRAME_PREFIX, &fr)) {
            problem(v, "segment %06u offset %llu: %s", segno, (unsigned long long)pos,
                    bp_last_error());
            break;
        }
        v->rep->frames++;
        if ((rc = check_event(v, s, segno, pos, fl, &fr))) break;
        six_frame(v, &six, segno, nrec, pos, fl, &fr.f);
        if (sealed) {
            const bp_irec *r = nrec < blk.n_recs ? &blk.recs[nrec] : NULL;
            if (!r || memcmp(r->id.b, fr.f.event_id.b, 16) || r->offset != pos ||
                r->frame_len != fl ||
                (blk.seqs ? blk.seqs[nrec] : blk.first_seq + nrec) != fr.f.global_seq)
                problem(v, "segment %06u: SIDX footer record %u does not match the frame at %llu",
                        segno, nrec, (unsigned long long)pos);
        }
        nrec++;
        pos += fl;
    }
    /* stopped at the end of what this handle's index holds (the limit): the rest of the
     * segment was written since (a writer in this process or another one sealed it, its
     * footer and index file list more): what lies past the limit is not this verify's */
    bool cut = pos < end && v->next_seq > v->limit;
    if (!rc && sealed && !cut && nrec != blk.n_recs)
        problem(v, "segment %06u: SIDX footer lists %u events, the segment holds %u", segno,
                blk.n_recs, nrec);
    if (!rc && !cut && v->next_seq <= v->limit) six_end(v, &six, segno, nrec);
    six_free(&six);
    bp_iblock_free(&blk);
out:
    free(w.buf);
    bp_pf_close(&w.f);
    return rc;
}

/* index.ckpt, when there is one, must describe the segments: every record it lists must be
 * the in-memory index's record of the same event (checked against the frames above). */
static void verify_checkpoint(vstate *v, bp_store *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/index.ckpt", s->dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = bp_pf_read_all(path, &buf, &len);
    if (e == -ENOENT) return;
    if (e) {
        char eb[BP_ERRNO_TEXT_MAX];
        problem(v, "%s: unreadable (%s)", path, bp_errno_text(-e, eb));
        return;
    }
    bp_ckpt_meta m;
    bp_iblock blk;
    if (bp_ckpt_decode(&m, &blk, buf, len, path)) {
        /* a damaged cache, not damaged data: open ignores it (its report says why), rebuilds
         * from the segments, and the next close writes a good one */
        free(buf);
        return;
    }
    if (memcmp(m.uuid, s->ident.uuid, 16) != 0) problem(v, "%s: belongs to another store", path);
    uint32_t bad = 0, first_bad = 0;
    pthread_rwlock_rdlock(&s->ilock);
    for (uint32_t i = 0; i < blk.n_recs; i++) {
        uint64_t seq = blk.seqs ? blk.seqs[i] : blk.first_seq + i;
        const bp_irec *c = &blk.recs[i];
        if (seq > v->limit) break; /* written since this handle's view (a writer's close) */
        bp_irec r;
        bool tier = seq && seq - 1 < s->idx.rbase; /* (its hlc: not in memory) */
        if (!seq || bp_store_rec(s, seq - 1, &r, 0) <= 0 || r.segno != c->segno ||
            r.offset != c->offset || r.frame_len != c->frame_len || r.kind != c->kind ||
            (!tier && r.hlc != c->hlc) || memcmp(r.id.b, c->id.b, 16) != 0) {
            if (!bad++) first_bad = i;
        }
    }
    pthread_rwlock_unlock(&s->ilock);
    bp_err_clear();
    if (bad)
        problem(v, "%s: %u record(s) do not match the segments, the first for seq %llu", path, bad,
                (unsigned long long)(blk.seqs ? blk.seqs[first_bad] : blk.first_seq + first_bad));
    bp_iblock_free(&blk);
    free(buf);
}

/* One pass over the files as this handle's view has them: *moved when a problem it found came
 * after the files moved under the view (then none is counted or told from there on). */
static bp_status verify_once(bp_store *s, bp_verify_report *out, const bp_verify_options *opts,
                             bool *moved) {
    bp_progress_fn progress = opts->progress;
    void *progress_ctx = opts->progress_ctx;
    BP_OUT_RESET(out, bp_verify_report);
    vstate v;
    memset(&v, 0, sizeof v);
    v.s = s;
    v.rep = out;
    v.on_problem = opts->on_problem;
    v.ctx = opts->problem_ctx;
    v.next_seq = 1;
    /* no compaction while verify reads the segments by name: it would replace them under the
     * same names (the writer only appends). One segment file open at a time. */
    pthread_mutex_lock(&s->cmu);
    pthread_rwlock_rdlock(&s->ilock);
    v.limit = s->published;
    v.upto = s->anchors.upto;
    v.last_segno = s->anchors.last_segno;
    bp_status rc = BP_OK;
    /* chains start at their anchors: the first kept event of each must continue one */
    for (uint32_t i = 0; i < s->anchors.n && !rc; i++) {
        const bp_anchor *a = &s->anchors.v[i];
        if (bp_chains_add(&v.chains, a->entity, a->len, a->clock, &a->hash) < 0)
            rc = bp_err(BP_ENOMEM, "verify: out of memory");
    }
    uint32_t n = s->n_segs;
    uint32_t *segnos = malloc((n ? n : 1) * sizeof *segnos);
    uint64_t *sizes = malloc((n ? n : 1) * sizeof *sizes);
    uint64_t total = 0, done = 0;
    for (uint32_t i = 0; segnos && sizes && i < n; i++)
        segnos[i] = s->segs[i].segno;
    pthread_rwlock_unlock(&s->ilock);
    for (uint32_t i = 0; segnos && sizes && i < n; i++) { /* sizes for progress only */
        char path[4200];
        bp_segment_path(s, segnos[i], "", path, sizeof path);
        if (bp_pf_path_size(path, &sizes[i])) sizes[i] = 0;
        total += sizes[i];
    }
    if (!segnos || !sizes) rc = bp_err(BP_ENOMEM, "verify: out of memory");
    if (progress && !rc) progress(progress_ctx, 0, total);
    for (uint32_t i = 0; i < n && !rc; i++) {
        rc = verify_segment(&v, s, segnos[i]);
        out->segments++;
        done += sizes[i];
        if (progress && !rc) progress(progress_ctx, done, total);
    }
    if (!rc && v.next_seq <= v.limit && v.limit > v.upto)
        problem(&v, "events %llu..%llu are indexed but missing from the segments",
                (unsigned long long)(v.next_seq > v.upto ? v.next_seq : v.upto + 1),
                (unsigned long long)v.limit);
    if (!rc) verify_checkpoint(&v, s);
    pthread_mutex_unlock(&s->cmu);
    out->entities = v.chains.names.n;
    *moved = v.moved;
    bp_chains_free(&v.chains);
    free(v.flagged);
    free(segnos);
    free(sizes);
    return rc;
}

/* Passes a read-only handle makes when a writer in another process compacts (or a new writer
 * opens) while verify reads the files by name: such a change makes the files disagree with the
 * view the pass checks them against, so what disagrees after it is not counted as a problem
 * and the pass is made again, on a new view. */
#define VERIFY_PASSES 3

bp_status bp_store_verify(bp_store *s, bp_verify_report *out, const bp_verify_options *opts) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_store_verify: NULL argument");
    static const bp_verify_options none = BP_VERIFY_OPTIONS_INIT;
    if (!opts) opts = &none;
    BP_SIZE_CHECK("bp_store_verify", opts, bp_verify_options, BP_VERIFY_OPTIONS_INIT);
    BP_SIZE_CHECK("bp_store_verify", out, bp_verify_report, BP_VERIFY_REPORT_INIT);
    bp_status rc = BP_OK;
    for (int pass = 1;; pass++) {
        /* a read-only handle checks the files against a view of them as they are: when the
         * writer compacted since its view was made, a new one first (bp_store_refresh) */
        if (s->read_only && bp_live_moved(s) && (rc = bp_store_refresh(s, NULL))) return rc;
        bool moved = false; /* (a clean pass is one whatever moved: every file matched) */
        rc = verify_once(s, out, opts, &moved);
        if (rc && rc != BP_ENOMEM && !moved) moved = bp_live_moved(s); /* (a file it named gone) */
        if (!moved) break;
        if (pass == VERIFY_PASSES)
            return bp_err(BP_EBUSY,
                          "%s: the writer compacted the store (or a new writer opened it) "
                          "during each of %d passes of verify, so what it read cannot be "
                          "told from damage; nothing is known; run it again",
                          s->dir, VERIFY_PASSES);
        bp_err_clear();
        bp_pf_sleep_us(150000); /* (a refresh tries a new view at most every 100 ms) */
    }
    if (rc) return rc;
    if (out->problems)
        return bp_err(BP_ECORRUPT, "%s: verify found %llu problem(s); first: %s", s->dir,
                      (unsigned long long)out->problems, out->first_problem);
    return BP_OK;
}
