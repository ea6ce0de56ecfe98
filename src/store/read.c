/* Reads: get by id, iterators over entity/scope/kind/region. */
#include "store/store_impl.h"

#include <errno.h>
#include <stdlib.h>

bp_status bp_read_frame(bp_store *s, const bp_irec *r, bp_segref *ref, bp_buf *buf, bp_frame *out) {
    const uint8_t *p;
    size_t got;
    const bp_segfile *f = ref->sf;
    ref->mapped = false;
    if (!f)
        return bp_err_sys(BP_EIO, ref->err ? ref->err : -EBADF,
                          "%s: segment %06u: cannot open it for reading (to read offset %u)",
                          s->dir, r->segno, r->offset);
    if (f->p && (uint64_t)r->offset + r->frame_len <= f->len) {
        p = f->p + r->offset;
        got = r->frame_len;
        ref->mapped = true;
    } else if (f->fd < 0) { /* mapped whole: the frame is past the end of the file */
        p = NULL;
        got = 0;
    } else {
        buf->len = 0;
        if (bp_buf_reserve(buf, r->frame_len)) return bp_err(BP_ENOMEM, "read: out of memory");
        bp_file pf = {f->fd, NULL, -1};
        ssize_t n = bp_pf_pread(&pf, buf->data, r->frame_len, r->offset);
        if (n < 0)
            return bp_err_sys(BP_EIO, (int)n, "%s: segment %06u offset %u: read failed", s->dir,
                              r->segno, r->offset);
        p = buf->data;
        got = (size_t)n;
    }
    uint32_t flen;
    if (got != r->frame_len || bp_frame_peek(p, got, &flen) != BP_FRAME_OK || flen != r->frame_len)
        return bp_err(BP_ECORRUPT,
                      "%s: segment %06u offset %u: frame fails its CRC or length check", s->dir,
                      r->segno, r->offset);
    bp_status rc = bp_frame_decode(p + BP_FRAME_PREFIX, flen - BP_FRAME_PREFIX, out);
    if (rc)
        return bp_err(BP_ECORRUPT, "%s: segment %06u offset %u: %s", s->dir, r->segno, r->offset,
                      bp_last_error());
    if (memcmp(out->f.event_id.b, r->id.b, 16) != 0)
        return bp_err(BP_ECORRUPT,
                      "%s: segment %06u offset %u: frame holds another event than the "
                      "index says",
                      s->dir, r->segno, r->offset);
    return BP_OK;
}

bp_status bp_read_body(bp_store *s, uint64_t seq, bp_buf *out) {
    bp_slot sl = {.body = out};
    return bp_slot_read(s, seq - 1, BP_SLOT_BODY, &sl); /* seq 0: slot UINT64_MAX, none */
}

/* Copy a frame's fields into ev; strings go to the three NUL-terminated buffers. */
void bp_fill_event(bp_event *ev, const bp_frame *fr, char *ebuf, char *sbuf, char *ibuf) {
    const bp_event_fields *f = &fr->f;
    memset(ev, 0, sizeof *ev);
    ev->event_id = f->event_id;
    ev->correlation_id = f->correlation_id;
    ev->causation_id = f->causation_id;
    ev->has_causation = f->has_causation;
    ev->global_seq = f->global_seq;
    ev->clock = f->clock;
    ev->hlc = f->hlc;
    ev->kind = f->kind;
    ev->flags = f->flags;
    ev->prev_hash = f->prev_hash;
    ev->event_hash = fr->event_hash;
    memcpy(ebuf, f->entity, f->entity_len);
    ebuf[f->entity_len] = '\0';
    memcpy(sbuf, f->scope, f->scope_len);
    sbuf[f->scope_len] = '\0';
    ev->entity = ebuf;
    ev->scope = sbuf;
    if (f->idem_len) {
        memcpy(ibuf, f->idem_key, f->idem_len);
        ibuf[f->idem_len] = '\0';
        ev->idempotency_key = ibuf;
    }
    ev->batch_id = f->batch_id;
    ev->batch_index = f->batch_index;
    ev->batch_count = f->batch_count;
    ev->payload = f->payload;
    ev->payload_len = f->payload_len;
}

bp_status bp_own_event(bp_store *s, bp_owned_event *o, const bp_frame *fr, bool open) {
    bp_fill_event(&o->ev, fr, o->ebuf, o->sbuf, o->ibuf);
    return open ? bp_unseal_event(s, &o->ev, &o->plain) : BP_OK;
}

void bp_owned_event_clear(bp_owned_event *o) {
    bp_segfile_unref(o->hold);
    o->hold = NULL;
    bp_buf_free(&o->frame);
    bp_buf_free(&o->plain);
}

bp_status bp_get(bp_store *s, bp_event **out, const bp_id *id) {
    if (!out) return bp_err(BP_EINVAL, "bp_get: out is NULL");
    *out = NULL;
    if (!s || !id) return bp_err(BP_EINVAL, "bp_get: NULL argument");
    pthread_rwlock_rdlock(&s->ilock);
    bool repair = false;
    int64_t slot = bp_store_find_id(s, id, &repair);
    bp_irec r;
    bp_segref ref;
    bool found = slot >= 0 && bp_slot_take(s, (uint64_t)slot, 0, &r, &ref);
    pthread_rwlock_unlock(&s->ilock);
    if (repair) bp_six_repair(s);
    if (!found) {
        char t[37];
        bp_id_format(id, t);
        return bp_err(BP_ENOTFOUND, "event %s: not found", t);
    }
    bp_owned_event *o = calloc(1, sizeof *o);
    if (!o) {
        bp_segref_done(s, &ref);
        return bp_err(BP_ENOMEM, "bp_get: out of memory");
    }
    bp_slot sl = {.ev = o};
    bp_status rc = bp_slot_finish(s, &r, &ref, BP_SLOT_EVENT, &sl);
    if (rc) {
        bp_event_free(&o->ev);
        return rc;
    }
    *out = &o->ev;
    return BP_OK;
}

void bp_event_free(bp_event *ev) {
    if (!ev) return;
    bp_owned_event *o = (bp_owned_event *)ev; /* ev is the first member */
    bp_owned_event_clear(o);
    free(o);
}

/* bp_entity_head waits for this: published covers target, or the store failed (then its
 * appends fail too, and the head read returns what was published). */
typedef struct head_wait {
    bp_store *s;
    uint64_t target;
} head_wait;

static bool head_published(void *arg) {
    const head_wait *w = arg;
    return __atomic_load_n(&w->s->published, __ATOMIC_SEQ_CST) >= w->target ||
           __atomic_load_n(&w->s->failed, __ATOMIC_ACQUIRE);
}

bp_status bp_entity_head(bp_store *s, uint64_t *clock, bp_hash *hash, const char *entity) {
    if (!s || !entity) return bp_err(BP_EINVAL, "bp_entity_head: NULL argument");
    bp_status rc = bp_coord_validate("entity", entity);
    if (rc) return rc;
    size_t elen = strlen(entity);
    /* the head writers compare with: wait for a turn another CAS writer holds on the entity
     * (turns.c), then for the appends to it already written to be published (an append
     * waiting for its group commit's fdatasync: one sync at most) */
    if (!s->read_only) bp_turn_wait(s, bp_turn_key(entity, elen));
    uint64_t c = 0;
    bp_hash h;
    memset(&h, 0, sizeof h);
    bool read_disk = false;
    bp_irec r;
    bp_segref ref = BP_SEGREF_INIT;
    bool tier_retry = false;
    for (bool waited = s->read_only;; waited = true) {
        pthread_rwlock_rdlock(&s->ilock);
        int64_t e = bp_index_entity(&s->idx, entity, elen);
        if (e < -1) { /* (an entity checkpoint's, which could not be interned) */
            pthread_rwlock_unlock(&s->ilock);
            return bp_err(BP_ENOMEM, "entity '%s': out of memory", entity);
        }
        const bp_u32vec *v = e >= 0 ? &s->idx.entities[e].slots : NULL;
        if (!waited && v && v->n && v->v[v->n - 1] >= s->published) {
            head_wait w = {s, (uint64_t)v->v[v->n - 1] + 1}; /* slot i holds global_seq i+1 */
            pthread_rwlock_unlock(&s->ilock);
            bp_head_wait_begin(s);
            while (!bp_wait_until(s, head_published, &w, bp_pf_mono_us() + 1000000)) {
            }
            bp_head_wait_end(s);
            continue;
        }
        if (v) {
            const bp_entity_state *es = &s->idx.entities[e];
            uint32_t n = v->n; /* only published events count (the tier's all are) */
            while (n && v->v[n - 1] >= s->published)
                n--;
            c = es->base + es->tier + n;
            int64_t hs = -1; /* newer unpublished events exist: the head's frame is read */
            if (n == v->n)
                h = es->head;
            else if (n)
                hs = v->v[n - 1];
            else if (es->tier && (hs = bp_store_clock_slot(s, e, c)) == -2 && !tier_retry) {
                tier_retry = true; /* a tier file could not answer: again, from memory */
                pthread_rwlock_unlock(&s->ilock);
                bp_six_repair(s);
                continue;
            }
            if (hs >= 0) {
                read_disk = bp_store_rec(s, (uint64_t)hs, &r, 0) > 0;
                if (!read_disk) {
                    pthread_rwlock_unlock(&s->ilock);
                    return bp_err(BP_ECORRUPT, "entity '%s': its head event cannot be read: %s",
                                  entity, bp_last_error());
                }
                bp_segment_ref(s, r.segno, &ref);
            } else if (hs == -2) {
                pthread_rwlock_unlock(&s->ilock);
                return bp_err(BP_ENOMEM,
                              "entity '%s': a segment index file is damaged and "
                              "there is no memory to index its segment otherwise",
                              entity);
            }
        }
        break;
    }
    pthread_rwlock_unlock(&s->ilock);
    if (read_disk && hash) {
        bp_slot sl;
        rc = bp_slot_finish(s, &r, &ref, BP_SLOT_HASH, &sl); /* lets go of ref */
        if (!rc) h = sl.hash;
    } else {
        bp_segref_done(s, &ref);
    }
    if (rc) return rc;
    if (clock) *clock = c;
    if (hash) *hash = h;
    return BP_OK;
}

/* ------------------------------------------------------------ iterators */

typedef enum { SRC_ALL, SRC_ENTITY, SRC_SCOPE, SRC_KIND, SRC_EMPTY } src_kind;

struct bp_iter {
    bp_store *s;
    unsigned flags;
    src_kind src;
    uint32_t src_id;
    uint64_t pos;        /* next index into the source list (or next slot for SRC_ALL); for
                            SRC_SCOPE and SRC_KIND the next slot to look at (six_next) */
    uint16_t kind;       /* SRC_KIND: the kind */
    uint64_t min_slot;   /* SRC_ENTITY: pos is the next clock; slots below this one are passed */
    uint64_t clock;      /* SRC_ENTITY: the clock of the slot next_slot returned */
    bp_tier_hint hint;   /* SRC_ENTITY: where its tier walk stopped ... */
    uint32_t hint_gen;   /* ... at this s->tier_gen */
    uint32_t hint_n_six; /* ... in a tier of this many segments (0: not yet; a compaction
                            meanwhile ends the tier) */
    uint64_t limit;      /* published watermark at creation: slots < limit are visible */
    uint32_t graves;     /* s->n_graves when src_id was looked up: a compaction (or a reader's
                            reload) replaces the index, whose ids then name other entities */
    uint64_t last_seq;
    bp_rfilter f;
    bool entity_only;      /* f names an entity and seq bounds, nothing else */
    uint64_t tier_checked; /* SRC_ALL: the tier segments below this slot were looked at
                              (seg_may_match) */
    /* current event */
    bp_owned_event cur;
};

void bp_iter_free(bp_iter *it) {
    if (!it) return;
    bp_rfilter_free(&it->f);
    bp_owned_event_clear(&it->cur);
    free(it);
}

bp_status bp_query(bp_store *s, bp_iter **out, const bp_region *region, unsigned flags) {
    if (!out) return bp_err(BP_EINVAL, "bp_query: out is NULL");
    *out = NULL;
    if (!s || !region) return bp_err(BP_EINVAL, "bp_query: NULL argument");
    if (flags & ~(BP_READ_INDEX_ONLY | BP_READ_SEALED))
        return bp_err(BP_EINVAL, "bp_query: unknown flags 0x%x", flags);
    bp_iter *it = calloc(1, sizeof *it);
    if (!it) return bp_err(BP_ENOMEM, "bp_query: out of memory");
    bp_status rc = bp_rfilter_init(&it->f, region);
    if (rc) {
        free(it);
        return rc;
    }
    it->s = s;
    it->flags = flags;
    it->entity_only = it->f.entity && !it->f.prefix && !it->f.scope && it->f.category < 0 &&
                      !it->f.n_kinds && !it->f.since_ms && !it->f.until_ms;

    /* choose the most selective source list */
    pthread_rwlock_rdlock(&s->ilock);
    it->limit = s->published;
    int64_t id;
    if (it->f.entity) {
        id = bp_index_entity(&s->idx, it->f.entity, strlen(it->f.entity));
        if (id < -1) { /* (an entity checkpoint's, which could not be interned) */
            pthread_rwlock_unlock(&s->ilock);
            bp_iter_free(it);
            return bp_err(BP_ENOMEM, "bp_query: entity '%s': out of memory", region->entity);
        }
        it->src = id < 0 ? SRC_EMPTY : SRC_ENTITY;
    } else if (it->f.scope) { /* (its name is interned: every segment's scopes are) */
        id = bp_strtab_find(&s->idx.scope_names, it->f.scope, strlen(it->f.scope));
        it->src = id < 0 ? SRC_EMPTY : SRC_SCOPE;
    } else if (it->f.n_kinds == 1) { /* its heap list, if any, is looked up past the six tier */
        id = 0;
        it->kind = it->f.kinds[0];
        it->src = SRC_KIND;
    } else {
        id = 0;
        it->src = SRC_ALL;
    }
    it->src_id = id < 0 ? 0 : (uint32_t)id;
    it->graves = s->n_graves;
    /* start at from_seq: binary search in the source list */
    uint64_t first_slot = it->f.from_seq ? it->f.from_seq - 1 : 0;
    if (it->src == SRC_ALL || it->src == SRC_SCOPE || it->src == SRC_KIND) {
        it->pos = first_slot;
    } else if (it->src != SRC_EMPTY) { /* SRC_ENTITY: from its first clock */
        it->pos = s->idx.entities[it->src_id].base + 1;
        it->min_slot = first_slot;
    }
    pthread_rwlock_unlock(&s->ilock);
    *out = it;
    return BP_OK;
}

static bp_status single(bp_store *s, bp_iter **out, unsigned flags, const char *entity,
                        const char *scope, const uint16_t *kind) {
    bp_region r = BP_REGION_INIT;
    r.entity = entity;
    r.scope = scope;
    r.kinds = kind;
    r.n_kinds = kind ? 1 : 0;
    if ((entity && !*entity) || (scope && !*scope))
        return bp_err(BP_EINVAL, "%s: is empty", entity ? "entity" : "scope");
    return bp_query(s, out, &r, flags);
}

bp_status bp_stream(bp_store *s, bp_iter **out, const char *entity, unsigned flags) {
    if (!entity) return bp_err(BP_EINVAL, "bp_stream: entity is NULL");
    return single(s, out, flags, entity, NULL, NULL);
}

bp_status bp_by_scope(bp_store *s, bp_iter **out, const char *scope, unsigned flags) {
    if (!scope) return bp_err(BP_EINVAL, "bp_by_scope: scope is NULL");
    return single(s, out, flags, NULL, scope, NULL);
}

bp_status bp_by_kind(bp_store *s, bp_iter **out, uint16_t kind, unsigned flags) {
    return single(s, out, flags, NULL, NULL, &kind);
}

/* [i] held shared (or [w]: the writer's own view). Does slot pass every filter? */
bool bp_rfilter_match(const bp_rfilter *f, bp_store *s, uint64_t slot) {
    const bp_index *x = &s->idx;
    bp_irec tr;
    const bp_irec *r = &tr;
    bool tier = slot < x->rbase; /* the six tier: its record from its index file */
    if (!tier)
        r = &BP_XREC(x, slot);
    else if (bp_store_rec(s, slot, &tr, f->entity || f->prefix || f->scope ? BP_REC_IDS : 0) <= 0) {
        bp_err_clear(); /* (an unreadable tier record: as its read would, the iterator's
                           check reports it) */
        return false;
    }
    uint64_t seq = slot + 1;
    if (BP_IREC_HOLE(r)) return false;
    if (f->to_seq && seq > f->to_seq) return false;
    if (seq < f->from_seq) return false;
    if (f->entity && strcmp(x->entity_names.s[r->entity], f->entity) != 0) return false;
    if (f->prefix && strncmp(x->entity_names.s[r->entity], f->prefix, f->prefix_len) != 0)
        return false;
    if (f->scope && strcmp(x->scope_names.s[r->scope], f->scope) != 0) return false;
    if (f->category >= 0 && BP_KIND_CATEGORY(r->kind) != (unsigned)f->category) return false;
    if (f->n_kinds) {
        size_t k = 0;
        while (k < f->n_kinds && f->kinds[k] != r->kind)
            k++;
        if (k == f->n_kinds) return false;
    }
    if (tier && (f->since_ms || f->until_ms)) { /* its segment's range first, else its frame */
        bool all;
        uint16_t flags;
        if (!bp_tier_hlc_within(s, slot, f->since_ms, f->until_ms, &all)) return false;
        if (all) return true;
        if (!bp_tier_time(s, &tr, &tr.hlc, &flags)) {
            bp_err_clear();
            return false;
        }
    }
    uint64_t ms = BP_HLC_WALL_MS(r->hlc);
    if (f->since_ms && ms < f->since_ms) return false;
    if (f->until_ms && ms > f->until_ms) return false;
    return true;
}

/* [i] held shared. A scope or kind source in the six tier (segments whose index files list
 * their scopes and kinds): the next matching slot from it->pos on, -1 when done, -2 when the
 * tier holds no more (it->pos is then past it). */
static int64_t six_next(bp_iter *it, bp_store *s) {
    const bp_index *x = &s->idx;
    while (s->n_six && it->pos < x->list_base) {
        /* the tier segment holding it->pos (holes between segments: the next one) */
        uint32_t lo = bp_six_tier_seg(s, it->pos);
        if (lo == s->n_six) break;
        bp_segment *g = &s->segs[lo];
        uint64_t end = bp_six_end_slot(s, lo);
        if (it->pos < g->first_slot) it->pos = g->first_slot;
        bp_six *six = &g->six->x;
        int64_t local = -1;
        bool ok = !__atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE) &&
                  bp_six_need(six, BP_SIXB_RECS) && bp_six_need(six, BP_SIXB_SEQS);
        if (ok && it->src == SRC_SCOPE) {
            ok = bp_six_need(six, BP_SIXB_SCOPES);
            if (ok) local = bp_six_find_scope(six, it->f.scope, strlen(it->f.scope));
        } else if (ok) {
            ok = bp_six_need(six, BP_SIXB_KINDS);
            if (ok) local = bp_six_kind_count(six, it->kind) ? it->kind : -1;
        }
        if (bp_six_failed(six)) ok = false; /* (a check of what it read failed) */
        if (!ok) { /* it cannot answer: the segment's records, one by one */
            for (; it->pos < end; it->pos++) {
                if (it->pos >= it->limit || (it->f.to_seq && it->pos + 1 > it->f.to_seq)) return -1;
                if (bp_rfilter_match(&it->f, s, it->pos)) return (int64_t)it->pos++;
            }
            continue;
        }
        if (local < 0) { /* none in this segment */
            it->pos = end;
            continue;
        }
        /* the first record at or past it->pos */
        uint32_t r = 0, rhi = six->n_recs;
        while (r < rhi) {
            uint32_t mid = r + (rhi - r) / 2;
            if (bp_six_seq(six, mid) - 1 < it->pos)
                r = mid + 1;
            else
                rhi = mid;
        }
        for (; r < six->n_recs; r++) {
            bp_six_rec rec;
            bp_six_rec_get(six, r, &rec);
            if (bp_six_failed(six)) break; /* (record by record, from it->pos: above) */
            if (it->src == SRC_SCOPE ? rec.scope != (uint32_t)local : rec.kind != it->kind)
                continue;
            uint64_t slot = rec.seq - 1;
            if (slot >= it->limit || (it->f.to_seq && slot + 1 > it->f.to_seq)) return -1;
            it->pos = slot + 1;
            if (bp_rfilter_match(&it->f, s, slot)) return (int64_t)slot;
        }
        if (!bp_six_failed(six)) it->pos = end;
    }
    if (it->pos < x->list_base) it->pos = x->list_base;
    return -2;
}

typedef struct ent_walk {
    bp_iter *it;
    bp_store *s;
    int64_t slot; /* the match, or -1 */
    bool done;    /* past the iterator's bounds */
} ent_walk;

static bool ent_step(void *ctx, uint64_t slot, uint64_t clock, uint16_t kind) {
    ent_walk *w = ctx;
    bp_iter *it = w->it;
    (void)kind;
    if (slot >= it->limit || (it->f.to_seq && slot + 1 > it->f.to_seq)) {
        w->done = true;
        return false;
    }
    it->pos = clock + 1;
    if (slot < it->min_slot || (!it->entity_only && !bp_rfilter_match(&it->f, w->s, slot)))
        return true;
    it->clock = clock;
    w->slot = (int64_t)slot;
    return false;
}

/* [i] shared. At position k of an entity's list v: ask the CPU for the index record and the
 * frame it reads BP_READ_AHEAD events on (store_impl.h). */
static void prefetch_ahead(bp_store *s, const bp_u32vec *v, uint64_t k) {
    const bp_index *x = &s->idx;
    if (k + 2 * BP_READ_AHEAD < v->n && v->v[k + 2 * BP_READ_AHEAD] >= x->rbase)
        __builtin_prefetch(&BP_XREC(x, v->v[k + 2 * BP_READ_AHEAD]));
    if (k + BP_READ_AHEAD >= v->n || v->v[k + BP_READ_AHEAD] < x->rbase) return;
    const bp_irec *r = &BP_XREC(x, v->v[k + BP_READ_AHEAD]);
    if (!BP_IREC_HOLE(r)) bp_segment_prefetch(s, r->segno, r->offset, r->frame_len);
}

/* [i] held shared. An entity source: its six tier events (bp_tier_walk), then its list, from
 * the clock it->pos on. The next matching slot, -1 when done, -3 when a tier file cannot
 * answer (repair, then again). */
static int64_t entity_next(bp_iter *it, bp_store *s) {
    const bp_index *x = &s->idx;
    const bp_entity_state *es = &x->entities[it->src_id];
    uint64_t lbase = es->base + es->tier; /* the clock before the list's first event */
    if (it->pos <= lbase) {
        ent_walk w = {it, s, -1, false};
        if (it->hint_n_six != s->n_six || it->hint_gen != s->tier_gen) { /* the tier changed */
            it->hint = (bp_tier_hint)BP_TIER_HINT_INIT;
            it->hint_n_six = s->n_six;
            it->hint_gen = s->tier_gen;
        }
        if (bp_tier_walk(s, it->src_id, it->pos, ent_step, &w, &it->hint)) return -3;
        if (w.slot >= 0) return w.slot;
        if (w.done) return -1;
        it->pos = lbase + 1;
    }
    const bp_u32vec *v = &es->slots;
    uint64_t k = it->pos > lbase ? it->pos - lbase - 1 : 0;
    uint64_t first = bp_u32vec_lower_bound(v, it->min_slot); /* (from_seq) */
    if (k < first) k = first;
    for (; k < v->n; k++) {
        uint64_t slot = v->v[k];
        if (slot >= it->limit || (it->f.to_seq && slot + 1 > it->f.to_seq)) return -1;
        if (!(it->flags & BP_READ_INDEX_ONLY)) prefetch_ahead(s, v, k);
        it->pos = lbase + k + 2;
        if (bp_rfilter_match(&it->f, s, slot)) {
            it->clock = lbase + k + 1;
            return (int64_t)slot;
        }
    }
    it->pos = lbase + v->n + 1;
    return -1;
}

/* [i] held shared. Can tier segment i hold an event that passes its filters, by its index
 * file's hlc range, kinds and entity names? True when the file cannot say. */
static bool seg_may_match(const bp_iter *it, bp_store *s, uint32_t i) {
    const bp_rfilter *f = &it->f;
    bp_segment *g = &s->segs[i];
    bp_six *six = &g->six->x;
    if (__atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE)) return true; /* (record by record) */
    bool all;
    if ((f->since_ms || f->until_ms) &&
        !bp_tier_hlc_within(s, bp_six_end_slot(s, i) - 1, f->since_ms, f->until_ms, &all))
        return false;
    if ((f->n_kinds || f->category >= 0) && bp_six_need(six, BP_SIXB_KINDS)) {
        bool any = false;
        for (uint32_t k = 0; k < six->n_kinds && !any; k++) {
            uint16_t kind;
            uint32_t count;
            bp_six_kind_get(six, k, &kind, &count);
            any = f->category < 0 || BP_KIND_CATEGORY(kind) == (unsigned)f->category;
            if (any && f->n_kinds) {
                any = false;
                for (size_t j = 0; j < f->n_kinds && !any; j++)
                    any = f->kinds[j] == kind;
            }
        }
        if (!any && !bp_six_failed(six)) return false;
    }
    if (f->prefix && bp_six_need(six, BP_SIXB_ENTS)) { /* (names sorted: the first at or past) */
        uint32_t at = 0;
        bp_six_find_ent(six, f->prefix, f->prefix_len, &at);
        bp_six_ent e;
        if (at >= six->n_ents) return bp_six_failed(six);
        bp_six_ent_get(six, at, &e);
        if (bp_six_failed(six)) return true; /* (it cannot say) */
        if (e.len < f->prefix_len || memcmp(e.name, f->prefix, f->prefix_len) != 0) return false;
    }
    return true;
}

/* [i] held shared. The index was replaced since src_id was looked up: look it up again by
 * name (positions are clocks and slots, which a new index keeps). false: no memory (-3). */
static bool relookup(bp_iter *it, bp_store *s) {
    int64_t id = 0;
    if (it->src == SRC_ENTITY)
        id = bp_index_entity(&s->idx, it->f.entity, strlen(it->f.entity));
    else if (it->src == SRC_SCOPE)
        id = bp_strtab_find(&s->idx.scope_names, it->f.scope, strlen(it->f.scope));
    if (id < -1) return false;
    if (id == -1) it->src = SRC_EMPTY; /* (every event of it was compacted away) */
    it->src_id = id < 0 ? 0 : (uint32_t)id;
    it->hint = (bp_tier_hint)BP_TIER_HINT_INIT;
    it->hint_n_six = 0;
    it->graves = s->n_graves;
    return true;
}

/* [i] held shared. Next matching slot, or -1 when done, -3 as entity_next says. */
static int64_t next_slot(bp_iter *it, bp_store *s) {
    const bp_index *x = &s->idx;
    if (it->graves != s->n_graves && !relookup(it, s)) return -3;
    switch (it->src) {
    case SRC_EMPTY:
        return -1;
    case SRC_ENTITY:
        return entity_next(it, s);
    case SRC_SCOPE:
    case SRC_KIND: {
        /* the six tier first, then the list from the slot it stopped at */
        int64_t slot = six_next(it, s);
        if (slot != -2) return slot;
        uint16_t k = it->src == SRC_KIND ? x->kind_ids[it->kind] : 0;
        if (it->src == SRC_KIND && !k) return -1; /* no list: none past the tier */
        const bp_u32vec *l = it->src == SRC_SCOPE ? &x->scopes[it->src_id] : &x->kinds[k - 1];
        for (uint32_t i = bp_u32vec_lower_bound(l, it->pos); i < l->n; i++) {
            uint64_t q = l->v[i];
            if (q >= it->limit || (it->f.to_seq && q + 1 > it->f.to_seq)) return -1;
            it->pos = q + 1;
            if (bp_rfilter_match(&it->f, s, q)) return (int64_t)q;
        }
        it->pos = it->limit;
        return -1;
    }
    case SRC_ALL:
        break;
    }
    for (;;) {
        uint64_t slot = it->pos;
        if (slot >= it->limit) return -1;
        if (it->f.to_seq && slot + 1 > it->f.to_seq) return -1;
        if (slot < x->rbase && slot >= it->tier_checked) { /* a tier segment, first look */
            uint32_t i = bp_six_tier_seg(s, slot);
            uint64_t end = i < s->n_six ? bp_six_end_slot(s, i) : x->rbase;
            it->tier_checked = end;
            if (i < s->n_six && !seg_may_match(it, s, i)) { /* none of its events can */
                it->pos = end;
                continue;
            }
        }
        it->pos++;
        if (bp_rfilter_match(&it->f, s, slot)) return (int64_t)slot;
    }
}

/* [i] held shared. The record of slot into *r; for a tier slot the entity and scope its index
 * file names into tent and tscope (the footer's, when the file cannot say). */
static bool take(bp_iter *it, bp_store *s, uint64_t slot, bool tier, bp_irec *r, char *tent,
                 char *tscope) {
    if (!tier) return bp_store_rec(s, slot, r, BP_REC_IDS) > 0;
    if (it->src == SRC_ENTITY && /* its walk stopped at slot's record: no search for it */
        bp_tier_rec_at(s, it->hint.seg, it->hint.rec, slot, r, tscope)) {
        const bp_index *x = &s->idx;
        memcpy(tent, x->entity_names.s[it->src_id], (size_t)x->entity_names.len[it->src_id] + 1);
        return true;
    }
    if (bp_store_rec(s, slot, r, 0) > 0 && bp_tier_names(s, slot, tent, tscope)) return true;
    if (bp_store_rec(s, slot, r, BP_REC_IDS) <= 0) return false;
    const bp_index *x = &s->idx;
    memcpy(tent, x->entity_names.s[r->entity], (size_t)x->entity_names.len[r->entity] + 1);
    memcpy(tscope, x->scope_names.s[r->scope], (size_t)x->scope_names.len[r->scope] + 1);
    return true;
}

bp_status bp_iter_next(bp_iter *it, const bp_event **ev) {
    if (!it || !ev) return bp_err(BP_EINVAL, "bp_iter_next: NULL argument");
    *ev = NULL;
    bp_store *s = it->s;
    int64_t slot;
    bp_irec r;
    bp_segref ref = BP_SEGREF_INIT;
    uint64_t clock = 0;
    const char *ename = NULL, *sname = NULL;
    bool tier = false; /* the record came from a six tier file: the frame read is checked */
    char tent[BP_COORD_MAX + 1], tscope[BP_COORD_MAX + 1]; /* what the file says of it */
    for (int attempt = 0;; attempt++) {
        pthread_rwlock_rdlock(&s->ilock);
        slot = next_slot(it, s);
        tier = slot >= 0 && (uint64_t)slot < s->idx.rbase;
        if (slot >= 0 && (it->flags & BP_READ_INDEX_ONLY) && !tier) {
            /* a full read takes the clock from the frame */
            clock = it->src == SRC_ENTITY ? it->clock : bp_store_clock_of(s, (uint64_t)slot);
            if (!clock) { /* a tier file cannot answer: this slot again after the repair (a
                             slot-positioned source: an entity's has its clock) */
                it->pos = (uint64_t)slot;
                slot = -3;
            }
        }
        if (slot >= 0 && !take(it, s, (uint64_t)slot, tier, &r, tent, tscope)) {
            pthread_rwlock_unlock(&s->ilock);
            return bp_err(BP_ECORRUPT, "%s: event %lld cannot be read: %s", s->dir,
                          (long long)slot + 1, bp_last_error());
        }
        if (slot >= 0) {
            /* a tier record's hlc and flags are its frame's: read it even for INDEX_ONLY */
            if (!(it->flags & BP_READ_INDEX_ONLY) || tier) bp_segment_ref(s, r.segno, &ref);
            ename = tier ? tent : s->idx.entity_names.s[r.entity]; /* (interned: never move) */
            sname = tier ? tscope : s->idx.scope_names.s[r.scope];
        }
        pthread_rwlock_unlock(&s->ilock);
        if (slot != -3) break;
        if (attempt)
            return bp_err(BP_ENOMEM,
                          "%s: a segment index file is damaged and there is no "
                          "memory to index its segment otherwise",
                          s->dir);
        bp_six_repair(s); /* the tier back in memory: again */
    }
    if (slot < 0) return BP_DONE;
    it->last_seq = (uint64_t)slot + 1;
    bp_event *e = &it->cur.ev;
    if ((it->flags & BP_READ_INDEX_ONLY) && !tier) {
        bp_segfile_unref(it->cur.hold); /* the previous event is over */
        it->cur.hold = NULL;
        memset(e, 0, sizeof *e);
        e->event_id = r.id;
        e->global_seq = (uint64_t)slot + 1;
        e->clock = clock;
        e->hlc = r.hlc;
        e->kind = r.kind;
        e->flags = r.flags;
        e->entity = ename;
        e->scope = sname;
        e->header_only = true;
        *ev = e;
        return BP_OK;
    }
    bp_slot sl = {.ev = &it->cur}; /* it keeps the mapping until the next call or bp_iter_free */
    unsigned how = BP_SLOT_EVENT | (it->flags & BP_READ_SEALED ? BP_SLOT_SEALED : 0);
    if (tier && (it->flags & BP_READ_INDEX_ONLY)) how |= BP_SLOT_SEALED; /* (no payload) */
    bp_status rc = bp_slot_finish(s, &r, &ref, how, &sl);
    if (rc) return rc;
    if (tier && (e->global_seq != (uint64_t)slot + 1 || e->kind != r.kind ||
                 strcmp(e->entity, ename) != 0 || strcmp(e->scope, sname) != 0)) {
        /* the index file said another event is there: it is not used again */
        bp_tier_distrust(s, r.segno);
        bp_six_repair(s); /* the tier back in memory, from the footers */
        return bp_err(BP_ECORRUPT,
                      "%s: segment %06u: its index file names event %lld at offset %u, whose "
                      "frame holds event %llu: the file is not used again",
                      s->dir, r.segno, (long long)slot + 1, r.offset,
                      (unsigned long long)e->global_seq);
    }
    if (tier && (it->flags & BP_READ_INDEX_ONLY)) { /* the header only, as the index has it */
        e->payload = NULL;
        e->payload_len = 0;
        e->header_only = true;
    }
    *ev = e;
    return BP_OK;
}

bp_store *bp_iter_store(const bp_iter *it) {
    return it->s;
}

uint64_t bp_iter_position(const bp_iter *it) {
    return it ? it->last_seq : 0;
}
