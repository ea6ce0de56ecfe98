/* compact: merge the sealed segments and drop events under a retention policy, crash-safe
 * through one manifest (doc/FORMAT.md "Compaction").
 *
 * A run, under cmu (one at a time):
 *  1. [wmu] sync, seal the active segment if it holds events, start a new one: the range is
 *     every sealed segment, slots [0, end).
 *  2. [ilock shared] plan: per entity the prefix to drop (cut), the anchors, and where each
 *     kept event goes (next-fit into files of at most cap bytes of frames).
 *  3. (no lock: the range is immutable) write the new files as NNNNNN.fbat.compact, each
 *     frame checked (CRC, decode, hash, id, seq) and copied byte for byte; fdatasync them and
 *     the directory; build the new index's compacted part.
 *  4. [wmu] copy the index of the slots past the range, remove index.ckpt (it may describe a
 *     replaced segment), write DIR/COMPACT (the commit point), swap the index, segments and
 *     anchors in [ilock exclusive], then finish on disk (bp_compact_finish, compact_open.c).
 *  5. drop the store's references to the replaced files (readers and held events keep theirs:
 *     nothing waits); the modules forget what they derived from the events dropped.
 * The steps are compact_plan, compact_write, compact_manifest, compact_commit and
 * compact_retire over one struct compaction. Finishing or undoing a compaction at open, and
 * the anchors of an import, are in compact_open.c.
 */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------- plan */

/* Invariants: cut[e] <= the entity's events in the range; drop[slot] for slot < end says
 * the policy removes that event (holes are neither kept nor dropped); out_of[slot] and
 * at[slot] place each kept event in output file out_of (0-based) at offset at. */
typedef struct plan {
    uint64_t end; /* slots [0, end) are in the range */
    uint32_t first, last;
    uint64_t *cut;      /* per old entity id */
    bp_hash *anchor;    /* per old entity id with cut > 0: hash of its last dropped event */
    uint8_t *drop;      /* per slot < end */
    uint32_t *out_of;   /* per slot < end */
    uint32_t *at;       /* per slot < end */
    uint64_t *in_size;  /* per segment of the range: its size (read under wmu) */
    uint32_t n_out;     /* output files */
    uint64_t *out_size; /* per output: frames end (footer offset) */
    uint64_t kept, removed, bytes_before;
    uint32_t anchored;
} plan;

static void plan_free(plan *p) {
    free(p->cut);
    free(p->anchor);
    free(p->drop);
    free(p->out_of);
    free(p->at);
    free(p->out_size);
    free(p->in_size);
    memset(p, 0, sizeof *p);
}

/* The hash of the event at slot (in an entity's list: not a hole; a dry run's may be above
 * the watermark), read from its frame. [i] held shared. */
static bp_status hash_of(bp_store *s, uint32_t slot, bp_hash *out) {
    bp_slot sl;
    bp_status rc = bp_slot_read_locked(s, slot, BP_SLOT_HASH | BP_SLOT_UNPUBLISHED, &sl);
    if (rc == BP_ENOTFOUND) /* the slot's segment is not in the store */
        return bp_err(BP_ECORRUPT, "compact: segment %06u is missing", s->idx.recs[slot].segno);
    if (!rc) *out = sl.hash;
    return rc;
}

/* [i] held shared. */
static bp_status make_plan(bp_store *s, const bp_compact_options *o, uint32_t n_range, plan *p) {
    const bp_index *x = &s->idx;
    uint32_t ne = x->entity_names.n;
    p->cut = calloc(ne + 1, sizeof *p->cut);
    p->anchor = calloc(ne + 1, sizeof *p->anchor);
    p->drop = calloc(p->end + 1, 1);
    p->out_of = calloc(p->end + 1, sizeof *p->out_of);
    p->at = calloc(p->end + 1, sizeof *p->at);
    if (!p->cut || !p->anchor || !p->drop || !p->out_of || !p->at)
        return bp_err(BP_ENOMEM, "compact: out of memory");
    uint64_t now = bp_pf_wall_ms();
    uint64_t cutoff = o->max_age_ms && o->max_age_ms < now ? now - o->max_age_ms : 0;
    for (uint32_t e = 0; e < ne; e++) {
        const bp_u32vec *v = &x->entities[e].slots;
        uint32_t n_in = bp_u32vec_lower_bound(v, p->end), cut = 0;
        if (o->keep_last && v->n > o->keep_last) cut = (uint32_t)(v->n - o->keep_last);
        if (cut > n_in) cut = n_in;
        if (cutoff) {
            uint32_t k = 0;
            while (k < n_in && BP_HLC_WALL_MS(x->recs[v->v[k]].hlc) < cutoff)
                k++;
            if (k > cut) cut = k;
        }
        if (o->tombstoned)
            for (uint32_t k = n_in; k > cut; k--)
                if (x->recs[v->v[k - 1]].kind == BP_KIND_SYSTEM_TOMBSTONE) {
                    cut = k;
                    break;
                }
        if (!cut) continue;
        p->cut[e] = cut;
        p->anchored++;
        for (uint32_t k = 0; k < cut; k++)
            p->drop[v->v[k]] = 1;
        bp_status rc = hash_of(s, v->v[cut - 1], &p->anchor[e]);
        if (rc) return rc;
    }
    /* next-fit of the kept frames, in seq order, into files of at most cap bytes of frames:
     * cap is at least the largest input, so there are never more files than before */
    uint64_t cap = s->opts.segment_size;
    for (uint32_t i = 0; i < n_range; i++) {
        uint64_t size = p->in_size[i];
        p->bytes_before += size;
        if (size > cap) cap = size;
    }
    if (cap > bp__seg_end_max) cap = bp__seg_end_max; /* (the inputs' frames end below it) */
    p->out_size = calloc(n_range, sizeof *p->out_size);
    if (!p->out_size) return bp_err(BP_ENOMEM, "compact: out of memory");
    uint64_t off = BP_SEG_HEADER_SIZE;
    for (uint64_t slot = 0; slot < p->end; slot++) {
        const bp_irec *r = &x->recs[slot];
        if (BP_IREC_HOLE(r)) continue;
        if (p->drop[slot]) {
            p->removed++;
            continue;
        }
        if (!p->n_out || (off > BP_SEG_HEADER_SIZE && off + r->frame_len > cap)) {
            if (p->n_out == n_range) /* cannot happen (see cap); never number below 1 */
                return bp_err(BP_ECORRUPT, "compact: the kept events need more files than before");
            p->n_out++;
            off = BP_SEG_HEADER_SIZE;
        }
        p->out_of[slot] = p->n_out - 1;
        p->at[slot] = (uint32_t)off;
        off += r->frame_len;
        p->out_size[p->n_out - 1] = off;
        p->kept++;
    }
    return BP_OK;
}

/* ------------------------------------------------------------- write */

/* One new file being written. */
typedef struct outfile {
    bp_file f;
    uint32_t segno;
    uint32_t crc;
    uint64_t size;
    bp_buf buf; /* bytes not yet written */
    uint64_t buf_at;
    bp_index fx;    /* its events, for the footer */
    uint64_t *seqs; /* their global_seqs */
    uint64_t n_seqs;
} outfile;

static bp_status out_flush(bp_store *s, outfile *w) {
    if (!w->buf.len) return BP_OK;
    int e = bp_pf_pwrite(&w->f, w->buf.data, w->buf.len, w->buf_at);
    if (e)
        return bp_err_sys(BP_EIO, e, "%s: segment %06u.fbat.compact: write failed", s->segdir,
                          w->segno);
    w->buf_at += w->buf.len;
    w->buf.len = 0;
    return BP_OK;
}

static bp_status out_put(bp_store *s, outfile *w, const void *p, size_t n) {
    w->crc = bp_crc32_update(w->crc, p, n);
    w->size += n;
    if (bp_buf_append(&w->buf, p, n)) return bp_err(BP_ENOMEM, "compact: out of memory");
    return w->buf.len >= (4u << 20) ? out_flush(s, w) : BP_OK;
}

/* Check the frame of kept slot (its bytes at p, avail) and append it to w. */
static bp_status copy_frame(bp_store *s, outfile *w, uint64_t slot, const bp_irec *r,
                            const uint8_t *p, uint64_t avail, uint32_t at) {
    uint32_t flen;
    bp_frame fr;
    bp_hash h;
    const char *why = NULL;
    if (r->offset > avail ||
        bp_frame_peek(p + r->offset, avail - r->offset, &flen) != BP_FRAME_OK ||
        flen != r->frame_len)
        why = "frame fails its CRC or length check";
    else if (bp_frame_decode(p + r->offset + BP_FRAME_PREFIX, flen - BP_FRAME_PREFIX, &fr))
        why = bp_last_error();
    else if (memcmp(fr.f.event_id.b, r->id.b, 16) != 0 || fr.f.global_seq != slot + 1)
        why = "frame holds another event than the index says";
    else if (bp_event_hash(&fr.f, &h), memcmp(h.b, fr.event_hash.b, 32) != 0)
        why = "event hash mismatch";
    if (why)
        return bp_err(BP_ECORRUPT,
                      "%s: segment %06u offset %u: %s; nothing was compacted (run verify)", s->dir,
                      r->segno, r->offset, why);
    bp_irec nr = *r;
    nr.segno = w->segno;
    nr.offset = at;
    if (bp_index_insert(&w->fx, &nr, fr.f.entity, fr.f.entity_len, fr.f.scope, fr.f.scope_len,
                        &fr.event_hash, fr.f.idem_key, fr.f.idem_len))
        return bp_err(BP_ENOMEM, "compact: out of memory");
    w->seqs[w->n_seqs++] = slot + 1;
    return out_put(s, w, p + r->offset, flen);
}

/* Header, footer and sync of output w once its frames are in; its footer block is loaded
 * into nx (the new index), and *first_slot is where its slots start there. */
static bp_status out_seal(bp_store *s, outfile *w, bp_index *nx, uint64_t *first_slot) {
    bp_status rc = out_flush(s, w);
    if (rc) return rc;
    bp_iblock blk;
    bp_buf b = {0};
    if (bp_index_export(&w->fx, 0, w->fx.n, &blk))
        return bp_err(BP_ENOMEM, "compact: out of memory");
    blk.first_seq = w->seqs[0];
    blk.seqs = w->seqs; /* the block owns them from here */
    w->seqs = NULL;
    if (bp_footer_encode(&b, &blk, w->size)) {
        bp_index_block_release(&blk);
        return bp_err(BP_ENOMEM, "compact: out of memory");
    }
    rc = out_put(s, w, b.data, b.len);
    bp_buf_free(&b);
    if (!rc) rc = out_flush(s, w);
    int e = rc ? 0 : bp_pf_datasync(&w->f);
    if (e)
        rc = bp_err_sys(BP_EIO, e, "%s: segment %06u.fbat.compact: sync failed", s->segdir,
                        w->segno);
    if (!rc) bp_pf_close(&w->f); /* complete and synced: readers open it on demand */
    *first_slot = nx->n;
    if (!rc && (e = bp_index_load_block(nx, &blk)))
        rc = bp_err(e == -ENOMEM ? BP_ENOMEM : BP_ECORRUPT, "compact: cannot index segment %06u",
                    w->segno);
    bp_index_block_release(&blk);
    return rc;
}

static bp_status out_open(bp_store *s, outfile *w, uint32_t segno, uint64_t seqs_cap) {
    char path[4200];
    bp_segment_path(s, segno, ".compact", path, sizeof path);
    w->segno = segno;
    if (bp_index_init(&w->fx) || !(w->seqs = malloc((seqs_cap ? seqs_cap : 1) * 8)))
        return bp_err(BP_ENOMEM, "compact: out of memory");
    int e = bp_pf_open(&w->f, s->fault, path, BP_O_RDWR | BP_O_CREATE | BP_O_TRUNC);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot create", path);
    uint8_t hdr[BP_SEG_HEADER_SIZE];
    bp_segment_header(s, segno, hdr);
    return out_put(s, w, hdr, sizeof hdr);
}

static void out_free(outfile *w) {
    bp_buf_free(&w->buf);
    bp_index_free(&w->fx);
    free(w->seqs);
    w->seqs = NULL;
}

/* ------------------------------------------------------------- commit */

/* Copy the index of slots [from, x->n) (past the range: untouched) into nx. [w] held. */
static int copy_tail(const bp_index *x, uint64_t from, bp_index *nx) {
    uint32_t *idem = NULL; /* slot - from -> idem key + 1 */
    if (x->n > from && !(idem = calloc(x->n - from, 4))) return -ENOMEM;
    for (uint32_t k = 0; k < x->idem_keys.n; k++)
        if (x->idem_slots[k] >= from) idem[x->idem_slots[k] - from] = k + 1;
    int e = 0;
    for (uint64_t slot = from; slot < x->n && !e; slot++) {
        const bp_irec *r = &x->recs[slot];
        uint32_t k = idem[slot - from];
        /* the entity's head: its newest event is past the range, so the old head holds */
        e = bp_index_insert(nx, r, x->entity_names.s[r->entity], x->entity_names.len[r->entity],
                            x->scope_names.s[r->scope], x->scope_names.len[r->scope],
                            &x->entities[r->entity].head, k ? x->idem_keys.s[k - 1] : NULL,
                            k ? x->idem_keys.len[k - 1] : 0);
    }
    free(idem);
    return e;
}

/* The anchors after this run: old ones moved by the cuts, and new ones. Borrows names. */
static int merge_anchors(const bp_store *s, const plan *p, bp_anchors *out) {
    const bp_index *x = &s->idx;
    out->v = calloc(x->entity_names.n + 1, sizeof *out->v);
    if (!out->v) return -ENOMEM;
    for (uint32_t e = 0; e < x->entity_names.n; e++) {
        const bp_entity_state *es = &x->entities[e];
        if (!p->cut[e] && !es->base) continue;
        bp_anchor *a = &out->v[out->n++];
        a->entity = x->entity_names.s[e];
        a->len = x->entity_names.len[e];
        a->clock = es->base + p->cut[e];
        if (p->cut[e]) {
            a->hash = p->anchor[e];
        } else { /* unchanged: the old anchor's hash */
            for (uint32_t i = 0; i < s->anchors.n; i++)
                if (s->anchors.v[i].len == a->len &&
                    !memcmp(s->anchors.v[i].entity, a->entity, a->len))
                    a->hash = s->anchors.v[i].hash;
        }
    }
    return 0;
}

static bp_status check_options(const bp_compact_options *o) {
    BP_SIZE_CHECK("bp_compact", o, bp_compact_options, BP_COMPACT_OPTIONS_INIT);
    if (o->keep_last > UINT32_MAX)
        return bp_err(BP_EINVAL, "keep_last %llu out of range (0..%u)",
                      (unsigned long long)o->keep_last, UINT32_MAX);
    return BP_OK;
}

/* Seal the active segment if it holds events; the range is then every sealed segment. A dry
 * run changes nothing: its range is every segment, the active one included. [w] */
static bp_status start_range(bp_store *s, bool dry_run, plan *p) {
    if (s->failed)
        return bp_err(s->failed, "%s: store fail-stopped: %s", s->dir, bp_failed_detail(s));
    bp_status rc = BP_OK;
    if (dry_run) {
        p->first = s->segs[0].segno;
        p->last = s->segs[s->n_segs - 1].segno;
        p->end = s->idx.n;
    } else if (!(rc = bp_sync_locked(s))) {
        bp_segment *act = &s->segs[s->n_segs - 1];
        if (s->idx.n > act->first_slot &&
            ((rc = bp_segment_seal(s)) || (rc = bp_segment_create(s, act->segno + 1))))
            return rc;
        p->first = s->segs[0].segno;
        p->last = s->segs[s->n_segs - 1].segno - 1;
        p->end = s->segs[s->n_segs - 1].first_slot;
    }
    if (rc) return rc;
    uint32_t n = p->last + 1 - p->first;
    if (!(p->in_size = calloc(n + 1, sizeof *p->in_size)))
        return bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < n; i++)
        p->in_size[i] = s->segs[i].size;
    return BP_OK;
}

/* The store whose compaction is calling its progress callback on this thread, if any: a
 * bp_compact of the same store from there would wait for cmu, which this thread holds. */
static _Thread_local bp_store *in_progress;

static void report_progress(bp_store *s, const bp_compact_options *opts, uint64_t done,
                            uint64_t total) {
    if (!opts->progress) return;
    bp_store *outer = in_progress;
    in_progress = s;
    opts->progress(opts->progress_ctx, done, total);
    in_progress = outer;
}

/* One compaction, from its plan to the retirement of the old segments (bp_compact). The
 * steps run in this order, each only if the ones before succeeded: plan, write, manifest,
 * commit, retire; cleanup always runs. Invariant: committed is true from the moment the
 * manifest DIR/COMPACT exists, and then the new files are never removed (the next open
 * finishes the compaction from the manifest). */
typedef struct compaction {
    bp_store *s;
    const bp_compact_options *opts;
    bp_compact_report *out; /* NULL when the caller wants none */
    plan p;
    uint32_t n_range;   /* segments in the range */
    uint32_t new_first; /* the first new segment's number */
    outfile *outs;      /* p.n_out of them; n_open made */
    uint32_t n_open;
    uint64_t *out_first; /* per output: its first slot */
    bp_index nx;         /* the new index */
    bp_anchors na;       /* the new anchors */
    bp_buf ab, mb;       /* the anchors file and the manifest, encoded */
    bp_cmanifest man;
    bp_segfile **newsf; /* the new segments, opened as .compact for readers */
    bool committed;
    bp_segment *retired; /* the old segments, once swapped out */
    uint32_t n_retired;
    char **forget; /* entities whose events were cut: derived state goes */
    uint32_t n_forget;
} compaction;

/* Plan the compaction; *noop when there is nothing to do (or only a dry run's report). */
static bp_status compact_plan(compaction *c, bool *noop) {
    bp_store *s = c->s;
    plan *p = &c->p;
    pthread_mutex_lock(&s->wmu);
    bp_status rc = start_range(s, c->opts->dry_run, p);
    pthread_mutex_unlock(&s->wmu);
    if (rc) return rc;
    c->n_range = p->last < p->first ? 0 : p->last + 1 - p->first;
    pthread_rwlock_rdlock(&s->ilock);
    rc = c->n_range ? make_plan(s, c->opts, c->n_range, p) : BP_OK;
    pthread_rwlock_unlock(&s->ilock);
    if (rc) return rc;
    bp_compact_report *out = c->out;
    if (out) {
        out->segments_before = c->n_range;
        out->segments_after = c->n_range ? p->n_out : 0;
        out->events_kept = p->kept;
        out->events_removed = p->removed;
        out->bytes_before = p->bytes_before;
        out->entities_anchored = p->anchored;
        out->upto = p->end;
    }
    /* nothing to drop and no file to save: leave everything as it is */
    bool nothing = !c->n_range || (!p->removed && p->n_out == c->n_range);
    *noop = nothing || c->opts->dry_run;
    if (out && nothing) {
        out->segments_after = c->n_range;
        out->bytes_after = out->bytes_before;
    } else if (out && c->opts->dry_run) { /* frames exactly; footers estimated */
        for (uint32_t i = 0; i < p->n_out; i++)
            out->bytes_after += p->out_size[i];
        out->bytes_after += p->kept * (BP_IREC_SIZE + 8);
    }
    c->new_first = p->last + 1 - p->n_out;
    return BP_OK;
}

/* The new index starts with the old anchors and the new ones. */
static bp_status compact_anchor_index(compaction *c) {
    bp_store *s = c->s;
    for (uint32_t i = 0; i < s->anchors.n; i++)
        if (bp_index_anchor(&c->nx, s->anchors.v[i].entity, s->anchors.v[i].len,
                            s->anchors.v[i].clock, &s->anchors.v[i].hash))
            return bp_err(BP_ENOMEM, "compact: out of memory");
    if (merge_anchors(s, &c->p, &c->na)) return bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < c->na.n; i++) { /* new anchors (old ones are in already) */
        bp_anchor *a = &c->na.v[i];
        int64_t e = bp_index_entity(&c->nx, a->entity, a->len);
        if (e >= 0) {
            c->nx.entities[e].base = a->clock;
            c->nx.entities[e].head = a->hash;
        } else if (bp_index_anchor(&c->nx, a->entity, a->len, a->clock, &a->hash)) {
            return bp_err(BP_ENOMEM, "compact: out of memory");
        }
    }
    return BP_OK;
}

/* Write the new files as NNNNNN.fbat.compact, sealed and synced (the range is immutable: no
 * lock is needed to read it). */
static bp_status compact_write(compaction *c) {
    bp_store *s = c->s;
    plan *p = &c->p;
    size_t n_out = p->n_out ? p->n_out : 1;
    c->outs = calloc(n_out, sizeof *c->outs);
    c->out_first = calloc(n_out, sizeof *c->out_first);
    uint64_t *per = calloc(n_out, sizeof *per); /* events per output, for the seq arrays */
    if (!c->outs || !c->out_first || !per) {
        free(per);
        return bp_err(BP_ENOMEM, "compact: out of memory");
    }
    pthread_rwlock_rdlock(&s->ilock);
    for (uint64_t slot = 0; slot < p->end; slot++)
        if (!BP_IREC_HOLE(&s->idx.recs[slot]) && !p->drop[slot]) per[p->out_of[slot]]++;
    pthread_rwlock_unlock(&s->ilock);
    for (uint32_t i = 0; i < p->n_out; i++)
        c->outs[i].f = (bp_file)BP_FILE_INIT;
    bp_status rc = compact_anchor_index(c);
    uint32_t cur_seg = 0;
    bp_file in = BP_FILE_INIT;
    bp_view view;
    memset(&view, 0, sizeof view);
    bool viewing = false;
    bp_irec chunk[1024]; /* the range's records, copied under ilock a chunk at a time */
    for (uint64_t slot = 0; slot < p->end && !rc; slot++) {
        if (slot % 1024 == 0) {
            report_progress(s, c->opts, slot, p->end);
            uint64_t k = p->end - slot < 1024 ? p->end - slot : 1024;
            pthread_rwlock_rdlock(&s->ilock);
            memcpy(chunk, &s->idx.recs[slot], k * sizeof *chunk);
            pthread_rwlock_unlock(&s->ilock);
        }
        bp_irec r = chunk[slot % 1024];
        if (BP_IREC_HOLE(&r) || p->drop[slot]) continue;
        if (!viewing || r.segno != cur_seg) {
            if (viewing) {
                bp_pf_view_release(&view);
                bp_pf_close(&in);
                viewing = false;
            }
            char path[4200];
            bp_segment_path(s, r.segno, "", path, sizeof path);
            int e = bp_pf_open(&in, NULL, path, BP_O_READ);
            if (!e && (e = bp_pf_view(&in, &view))) bp_pf_close(&in);
            if (e) {
                rc = bp_err_sys(BP_EIO, e, "%s: cannot read", path);
                break;
            }
            viewing = true;
            cur_seg = r.segno;
        }
        /* next-fit fills the outputs in seq order: one is open at a time, and each is
         * sealed (and its descriptor closed) before the next one is made */
        uint32_t o = p->out_of[slot];
        while (!rc && c->n_open <= o) {
            uint32_t k = c->n_open;
            if (k && (rc = out_seal(s, &c->outs[k - 1], &c->nx, &c->out_first[k - 1]))) break;
            rc = out_open(s, &c->outs[k], c->new_first + k, per[k]);
            c->n_open++; /* cleanup removes it, made or not */
        }
        if (!rc) rc = copy_frame(s, &c->outs[o], slot, &r, view.p, view.len, p->at[slot]);
    }
    free(per);
    if (viewing) {
        bp_pf_view_release(&view);
        bp_pf_close(&in);
    }
    if (!rc) report_progress(s, c->opts, p->end, p->end);
    if (!rc && c->n_open != p->n_out)
        rc = bp_err(BP_ECORRUPT, "compact: %u of %u new files were written", c->n_open, p->n_out);
    if (!rc && c->n_open)
        rc = out_seal(s, &c->outs[c->n_open - 1], &c->nx, &c->out_first[c->n_open - 1]);
    if (!rc && bp_index_holes(&c->nx, p->end, p->last))
        rc = bp_err(BP_ENOMEM, "compact: out of memory");
    if (!rc) {
        int e = bp_pf_fsync_dir(s->fault, s->segdir);
        if (e) rc = bp_err_sys(BP_EIO, e, "%s: cannot sync", s->segdir);
    }
    return rc;
}

/* Encode the anchors file and the manifest, and open the new files for readers: they read
 * the new segments through these until the renames are done (a reader opening NNNNNN.fbat
 * before then would get the replaced file). */
static bp_status compact_manifest(compaction *c) {
    bp_store *s = c->s;
    plan *p = &c->p;
    size_t n_out = p->n_out ? p->n_out : 1;
    c->na.first_segno = p->n_out ? c->new_first : p->last + 1;
    c->na.last_segno = p->last;
    c->na.upto = p->end;
    c->man.old_first = p->first;
    c->man.old_last = p->last;
    c->man.new_first = c->new_first;
    c->man.n_new = p->n_out;
    c->man.sizes = calloc(n_out, sizeof *c->man.sizes);
    c->man.crcs = calloc(n_out, sizeof *c->man.crcs);
    c->newsf = calloc(n_out, sizeof *c->newsf);
    if (!c->man.sizes || !c->man.crcs || !c->newsf || bp_anchors_encode(&c->ab, &c->na))
        return bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < p->n_out; i++) {
        c->man.sizes[i] = c->outs[i].size;
        c->man.crcs[i] = c->outs[i].crc;
    }
    c->man.anchors = c->ab.data;
    c->man.anchors_len = c->ab.len;
    if (bp_cmanifest_encode(&c->mb, &c->man)) return bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < p->n_out; i++) {
        int e = bp_segfile_open(s, c->new_first + i, ".compact", &c->newsf[i]);
        if (e)
            return bp_err_sys(BP_EIO, e, "%s: segment %06u.fbat.compact: cannot open it", s->segdir,
                              c->new_first + i);
    }
    return BP_OK;
}

/* [w] ilock exclusive. Install the new segments, index and anchors in the store (the
 * anchors' decode is returned); the old segments go to c->retired, out of the cache:
 * readers and events that hold their segfiles keep them. */
static bp_status compact_swap(compaction *c, bp_segment *nsegs, uint32_t nn) {
    bp_store *s = c->s;
    uint32_t n_keep = s->n_segs - c->n_range;
    for (uint32_t i = 0; i < n_keep; i++) {
        nsegs[c->p.n_out + i] = s->segs[c->n_range + i];
        nsegs[c->p.n_out + i].ids_six = false;  /* the new index places every id */
        nsegs[c->p.n_out + i].six_tier = false; /* and lists every slot */
    }
    for (uint32_t i = 0; i < c->n_range; i++)
        c->retired[c->n_retired++] = s->segs[i];
    bp_index old = s->idx;
    s->idx = c->nx;
    /* readers look at the index only under ilock, but events read index-only and
     * subscription notices point at its names: those live until close */
    bp_index_free_keep_names(&old, &s->graves[s->n_graves], &s->graves[s->n_graves + 1]);
    s->n_graves += 2;
    memset(&c->nx, 0, sizeof c->nx); /* s->idx owns it now */
    free(s->segs);
    s->segs = nsegs;
    s->n_segs = nn;
    s->n_six = 0;
    s->segs_cap = nn + 8;
    bp_anchors_free(&s->anchors);
    bp_status rc = bp_anchors_decode(&s->anchors, c->ab.data, c->ab.len, "compact");
    for (uint32_t i = 0; i < c->n_retired; i++)
        c->retired[i].rd = bp_segment_uncache(s, &c->retired[i]);
    for (uint32_t i = 0; i < c->p.n_out; i++) {
        bp_segment_cache(s, &s->segs[i], c->newsf[i]);
        c->newsf[i] = NULL;
    }
    return rc;
}

/* [w] The swap is done (rc: its anchors' decode): rename the new files in, as the next open
 * would from the manifest. */
static bp_status compact_finish(compaction *c, bp_status rc) {
    bp_store *s = c->s;
    bp_cmanifest fm;
    if (!rc) rc = bp_cmanifest_decode(&fm, c->mb.data, c->mb.len, "compact");
    if (!rc) {
        rc = bp_compact_finish(s, &fm);
        bp_cmanifest_free(&fm);
    }
    if (!rc) { /* the new files have their names: evictable again */
        pthread_rwlock_wrlock(&s->ilock);
        for (uint32_t i = 0; i < c->p.n_out; i++)
            s->segs[i].rd_keep = false;
        pthread_rwlock_unlock(&s->ilock);
    }
    if (rc)
        rc = bp_store_fail(s, rc == BP_ENOMEM ? BP_ENOMEM : BP_EIO, 0,
                           "%s: compaction committed, finishing it failed (%s); reopen the "
                           "store to finish it",
                           s->dir, bp_last_error());
    return rc;
}

/* Under wmu: the index tail written since the plan joins the new index, the checkpoint
 * goes, the manifest commits the compaction, and the store swaps to the new segments. */
static bp_status compact_commit(compaction *c) {
    bp_store *s = c->s;
    plan *p = &c->p;
    pthread_mutex_lock(&s->wmu);
    bp_status rc = BP_OK;
    if (s->failed)
        rc = bp_err(s->failed, "%s: store fail-stopped: %s", s->dir, bp_failed_detail(s));
    if (!rc && copy_tail(&s->idx, p->end, &c->nx)) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    bp_segment *nsegs = NULL;
    uint32_t nn = p->n_out + s->n_segs - c->n_range;
    bp_strtab *graves = NULL;
    if (!rc && (!(nsegs = calloc(nn + 8, sizeof *nsegs)) ||
                !(c->retired = malloc((c->n_range ? c->n_range : 1) * sizeof *c->retired)) ||
                !(graves = realloc(s->graves, (s->n_graves + 2) * sizeof *graves))))
        rc = bp_err(BP_ENOMEM, "compact: out of memory");
    if (graves) s->graves = graves;
    char path[4200];
    if (!rc) { /* it may describe a segment about to be replaced */
        snprintf(path, sizeof path, "%s/index.ckpt", s->dir);
        int e = bp_pf_unlink(path);
        if (!e) e = bp_pf_fsync_dir(s->fault, s->dir);
        if (e) rc = bp_err_sys(BP_EIO, e, "%s: cannot remove", path);
    }
    bp_compact_step(3);
    if (!rc) { /* readers in other processes: files are about to be renamed in (and again
                * once they are, below) */
        s->live_compactions++;
        bp_live_publish(s, s->published);
    }
    if (!rc) {
        int e = bp_pf_write_atomic(s->fault, s->dir, "COMPACT", c->mb.data, c->mb.len);
        snprintf(path, sizeof path, "%s/COMPACT", s->dir);
        if (!e || bp_pf_exists(path) != 0) {
            c->committed = true; /* the manifest is there: the next open finishes it */
            if (e)
                rc = bp_store_fail(s, BP_EIO, e,
                                   "%s: compaction manifest written but not synced; reopen the "
                                   "store to finish the compaction",
                                   s->dir);
        } else {
            rc = bp_err_sys(BP_EIO, e, "%s: cannot write the compaction manifest", s->dir);
        }
    }
    if (c->committed && !rc) {
        bp_compact_step(10);
        for (uint32_t i = 0; i < p->n_out; i++) {
            bp_segment *g = &nsegs[i];
            g->segno = c->outs[i].segno;
            g->f = (bp_file)BP_FILE_INIT; /* sealed: no writer's descriptor */
            g->size = c->outs[i].size;
            g->first_slot = c->out_first[i];
            g->sealed = true;
            g->rd_keep = true; /* until compact_finish renamed it in */
        }
        c->n_forget = p->anchored;
        c->forget = calloc(c->n_forget ? c->n_forget : 1, sizeof *c->forget);
        for (uint32_t e = 0, k = 0; c->forget && e < s->idx.entity_names.n; e++)
            if (p->cut[e]) c->forget[k++] = strdup(s->idx.entity_names.s[e]);
        pthread_rwlock_wrlock(&s->ilock);
        bp_status arc = compact_swap(c, nsegs, nn);
        nsegs = NULL; /* the store's now */
        pthread_rwlock_unlock(&s->ilock);
        rc = compact_finish(c, arc);
        for (uint32_t i = 0; !rc && i < p->n_out; i++)
            bp_six_write_seg(s, i); /* the new segments' index files (caches) */
        if (!rc) {                  /* readers of other processes move to the new files (live.c) */
            s->live_compactions++;
            bp_live_publish(s, s->published);
        }
    }
    pthread_mutex_unlock(&s->wmu);
    free(nsegs);
    return rc;
}

/* The old segments go: their files were removed by compact_finish; the store's references
 * are dropped here. Never waits for a reader: each holds its own reference. Then the
 * modules forget what they derived from the events cut. */
static void compact_retire(compaction *c, bp_status rc) {
    for (uint32_t i = 0; i < c->n_retired; i++) {
        bp_segfile_unref(c->retired[i].rd);
        bp_pf_close(&c->retired[i].f);
        bp_six_detach(&c->retired[i]); /* no reader looks: they left with ilock */
    }
    c->n_retired = 0;
    if (rc) return;
    for (uint32_t i = 0; c->forget && i < c->n_forget; i++)
        if (c->forget[i]) (void)bp_store_forget_hooks(c->s, c->forget[i]); /* caches: a refold */
    bp_err_clear();
    if (c->out) {
        c->out->changed = true;
        c->out->bytes_after = 0;
        for (uint32_t i = 0; i < c->p.n_out; i++)
            c->out->bytes_after += c->man.sizes[i];
    }
}

/* Free everything; the new files go too unless the compaction committed. */
static void compact_cleanup(compaction *c) {
    bp_store *s = c->s;
    for (uint32_t i = 0; c->outs && i < c->n_open; i++) {
        char path[4200];
        bp_segment_path(s, c->outs[i].segno, ".compact", path, sizeof path);
        bp_pf_close(&c->outs[i].f);
        if (!c->committed) bp_pf_unlink(path); /* committed: the next open renames it in */
        out_free(&c->outs[i]);
    }
    free(c->outs);
    free(c->out_first);
    for (uint32_t i = 0; c->newsf && i < c->p.n_out; i++)
        bp_segfile_unref(c->newsf[i]);
    free(c->newsf);
    free(c->retired);
    for (uint32_t i = 0; c->forget && i < c->n_forget; i++)
        free(c->forget[i]);
    free(c->forget);
    bp_index_free(&c->nx);
    free(c->na.v);
    bp_buf_free(&c->ab);
    bp_buf_free(&c->mb);
    free(c->man.sizes);
    free(c->man.crcs);
    plan_free(&c->p);
}

bp_status bp_compact(bp_store *s, bp_compact_report *out, const bp_compact_options *opts) {
    uint64_t t0 = bp_pf_mono_us();
    bp_compact_options defaults = BP_COMPACT_OPTIONS_INIT;
    if (!s) return bp_err(BP_EINVAL, "bp_compact: store is NULL");
    if (out) {
        BP_SIZE_CHECK("bp_compact", out, bp_compact_report, BP_COMPACT_REPORT_INIT);
        BP_OUT_RESET(out, bp_compact_report);
    }
    if (in_progress == s)
        return bp_err(BP_EBUSY,
                      "%s: bp_compact called from its own progress callback (the compaction "
                      "in progress holds the store's compaction lock); compact again after it "
                      "returned",
                      s->dir);
    if (!opts) opts = &defaults;
    bp_status rc = check_options(opts);
    if (rc) return rc;
    if (s->read_only && !opts->dry_run)
        return bp_err(BP_EREADONLY, "%s: compact on a read-only handle (a dry run is allowed)",
                      s->dir);
    pthread_mutex_lock(&s->cmu);
    /* the plan reads every entity's list whole: the six tier goes back in memory (and stays
     * there until the compaction is done: appends meanwhile do not grow it) */
    __atomic_store_n(&s->compacting, 1, __ATOMIC_RELEASE);
    rc = bp_six_untier(s);
    if (rc) {
        __atomic_store_n(&s->compacting, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&s->cmu);
        return rc;
    }
    compaction c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.opts = opts;
    c.out = out;
    bp_index_init(&c.nx);
    bool noop = false;
    rc = compact_plan(&c, &noop);
    if (!rc && !noop) {
        bp_compact_step(1);
        rc = compact_write(&c);
        bp_compact_step(2);
        if (!rc) rc = compact_manifest(&c);
        if (!rc) rc = compact_commit(&c);
        if (c.committed) compact_retire(&c, rc);
    }
    compact_cleanup(&c);
    __atomic_store_n(&s->compacting, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&s->wmu);
    s->tier_check = true; /* the sealed segments' records leave memory again (bp_tier_extend) */
    pthread_mutex_unlock(&s->wmu);
    pthread_mutex_unlock(&s->cmu);
    if (out) out->duration_us = bp_pf_mono_us() - t0;
    return rc;
}
