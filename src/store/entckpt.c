/* The entity checkpoint at the store level (format/entdir.h, doc/FORMAT.md "entities.ckpt").
 *
 * Written at each seal (every entity's clock and head as the sealed segment ends them) and by
 * a writable open whose six tier reached past the one it found; read at open, where it stands
 * for the footers of the sealed segments up to the one it names: those segments are attached
 * by their index files alone (the six tier) and the entities loaded from it, with no footer
 * decoded. Like the index files it is a cache: written as tmp + rename without a sync, its
 * failures counted, never fatal; one that is missing, damaged, or does not fit the segments as
 * they are (its segment's size and footer CRC, the holes and seqs their index files count) is
 * passed over and the footers are read as before. */
#include "format/entdir.h"
#include "format/six.h"
#include "store/store_impl.h"
#include "store/piece.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define NAME "entities.ckpt"

/* ------------------------------------------------------------ writing */

/* An entity's state at the end of the segment a checkpoint names: 1 with its clock and head,
 * 0 when it has no event there past its anchor (not listed), -1 when it cannot be known
 * (nothing is written). */
typedef int (*state_fn)(bp_store *s, uint32_t e, uint64_t *clock, bp_hash *head);

typedef struct enc_ctx {
    bp_store *s;
    bp_buf *b;
    state_fn state;
    uint32_t ne;
    int rc;
} enc_ctx;

static bool enc_one(void *arg, int64_t id, int64_t cold) {
    enc_ctx *c = arg;
    const bp_index *x = &c->s->idx;
    uint64_t clock;
    bp_hash head;
    if (id >= 0) {
        int k = c->state(c->s, (uint32_t)id, &clock, &head);
        if (k < 0) c->rc = -EIO;
        if (k <= 0 || clock <= x->entities[id].base) return !c->rc;
        c->rc = bp_entdir_add_entity(c->b, x->entity_names.s[id], x->entity_names.len[id], clock,
                                     &head);
    } else { /* untouched since the checkpoint the handle opened with: as it says */
        const char *name;
        uint8_t len;
        bp_index_cold_entry(x->cold, (uint32_t)cold, &name, &len, &clock, &head);
        c->rc = bp_entdir_add_entity(c->b, name, len, clock, &head);
    }
    c->ne++;
    return !c->rc;
}

/* The file for the state of the index at the end of the segment m names: each entity with
 * events there past its anchor, as state gives it (the cold directory's untouched ones as it
 * has them), in name order. */
static int encode(bp_store *s, const bp_entdir_meta *m, bp_buf *b, state_fn state) {
    const bp_index *x = &s->idx;
    enc_ctx c = {s, b, state, 0, bp_entdir_begin(b, m)};
    if (!c.rc) {
        pthread_mutex_lock(&s->emu);
        if (bp_entities_walk(s, "", 0, false, enc_one, &c)) c.rc = -ENOMEM;
        pthread_mutex_unlock(&s->emu);
        bp_err_clear();
    }
    for (uint32_t k = 0; !c.rc && k < x->scope_names.n; k++)
        c.rc = bp_entdir_add_scope(b, x->scope_names.s[k], x->scope_names.len[k]);
    if (!c.rc) c.rc = bp_entdir_finish(b, c.ne, x->scope_names.n);
    return c.rc;
}

static bp_status write_named(bp_store *s, const bp_entdir_meta *m, state_fn state,
                             const char *name) {
    bp_buf b = {0};
    int e = encode(s, m, &b, state);
    if (!e) e = bp_pf_write_cache(s->fault, s->dir, name, b.data, b.len); /* checksummed */
    bp_buf_free(&b);
    if (e)
        return e == -ENOMEM ? bp_err(BP_ENOMEM, "%s/%s: out of memory", s->dir, name)
                            : bp_err_sys(BP_EIO, e, "%s/%s: cannot write", s->dir, name);
    return BP_OK;
}

static bp_status write_file(bp_store *s, const bp_entdir_meta *m, state_fn state) {
    return write_named(s, m, state, NAME);
}

static void meta_for(bp_store *s, uint32_t segno, uint64_t size, uint32_t footer_crc, uint64_t seqs,
                     uint64_t holes, bp_entdir_meta *m) {
    memset(m, 0, sizeof *m);
    memcpy(m->uuid, s->ident.uuid, 16);
    m->segno = segno;
    m->seg_size = size;
    m->footer_crc = footer_crc;
    m->seqs = seqs;
    m->holes = holes;
    m->anchors_upto = s->anchors.upto;
    m->anchors_last_segno = s->anchors.last_segno;
}

/* At a seal every event the index holds is in the sealed segment: the entities' heads. */
static int state_now(bp_store *s, uint32_t e, uint64_t *clock, bp_hash *head) {
    *clock = bp_index_head_clock(&s->idx, e);
    *head = s->idx.entities[e].head;
    return 1;
}

bp_status bp_entckpt_write_now(bp_store *s, const char *name, uint32_t segno, uint64_t seg_size,
                               uint32_t footer_crc) {
    bp_entdir_meta m;
    meta_for(s, segno, seg_size, footer_crc, s->idx.n, s->idx.holes, &m);
    return write_named(s, &m, state_now, name);
}

void bp_entckpt_write_seal(bp_store *s, uint32_t footer_crc) {
    const bp_segment *seg = &s->segs[s->n_segs - 1];
    bp_entdir_meta m;
    meta_for(s, seg->segno, seg->size, footer_crc, s->idx.n, s->idx.holes, &m);
    if (write_file(s, &m, state_now)) {
        s->six_failed++;
        bp_err_clear();
    }
}

/* After an open: an entity's state at the end of the six tier (its tier events; the head of
 * one that has events past the tier is read from the frame of its last tier event). */
static int state_tier(bp_store *s, uint32_t e, uint64_t *clock, bp_hash *head) {
    const bp_entity_state *es = &s->idx.entities[e];
    if (!es->tier) return 0; /* (an anchor alone: ANCHORS has it) */
    *clock = es->base + es->tier;
    if (!es->slots.n) {
        *head = es->head;
        return 1;
    }
    return bp_store_entity_hash(s, e, *clock, head) == BP_OK ? 1 : -1; /* (published) */
}

void bp_entckpt_open_pass(bp_store *s) {
    if (s->read_only || !s->n_six) return;
    const bp_segment *last = &s->segs[s->n_six - 1];
    if (s->entckpt_segno == last->segno) return; /* the checkpoint found is the tier's */
    bp_six_pair pair;
    if (bp_six_pair_read(s, last->segno, &pair)) return;
    uint64_t seqs = bp_seg_end_slot(s, s->n_six - 1), holes = 0;
    for (uint32_t i = 0; i < s->n_six; i++)
        holes += bp_seg_end_slot(s, i) - s->segs[i].first_slot - s->segs[i].six->x.n_recs;
    bp_entdir_meta m;
    meta_for(s, last->segno, pair.seg_size, pair.footer_crc, seqs, holes, &m);
    if (write_file(s, &m, state_tier)) bp_err_clear(); /* the next open reads footers again */
}

/* ------------------------------------------------------------ reading at open */

/* The index as recovery starts it: empty, but the anchors. */
static bp_status reset_index(bp_store *s) {
    bp_index_free(&s->idx);
    if (bp_index_init(&s->idx)) return bp_err(BP_ENOMEM, "%s: out of memory", s->dir);
    return bp_anchors_index(s);
}

/* Undo the attachments of segs[0..n). */
static void detach(bp_store *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        bp_six_detach(&s->segs[i]);
        memset(&s->segs[i], 0, sizeof s->segs[i]);
        s->segs[i].f = (bp_file)BP_FILE_INIT;
    }
    s->n_segs = s->n_six = 0;
}

/* Attach segments first .. m->segno by their index files: false (nothing attached) unless
 * every one has a good header and a current index file, none needs the holes that end a compacted
 * range, and their seqs and holes are the checkpoint's. */
static bool attach_all(bp_store *s, uint32_t first, const bp_entdir_meta *m, bool piece) {
    uint64_t n = 0, holes = 0;
    uint32_t count = m->segno - first + 1;
    for (uint32_t i = 0; i < count; i++) {
        bp_segment *seg = &s->segs[i];
        seg->segno = first + i;
        seg->f = (bp_file)BP_FILE_INIT;
        bp_six_pair pair;
        bool last_piece = piece && i + 1 == count; /* (its pair checked by bp_piece_attach) */
        bool ok = !(seg->segno > s->anchors.last_segno && n < s->anchors.upto) &&
                  (last_piece ? bp_piece_attach(s, seg, m)
                              : !bp_six_pair_read(s, seg->segno, &pair) && /* (header too) */
                                    bp_six_attach(s, seg, pair.seg_size, pair.frames_end,
                                                  pair.footer_crc, 0, 0));
        const bp_six *x = ok ? &seg->six->x : NULL;
        ok = ok && x->first_seq > n &&
             (i + 1 < count || last_piece ||
              (pair.seg_size == m->seg_size && pair.footer_crc == m->footer_crc));
        if (!ok) {
            detach(s, i + (seg->six != NULL));
            return false;
        }
        seg->first_slot = n;
        seg->size = last_piece ? m->seg_size : pair.seg_size; /* (a piece's: its frames end) */
        seg->sealed = !last_piece;
        seg->ids_six = seg->six_tier = true;
        if (last_piece) seg->six_end = x->last_seq;
        holes += x->last_seq - n - x->n_recs;
        n = x->last_seq;
        s->n_segs = s->n_six = i + 1;
    }
    if (n != m->seqs || holes != m->holes) {
        detach(s, count);
        return false;
    }
    return true;
}

/* Load the scopes of d into the index (which holds the anchors only) and set its entities as
 * the index's cold directory (searched in place: none is loaded now): false when one is not
 * past its anchor's clock, or their events do not add up to the segments' (the index must be
 * reset). */
static bool load_entities(bp_store *s, const bp_entdir *d, bool *oom) {
    bp_index *x = &s->idx;
    size_t pos = d->scopes_off;
    for (uint32_t i = 0; i < d->m.n_scopes; i++) {
        const char *name;
        uint8_t len;
        bp_entdir_scope(d, &pos, &name, &len);
        if (bp_index_intern(x, name, len, true) < 0) {
            *oom = true;
            return false;
        }
    }
    uint64_t events = 0;
    int e = bp_index_cold_set(x, d, &events);
    if (e) {
        *oom = e == -ENOMEM;
        return false;
    }
    bp_index_cold_verify(x, bp_tier_head, s); /* each entity's state checked at its first use */
    return events == d->m.seqs - d->m.holes;  /* every event of the segments, once */
}

/* Attach by the checkpoint DIR/name (a piece's when piece: its last segment by the piece). */
static uint32_t attach_by(bp_store *s, const char *name, bool piece, uint32_t first, uint32_t last,
                          uint32_t below, bp_status *err) {
    *err = BP_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    bp_file f = BP_FILE_INIT;
    bp_view view; /* mapped: the index searches its entities in place */
    memset(&view, 0, sizeof view);
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (!e) e = bp_pf_view(&f, &view);
    bp_pf_close(&f);
    if (e) return 0;
    bp_entdir d;
    bool ok = s->segs && bp_entdir_open(&d, view.p, view.len, path) == BP_OK &&
              memcmp(d.m.uuid, s->ident.uuid, 16) == 0 && d.m.segno >= first &&
              (piece ? d.m.segno == last : d.m.segno <= last) && (!below || d.m.segno < below) &&
              d.m.anchors_upto == s->anchors.upto &&
              d.m.anchors_last_segno == s->anchors.last_segno && attach_all(s, first, &d.m, piece);
    bp_err_clear();
    if (!ok) {
        bp_pf_view_release(&view);
        return 0;
    }
    bool oom = false;
    if (!load_entities(s, &d, &oom)) {
        *err = reset_index(s); /* (the cold directory dropped with it) */
        bp_pf_view_release(&view);
        detach(s, s->n_six);
        if (!*err && oom) *err = bp_err(BP_ENOMEM, "%s: out of memory loading %s", s->dir, name);
        return 0;
    }
    bp_pf_view_release(&s->cold_view); /* (none: recovery attaches once) */
    s->cold_view = view; /* the index's cold directory: mapped while the handle lives */
    /* the tier's slot ranges, one per segment (a repair places a segment's ids by its range) */
    uint32_t count = s->n_six;
    uint64_t *bounds = malloc(((size_t)count + 1) * sizeof *bounds);
    for (uint32_t i = 0; bounds && i <= count; i++)
        bounds[i] = i < count ? s->segs[i].first_slot : d.m.seqs;
    e = bounds ? bp_index_tier_ranges(&s->idx, bounds, count, d.m.holes) : -ENOMEM;
    free(bounds);
    if (e) {
        *err = bp_err(BP_ENOMEM, "%s: out of memory loading %s", s->dir, name);
        return 0;
    }
    s->report.footers_used += count - piece;  /* (what stood for them) */
    s->entckpt_segno = piece ? 0 : d.m.segno; /* (a writer's open pass writes its own) */
    return count;
}

uint32_t bp_entckpt_attach(bp_store *s, uint32_t first, uint32_t last, uint32_t below,
                           bp_status *err) {
    /* a reader of a live writer's store: its newest segment's piece, when there is one that
     * fits (it stands for the frames a scan would index: piece.c) */
    uint32_t n = s->read_only ? attach_by(s, BP_PIECE_NAME, true, first, last, 0, err) : 0;
    if (n || *err) return n;
    return attach_by(s, NAME, false, first, last, below, err);
}
