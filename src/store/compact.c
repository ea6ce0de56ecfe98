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
 *     anchors in [ilock exclusive], then finish on disk (finish()).
 *  5. drop the store's references to the replaced files (readers and held events keep theirs:
 *     nothing waits); drop the projection states of entities that lost events.
 */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void (*bp__compact_step)(int step);

static void step(int n) {
    if (bp__compact_step) bp__compact_step(n);
}

/* ------------------------------------------------------------- finish */

/* CRC32 and size of a whole file. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc) {
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (e) return e;
    bp_view v;
    if (!(e = bp_pf_view(&f, path, &v))) {
        *size = v.len;
        *crc = bp_crc32(v.p, v.len);
        bp_pf_view_release(&v);
    }
    bp_pf_close(&f);
    return e;
}

/* Complete a committed compaction on disk; idempotent (open repeats it after a crash):
 * rename the new files in, remove the replaced ones, sync, install ANCHORS, remove the
 * manifest. */
static bp_status finish(bp_store *s, const bp_cmanifest *m) {
    char a[4200], b[4200];
    int e = 0;
    for (uint32_t i = 0; i < m->n_new && !e; i++) {
        uint32_t k = m->new_first + i;
        bp_segment_path(s, k, ".compact", a, sizeof a);
        bp_segment_path(s, k, "", b, sizeof b);
        e = bp_pf_exists(a);
        if (e == 1) {
            e = bp_pf_rename(s->opts.fault, a, b);
            step(100 + (int)i);
            continue;
        }
        if (e) break;
        /* renamed before a crash: it must be the file the manifest describes */
        uint64_t size = 0;
        uint32_t crc = 0;
        e = file_crc(b, &size, &crc);
        if (e && e != -ENOENT) break;
        if (e || size != m->sizes[i] || crc != m->crcs[i])
            return bp_err(BP_ECORRUPT,
                          "%s/COMPACT: segment %06u is neither the compacted file nor its "
                          "replacement (%s)",
                          s->dir, k, e ? "missing" : "size or CRC differ");
    }
    for (uint32_t k = m->old_first; k < m->new_first && !e; k++) {
        bp_segment_path(s, k, "", a, sizeof a);
        e = bp_pf_unlink(a);
    }
    if (!e) e = bp_pf_fsync_dir(s->opts.fault, s->segdir);
    step(20);
    if (!e) e = bp_pf_write_atomic(s->opts.fault, s->dir, "ANCHORS", m->anchors, m->anchors_len);
    step(21);
    if (!e) {
        snprintf(a, sizeof a, "%s/COMPACT", s->dir);
        e = bp_pf_unlink(a);
    }
    if (!e) e = bp_pf_fsync_dir(s->opts.fault, s->dir);
    return e ? bp_err_sys(BP_EIO, e, "%s: cannot finish the compaction", s->dir) : BP_OK;
}

/* Remove what a compaction left before its commit: *.compact files and COMPACT.tmp. */
static bp_status remove_leftovers(bp_store *s) {
    char **names = NULL;
    size_t n = 0;
    int e = bp_pf_list(s->segdir, ".compact", &names, &n);
    if (e == -ENOENT) return BP_OK;
    if (e == -ENOTDIR) return bp_segdir_not_dir(s);
    for (size_t i = 0; i < n && !e; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", s->segdir, names[i]);
        e = bp_pf_unlink(p);
    }
    bp_pf_list_free(names, n);
    if (!e && n) e = bp_pf_fsync_dir(s->opts.fault, s->segdir);
    return e ? bp_err_sys(BP_EIO, e, "%s: cannot remove an unfinished compaction's files",
                          s->segdir)
             : BP_OK;
}

bp_status bp_anchors_write(bp_store *s, const bp_anchors *a) {
    bp_buf b = {0};
    if (bp_anchors_encode(&b, a)) {
        bp_buf_free(&b);
        return bp_err(BP_ENOMEM, "%s/ANCHORS: out of memory", s->dir);
    }
    int e = bp_pf_write_atomic(s->opts.fault, s->dir, "ANCHORS", b.data, b.len);
    bp_buf_free(&b);
    return e ? bp_err_sys(BP_EIO, e, "%s/ANCHORS: cannot write", s->dir) : BP_OK;
}

static bp_status load_anchors(bp_store *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ANCHORS", s->dir);
    uint8_t *buf;
    size_t len;
    int e = bp_pf_read_all(path, &buf, &len);
    if (e == -ENOENT) {
        s->anchors.first_segno = 1;
        return BP_OK;
    }
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot read", path);
    bp_status rc = bp_anchors_decode(&s->anchors, buf, len, path);
    free(buf);
    for (uint32_t i = 0; !rc && i < s->anchors.n; i++) {
        const bp_anchor *a = &s->anchors.v[i];
        if (bp_index_anchor(&s->idx, a->entity, a->len, a->clock, &a->hash))
            rc = bp_err(BP_ENOMEM, "%s: out of memory", path);
    }
    return rc;
}

bp_status bp_compact_recover(bp_store *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/COMPACT", s->dir);
    uint8_t *buf = NULL;
    size_t len = 0;
    int e = bp_pf_read_all(path, &buf, &len);
    bp_status rc = BP_OK;
    if (e == -ENOENT) {
        if (!s->read_only) rc = remove_leftovers(s);
    } else if (e) {
        rc = bp_err_sys(BP_EIO, e, "%s: cannot read", path);
    } else {
        bp_cmanifest m;
        /* written atomically: a manifest that does not decode is damage, not a torn write */
        rc = bp_cmanifest_decode(&m, buf, len, path);
        if (!rc && s->read_only)
            rc = bp_err(BP_EREADONLY,
                        "%s: a compaction was interrupted after its commit; open the store "
                        "writable once to finish it",
                        s->dir);
        if (!rc) {
            bp_anchors check; /* the embedded anchors must decode before anything moves */
            rc = bp_anchors_decode(&check, m.anchors, m.anchors_len, path);
            bp_anchors_free(&check);
        }
        if (!rc) rc = finish(s, &m);
        bp_cmanifest_free(&m);
    }
    free(buf);
    return rc ? rc : load_anchors(s);
}

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

/* The hash of the event at slot, read from its frame. [i] held shared. */
static bp_status hash_of(bp_store *s, uint32_t slot, bp_hash *out) {
    bp_irec r = s->idx.recs[slot];
    bp_segref ref;
    if (!bp_segment_ref(s, r.segno, &ref))
        return bp_err(BP_ECORRUPT, "compact: segment %06u is missing", r.segno);
    bp_buf buf = {0};
    bp_frame fr;
    bp_status rc = bp_read_frame(s, &r, &ref, &buf, &fr);
    bp_segref_drop(&ref); /* ilock is held: no eviction here */
    if (!rc) *out = fr.event_hash;
    bp_buf_free(&buf);
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
    int e = bp_pf_open(&w->f, s->opts.fault, path, BP_O_RDWR | BP_O_CREATE | BP_O_TRUNC);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot create", path);
    uint8_t hdr[BP_SEG_HEADER_SIZE];
    bp_seg_header h = {BP_FORMAT_VERSION, segno, {0}, bp_pf_wall_ms()};
    memcpy(h.uuid, s->ident.uuid, 16);
    bp_seg_header_encode(&h, hdr);
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
    if (o->version != 1 && o->version != BP_COMPACT_OPTIONS_VERSION)
        return bp_err(BP_EINVAL, "bp_compact_options.version %u unknown (expected 1..%d)",
                      o->version, BP_COMPACT_OPTIONS_VERSION);
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

bp_status bp_compact(bp_store *s, const bp_compact_options *opts, bp_compact_report *out) {
    uint64_t t0 = bp_pf_mono_us();
    bp_compact_options defaults = BP_COMPACT_OPTIONS_INIT;
    if (out) memset(out, 0, sizeof *out);
    if (!s) return bp_err(BP_EINVAL, "bp_compact: store is NULL");
    if (in_progress == s)
        return bp_err(BP_EBUSY,
                      "%s: bp_compact called from its own progress callback (the compaction "
                      "in progress holds the store's compaction lock); compact again after it "
                      "returned",
                      s->dir);
    if (!opts) opts = &defaults;
    bp_status rc = check_options(opts);
    if (rc) return rc;
    bp_compact_options given = BP_COMPACT_OPTIONS_INIT;
    if (opts->version == 1) { /* a version-1 struct ends before progress */
        memcpy(&given, opts, offsetof(bp_compact_options, progress));
        given.version = BP_COMPACT_OPTIONS_VERSION;
        opts = &given;
    }
    if (s->read_only && !opts->dry_run)
        return bp_err(BP_EREADONLY, "%s: compact on a read-only handle (a dry run is allowed)",
                      s->dir);
    pthread_mutex_lock(&s->cmu);
    plan p;
    memset(&p, 0, sizeof p);
    outfile *outs = NULL;
    bp_index nx;
    bp_index_init(&nx);
    bp_anchors na;
    memset(&na, 0, sizeof na);
    bp_buf ab = {0}, mb = {0};
    bp_cmanifest man;
    memset(&man, 0, sizeof man);
    uint32_t n_open = 0;
    bool committed = false;
    bp_segment *retired = NULL;
    uint32_t n_retired = 0;
    bp_segfile **newsf = NULL;
    char **forget = NULL;
    uint32_t n_forget = 0;

    pthread_mutex_lock(&s->wmu);
    rc = start_range(s, opts->dry_run, &p);
    pthread_mutex_unlock(&s->wmu);
    if (rc) goto done;
    uint32_t n_range = p.last + 1 - p.first;
    if (p.last < p.first) n_range = 0;
    pthread_rwlock_rdlock(&s->ilock);
    rc = n_range ? make_plan(s, opts, n_range, &p) : BP_OK;
    pthread_rwlock_unlock(&s->ilock);
    if (rc) goto done;
    if (out) {
        out->segments_before = n_range;
        out->segments_after = n_range ? p.n_out : 0;
        out->events_kept = p.kept;
        out->events_removed = p.removed;
        out->bytes_before = p.bytes_before;
        out->entities_anchored = p.anchored;
        out->upto = p.end;
    }
    /* nothing to drop and no file to save: leave everything as it is */
    bool noop = !n_range || (!p.removed && p.n_out == n_range);
    if (noop || opts->dry_run) {
        if (out && noop) {
            out->segments_after = n_range;
            out->bytes_after = out->bytes_before;
        } else if (out) { /* frames exactly; footers estimated at their records' size */
            for (uint32_t i = 0; i < p.n_out; i++)
                out->bytes_after += p.out_size[i];
            out->bytes_after += p.kept * (BP_IREC_SIZE + 8);
        }
        goto done;
    }
    step(1);

    /* write the new files (the range is immutable: no lock needed to read it) */
    uint32_t new_first = p.last + 1 - p.n_out;
    outs = calloc(p.n_out ? p.n_out : 1, sizeof *outs);
    uint64_t *out_first = calloc(p.n_out ? p.n_out : 1, sizeof *out_first);
    if (!outs || !out_first) {
        free(out_first);
        rc = bp_err(BP_ENOMEM, "compact: out of memory");
        goto done;
    }
    /* events per output, for the seq arrays */
    uint64_t *per = calloc(p.n_out ? p.n_out : 1, 8);
    if (!per) {
        free(out_first);
        rc = bp_err(BP_ENOMEM, "compact: out of memory");
        goto done;
    }
    pthread_rwlock_rdlock(&s->ilock);
    for (uint64_t slot = 0; slot < p.end; slot++)
        if (!BP_IREC_HOLE(&s->idx.recs[slot]) && !p.drop[slot]) per[p.out_of[slot]]++;
    pthread_rwlock_unlock(&s->ilock);
    for (uint32_t i = 0; i < p.n_out; i++)
        outs[i].f = (bp_file)BP_FILE_INIT;
    for (uint32_t i = 0; i < s->anchors.n && !rc; i++)
        if (bp_index_anchor(&nx, s->anchors.v[i].entity, s->anchors.v[i].len, s->anchors.v[i].clock,
                            &s->anchors.v[i].hash))
            rc = bp_err(BP_ENOMEM, "compact: out of memory");
    if (!rc && merge_anchors(s, &p, &na)) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < na.n && !rc; i++) { /* new anchors (old ones are in already) */
        int64_t e = bp_index_entity(&nx, na.v[i].entity, na.v[i].len);
        int ae = 0;
        if (e < 0)
            ae = bp_index_anchor(&nx, na.v[i].entity, na.v[i].len, na.v[i].clock, &na.v[i].hash);
        else {
            nx.entities[e].base = na.v[i].clock;
            nx.entities[e].head = na.v[i].hash;
        }
        if (ae) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    }
    uint32_t cur_seg = 0;
    bp_file in = BP_FILE_INIT;
    bp_view view;
    memset(&view, 0, sizeof view);
    bool viewing = false;
    bp_irec chunk[1024]; /* the range's records, copied under ilock a chunk at a time */
    for (uint64_t slot = 0; slot < p.end && !rc; slot++) {
        if (slot % 1024 == 0) {
            report_progress(s, opts, slot, p.end);
            uint64_t k = p.end - slot < 1024 ? p.end - slot : 1024;
            pthread_rwlock_rdlock(&s->ilock);
            memcpy(chunk, &s->idx.recs[slot], k * sizeof *chunk);
            pthread_rwlock_unlock(&s->ilock);
        }
        bp_irec r = chunk[slot % 1024];
        if (BP_IREC_HOLE(&r) || p.drop[slot]) continue;
        if (!viewing || r.segno != cur_seg) {
            if (viewing) {
                bp_pf_view_release(&view);
                bp_pf_close(&in);
                viewing = false;
            }
            char path[4200];
            bp_segment_path(s, r.segno, "", path, sizeof path);
            int e = bp_pf_open(&in, NULL, path, BP_O_READ);
            if (!e && (e = bp_pf_view(&in, path, &view))) bp_pf_close(&in);
            if (e) {
                rc = bp_err_sys(BP_EIO, e, "%s: cannot read", path);
                break;
            }
            viewing = true;
            cur_seg = r.segno;
        }
        /* next-fit fills the outputs in seq order: one is open at a time, and each is
         * sealed (and its descriptor closed) before the next one is made */
        uint32_t o = p.out_of[slot];
        while (!rc && n_open <= o) {
            if (n_open && (rc = out_seal(s, &outs[n_open - 1], &nx, &out_first[n_open - 1]))) break;
            rc = out_open(s, &outs[n_open], new_first + n_open, per[n_open]);
            n_open++; /* the done: path cleans it up, made or not */
        }
        if (!rc) rc = copy_frame(s, &outs[o], slot, &r, view.p, view.len, p.at[slot]);
    }
    free(per);
    if (viewing) {
        bp_pf_view_release(&view);
        bp_pf_close(&in);
    }
    if (!rc) report_progress(s, opts, p.end, p.end);
    if (!rc && n_open != p.n_out)
        rc = bp_err(BP_ECORRUPT, "compact: %u of %u new files were written", n_open, p.n_out);
    if (!rc && n_open) rc = out_seal(s, &outs[n_open - 1], &nx, &out_first[n_open - 1]);
    if (!rc) {
        int e = bp_index_holes(&nx, p.end, p.last);
        if (e) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    }
    if (!rc) {
        int e = bp_pf_fsync_dir(s->opts.fault, s->segdir);
        if (e) rc = bp_err_sys(BP_EIO, e, "%s: cannot sync", s->segdir);
    }
    step(2);
    /* the anchors file and the manifest */
    if (!rc) {
        na.first_segno = p.n_out ? new_first : p.last + 1;
        na.last_segno = p.last;
        na.upto = p.end;
        man.old_first = p.first;
        man.old_last = p.last;
        man.new_first = new_first;
        man.n_new = p.n_out;
        man.sizes = calloc(p.n_out ? p.n_out : 1, sizeof *man.sizes);
        man.crcs = calloc(p.n_out ? p.n_out : 1, sizeof *man.crcs);
        if (!man.sizes || !man.crcs || bp_anchors_encode(&ab, &na))
            rc = bp_err(BP_ENOMEM, "compact: out of memory");
        for (uint32_t i = 0; i < p.n_out && !rc; i++) {
            man.sizes[i] = outs[i].size;
            man.crcs[i] = outs[i].crc;
        }
        man.anchors = ab.data;
        man.anchors_len = ab.len;
        if (!rc && bp_cmanifest_encode(&mb, &man)) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    }
    /* readers of the new segments read them through these until the renames are done (a
     * reader opening NNNNNN.fbat before then would get the replaced file) */
    newsf = calloc(p.n_out ? p.n_out : 1, sizeof *newsf);
    if (!rc && !newsf) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    for (uint32_t i = 0; i < p.n_out && !rc; i++) {
        int e = bp_segfile_open(s, new_first + i, ".compact", &newsf[i]);
        if (e)
            rc = bp_err_sys(BP_EIO, e, "%s: segment %06u.fbat.compact: cannot open it", s->segdir,
                            new_first + i);
    }
    if (rc) {
        free(out_first);
        goto done;
    }

    /* commit */
    pthread_mutex_lock(&s->wmu);
    if (s->failed)
        rc = bp_err(s->failed, "%s: store fail-stopped: %s", s->dir, bp_failed_detail(s));
    if (!rc && copy_tail(&s->idx, p.end, &nx)) rc = bp_err(BP_ENOMEM, "compact: out of memory");
    bp_segment *nsegs = NULL;
    uint32_t n_keep = s->n_segs - n_range, nn = p.n_out + n_keep;
    bp_strtab *graves = NULL;
    if (!rc && (!(nsegs = calloc(nn + 8, sizeof *nsegs)) ||
                !(retired = malloc((n_range ? n_range : 1) * sizeof *retired)) ||
                !(graves = realloc(s->graves, (s->n_graves + 2) * sizeof *graves))))
        rc = bp_err(BP_ENOMEM, "compact: out of memory");
    if (graves) s->graves = graves;
    char path[4200];
    if (!rc) { /* it may describe a segment about to be replaced */
        snprintf(path, sizeof path, "%s/index.ckpt", s->dir);
        int e = bp_pf_unlink(path);
        if (!e) e = bp_pf_fsync_dir(s->opts.fault, s->dir);
        if (e) rc = bp_err_sys(BP_EIO, e, "%s: cannot remove", path);
    }
    step(3);
    if (!rc) {
        int e = bp_pf_write_atomic(s->opts.fault, s->dir, "COMPACT", mb.data, mb.len);
        snprintf(path, sizeof path, "%s/COMPACT", s->dir);
        if (!e || bp_pf_exists(path) != 0) {
            committed = true; /* the manifest is there: the next open finishes it */
            if (e)
                rc = bp_store_fail(s, BP_EIO, e,
                                   "%s: compaction manifest written but not synced; reopen the "
                                   "store to finish the compaction",
                                   s->dir);
        } else {
            rc = bp_err_sys(BP_EIO, e, "%s: cannot write the compaction manifest", s->dir);
        }
    }
    if (committed && !rc) {
        step(10);
        for (uint32_t i = 0; i < p.n_out; i++) {
            bp_segment *g = &nsegs[i];
            g->segno = outs[i].segno;
            g->f = (bp_file)BP_FILE_INIT; /* sealed: no writer's descriptor */
            g->size = outs[i].size;
            g->first_slot = out_first[i];
            g->sealed = true;
            g->rd_keep = true; /* until finish() renamed it in */
        }
        n_forget = p.anchored;
        forget = calloc(n_forget ? n_forget : 1, sizeof *forget);
        for (uint32_t e = 0, k = 0; forget && e < s->idx.entity_names.n; e++)
            if (p.cut[e]) forget[k++] = strdup(s->idx.entity_names.s[e]);
        pthread_rwlock_wrlock(&s->ilock);
        for (uint32_t i = 0; i < n_keep; i++)
            nsegs[p.n_out + i] = s->segs[n_range + i];
        for (uint32_t i = 0; i < n_range; i++)
            retired[n_retired++] = s->segs[i];
        bp_index old = s->idx;
        s->idx = nx;
        /* readers look at the index only under ilock, but events read index-only and
         * subscription notices point at its names: those live until close */
        bp_index_free_keep_names(&old, &s->graves[s->n_graves], &s->graves[s->n_graves + 1]);
        s->n_graves += 2;
        memset(&nx, 0, sizeof nx); /* s->idx owns it now */
        free(s->segs);
        s->segs = nsegs;
        nsegs = NULL;
        s->n_segs = nn;
        s->segs_cap = nn + 8;
        bp_anchors_free(&s->anchors);
        bp_status arc = bp_anchors_decode(&s->anchors, ab.data, ab.len, "compact");
        /* the retired segments leave the cache; readers and events that hold their segfiles
         * keep them (unmapped by the last unref, after the files were removed) */
        for (uint32_t i = 0; i < n_retired; i++)
            retired[i].rd = bp_segment_uncache(s, &retired[i]);
        for (uint32_t i = 0; i < p.n_out; i++) {
            bp_segment_cache(s, &s->segs[i], newsf[i]);
            newsf[i] = NULL;
        }
        pthread_rwlock_unlock(&s->ilock);
        bp_cmanifest fm;
        bp_status frc = arc;
        if (!frc) frc = bp_cmanifest_decode(&fm, mb.data, mb.len, "compact");
        if (!frc) {
            frc = finish(s, &fm);
            bp_cmanifest_free(&fm);
        }
        if (!frc) { /* the new files have their names: evictable again */
            pthread_rwlock_wrlock(&s->ilock);
            for (uint32_t i = 0; i < p.n_out; i++)
                s->segs[i].rd_keep = false;
            pthread_rwlock_unlock(&s->ilock);
        }
        if (frc)
            rc = bp_store_fail(s, frc == BP_ENOMEM ? BP_ENOMEM : BP_EIO, 0,
                               "%s: compaction committed, finishing it failed (%s); reopen the "
                               "store to finish it",
                               s->dir, bp_last_error());
    }
    pthread_mutex_unlock(&s->wmu);
    free(nsegs);
    free(out_first);
    if (committed) { /* never waits for a reader: each holds its own reference */
        for (uint32_t i = 0; i < n_retired; i++) {
            bp_segfile_unref(retired[i].rd);
            bp_pf_close(&retired[i].f);
        }
        n_retired = 0;
    }
    if (committed && !rc) {
        for (uint32_t i = 0; forget && i < n_forget; i++)
            if (forget[i]) (void)bp_store_forget_hooks(s, forget[i]); /* caches: a refold */
        bp_err_clear();
        if (out) {
            out->changed = true;
            out->bytes_after = 0;
            for (uint32_t i = 0; i < p.n_out; i++)
                out->bytes_after += man.sizes[i];
        }
    }
done:
    for (uint32_t i = 0; outs && i < n_open; i++) {
        char path2[4200];
        bp_segment_path(s, outs[i].segno, ".compact", path2, sizeof path2);
        bp_pf_close(&outs[i].f);
        if (!committed) bp_pf_unlink(path2); /* committed: the next open renames it in */
        out_free(&outs[i]);
    }
    free(outs);
    for (uint32_t i = 0; newsf && i < p.n_out; i++)
        bp_segfile_unref(newsf[i]);
    free(newsf);
    free(retired);
    for (uint32_t i = 0; forget && i < n_forget; i++)
        free(forget[i]);
    free(forget);
    bp_index_free(&nx);
    free(na.v);
    bp_buf_free(&ab);
    bp_buf_free(&mb);
    free(man.sizes);
    free(man.crcs);
    plan_free(&p);
    pthread_mutex_unlock(&s->cmu);
    if (out) out->duration_us = bp_pf_mono_us() - t0;
    return rc;
}

/* ------------------------------------------------------------- anchors of an import */

bp_status bp_anchors_install(bp_store *s, const bp_anchors *a) {
    pthread_mutex_lock(&s->wmu);
    bp_status rc =
        s->failed ? bp_err(s->failed, "%s: store fail-stopped: %s", s->dir, bp_failed_detail(s))
                  : BP_OK;
    if (!rc && (s->written_seq || s->idx.n || s->anchors.n || s->anchors.upto || s->n_segs != 1 ||
                s->segs[0].sealed || s->segs[0].size != BP_SEG_HEADER_SIZE))
        rc = bp_err(BP_ECONFLICT, "%s: not empty (it holds events or anchors)", s->dir);
    bp_anchors na = *a, check;
    memset(&check, 0, sizeof check);
    bp_buf b = {0};
    if (!rc) { /* the store's one (empty, active) segment holds the compacted range */
        na.first_segno = na.last_segno = s->segs[0].segno;
        if (bp_anchors_encode(&b, &na)) rc = bp_err(BP_ENOMEM, "%s: out of memory", s->dir);
    }
    if (!rc) rc = bp_anchors_decode(&check, b.data, b.len, "anchors"); /* an owned copy */
    if (!rc) rc = bp_anchors_write(s, &na);
    if (!rc) {
        pthread_rwlock_wrlock(&s->ilock);
        for (uint32_t i = 0; i < check.n && !rc; i++)
            if (bp_index_anchor(&s->idx, check.v[i].entity, check.v[i].len, check.v[i].clock,
                                &check.v[i].hash))
                rc = bp_store_fail(s, BP_ENOMEM, 0, "%s: out of memory", s->dir);
        if (!rc) {
            bp_anchors_free(&s->anchors);
            s->anchors = check;
            memset(&check, 0, sizeof check);
        }
        pthread_rwlock_unlock(&s->ilock);
    }
    bp_anchors_free(&check);
    bp_buf_free(&b);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

bp_status bp_anchors_extend(bp_store *s, uint32_t last_segno) {
    bp_anchors na = s->anchors;
    na.last_segno = last_segno;
    bp_status rc = bp_anchors_write(s, &na);
    if (rc) return bp_store_fail(s, rc, 0, "%s", bp_last_error());
    pthread_rwlock_wrlock(&s->ilock);
    s->anchors.last_segno = last_segno;
    pthread_rwlock_unlock(&s->ilock);
    return BP_OK;
}
