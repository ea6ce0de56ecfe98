/* Recovery at open: checkpoint, footers, frame scan, torn-tail cut (doc/FORMAT.md "Recovery
 * rules"). */
#include "store/recover.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum { LOAD_ALL, LOAD_NOID, LOAD_TIER } load_how;
static bp_status load_block(bp_store *s, bp_iblock *blk, const char *what, load_how how);

bp_status bp_recover_load_block(bp_store *s, bp_iblock *blk, const char *what) {
    return load_block(s, blk, what, LOAD_ALL);
}

/* LOAD_ALL: the block in memory; LOAD_NOID: but its ids and keys (its segment's index file
 * answers for them: bp_index_load_block_noid); LOAD_TIER: only its entities, scopes and holes
 * (the file answers for the rest: bp_index_load_tier). */
static bp_status load_block(bp_store *s, bp_iblock *blk, const char *what, load_how how) {
    if (blk->seqs && blk->seqs[blk->n_recs - 1] > s->anchors.upto)
        return bp_err(BP_ECORRUPT, "%s: lists global_seq %llu above the compacted range (%llu)",
                      what, (unsigned long long)blk->seqs[blk->n_recs - 1],
                      (unsigned long long)s->anchors.upto);
    if (blk->n_recs && (blk->seqs ? blk->first_seq <= s->idx.n : blk->first_seq != s->idx.n + 1))
        return bp_err(BP_ECORRUPT, "%s: starts at global_seq %llu, expected %llu", what,
                      (unsigned long long)blk->first_seq, (unsigned long long)s->idx.n + 1);
    int e = how == LOAD_ALL    ? bp_index_load_block(&s->idx, blk)
            : how == LOAD_NOID ? bp_index_load_block_noid(&s->idx, blk)
                               : bp_index_load_tier(&s->idx, blk);
    if (e)
        return bp_err_sys(e == -ENOMEM ? BP_ENOMEM : BP_ECORRUPT, e, "%s: cannot load the index",
                          what);
    return BP_OK;
}

int bp_quarantine_name(bp_store *s, const char *base, char qdir[4096], char name[BP_QNAME_MAX]) {
    snprintf(qdir, 4096, "%s/quarantine", s->dir);
    int rc = bp_pf_mkdir(qdir);
    if (rc) return rc;
    for (unsigned k = 1; k < 100000; k++) {
        if (k == 1)
            snprintf(name, BP_QNAME_MAX, "%s", base);
        else
            snprintf(name, BP_QNAME_MAX, "%s.%u", base, k);
        char path[4096 + BP_QNAME_MAX];
        snprintf(path, sizeof path, "%s/%s", qdir, name);
        rc = bp_pf_exists(path);
        if (rc <= 0) return rc; /* free (0) or an error */
    }
    return -EEXIST;
}

/* Move data[from, data_end) of a segment aside into DIR/quarantine and truncate it at from.
 * What lies from data_end to the end of the file is zeros written ahead of the frames
 * (bp_segment_zero_ahead): cut, but neither kept nor counted. */
static bp_status cut_tail(bp_store *s, bp_segment *seg, const uint8_t *data, uint64_t from,
                          uint64_t data_end) {
    s->report.bytes_cut += data_end - from;
    if (s->read_only) return BP_OK; /* a read-only open ignores the tail in memory */
    int rc = 0;
    if (data_end > from) {
        char qdir[4096], base[64], name[BP_QNAME_MAX];
        snprintf(base, sizeof base, "%06u.fbat.at-%llu.cut", seg->segno, (unsigned long long)from);
        rc = bp_quarantine_name(s, base, qdir, name);
        if (!rc) rc = bp_pf_write_atomic(s->fault, qdir, name, data + from, data_end - from);
    }
    if (!rc) rc = bp_pf_truncate(&seg->f, from);
    if (!rc) rc = bp_pf_fsync(&seg->f);
    if (rc)
        return bp_err_sys(BP_EIO, rc, "%s: segment %06u: cannot cut the torn tail at offset %llu",
                          s->dir, seg->segno, (unsigned long long)from);
    return BP_OK;
}

/* Where the bytes of data[from, size) that are not trailing zeros end. */
static uint64_t nonzero_end(const uint8_t *data, uint64_t from, uint64_t size) {
    while (size > from && size - from >= 8) {
        uint64_t w;
        memcpy(&w, data + size - 8, 8);
        if (w) break;
        size -= 8;
    }
    while (size > from && !data[size - 1])
        size--;
    return size;
}

/* Where the damage of a torn tail that starts at bad_at ends: the file's end when a frame
 * prefix does not fit, else past its last non-zero byte and past the frame its prefix
 * declares (whose last bytes may be zeros), but not into the zeros the writer wrote
 * ahead (bp_segment_zero_ahead), which a tail of zeros alone is. */
static uint64_t torn_end(const uint8_t *data, uint64_t bad_at, uint64_t size) {
    if (size - bad_at < BP_FRAME_PREFIX) return size;
    uint64_t end = nonzero_end(data, bad_at, size);
    if (end == bad_at) return bad_at;
    uint64_t len = BP_FRAME_PREFIX + (uint64_t)bp_frame_body_len(data + bad_at, BP_FRAME_PREFIX);
    if (len <= BP_FRAME_PREFIX + BP_FRAME_MAX_BODY && bad_at + len > end)
        end = bad_at + len < size ? bad_at + len : size;
    return end;
}

bp_status bp_recover_insert(bp_store *s, const bp_segment *seg, bp_scanned *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const bp_event_fields *f = &v[i].fr.f;
        int64_t e =
            bp_index_entity_next(&s->idx, f->entity, f->entity_len, f->clock, &f->prev_hash);
        uint64_t clock = bp_index_head_clock(&s->idx, e);
        static const bp_hash zero;
        const bp_hash *head = e < 0 ? &zero : &s->idx.entities[e].head;
        if (f->clock != clock + 1 || memcmp(f->prev_hash.b, head->b, 32) != 0)
            return bp_err(
                BP_ECORRUPT,
                "%s: segment %06u offset %u: entity '%.*s' chain broken (clock %llu after "
                "%llu, or prev_hash mismatch)",
                s->dir, seg->segno, v[i].offset, (int)f->entity_len, f->entity,
                (unsigned long long)f->clock, (unsigned long long)clock);
        bp_irec r = {f->event_id, f->hlc, seg->segno, v[i].offset, v[i].len,
                     0,           0,      f->kind,    f->flags};
        /* seqs a compaction removed (only in compacted segments: scan_frames checks) */
        if (bp_index_holes(&s->idx, f->global_seq - 1, seg->segno) ||
            bp_index_insert(&s->idx, &r, f->entity, f->entity_len, f->scope, f->scope_len,
                            &v[i].fr.event_hash, f->idem_key, f->idem_len))
            return bp_err(BP_ENOMEM, "%s: out of memory loading the index", s->dir);
    }
    return BP_OK;
}

/* A salvage moves the bytes of seg from `from` to its end to quarantine: count what they
 * held as lost in the open report (every frame there that still checks: the ones of an
 * incomplete batch before the damage, `before` of them, which the caller counts as cut, and
 * those after it), so that the report says how much went, not only how many bytes. */
void bp_recover_count_lost(bp_store *s, const uint8_t *data, size_t from, size_t end) {
    uint64_t frames = 0, first = 0;
    size_t at = from, found;
    while (at < end && bp_frame_find(data, at, end, &found)) {
        uint32_t flen;
        bp_frame fr;
        if (bp_frame_peek(data + found, end - found, &flen) != BP_FRAME_OK) break;
        if (!bp_frame_decode(data + found + BP_FRAME_PREFIX, flen - BP_FRAME_PREFIX, &fr)) {
            frames++;
            if (!first || fr.f.global_seq < first) first = fr.f.global_seq;
        }
        at = found + flen;
    }
    bp_err_clear();
    s->report.events_lost += frames;
    if (first && (!s->report.first_lost_seq || first < s->report.first_lost_seq))
        s->report.first_lost_seq = first;
}

static void salvage_count(bp_store *s, const bp_segment *seg, const uint8_t *data, uint64_t from,
                          uint64_t end, size_t before, const char *why) {
    uint64_t lost0 = s->report.events_lost;
    bp_recover_count_lost(s, data, from, end);
    uint64_t frames = s->report.events_lost - lost0;
    if (frames > before) s->report.frames_cut += frames - before;
    if (!s->report.loss_note[0])
        snprintf(s->report.loss_note, sizeof s->report.loss_note,
                 "salvage: segment %06u from offset %llu (%s) and what follows %s", seg->segno,
                 (unsigned long long)from, why,
                 s->read_only ? "left out (a writable open moves it to quarantine/)"
                              : "moved to quarantine/");
}

/* Parse frames of seg in data[start, end). is_tail: the newest segment, where
 * a torn tail is expected after a crash. */
static bp_status scan_frames(bp_store *s, bp_segment *seg, const uint8_t *data, uint64_t start,
                             uint64_t end, uint64_t file_size, bool is_tail, bool *salvaged) {
    bp_scanned *v = NULL;
    size_t n = 0, cap = 0, committed = 0;
    uint64_t pos = start, good_end = start, bad_at = 0;
    bool bad = false, in_batch = false, misfit = false;
    /* a compacted segment: its seqs may have holes, and compaction may have removed part of a
     * batch (what is left was checked when it was written) */
    bool compacted = seg->segno <= s->anchors.last_segno;
    uint64_t prev_seq = s->idx.n;
    char whybuf[300];
    uint64_t batch_id = 0;
    uint32_t batch_next = 0;
    const char *why = NULL;
    bp_status rc = BP_OK;
    while (pos < end) {
        uint32_t flen;
        bp_frame_check c = bp_frame_peek(data + pos, end - pos, &flen);
        if (c != BP_FRAME_OK) {
            bad = true;
            bad_at = pos;
            why = c == BP_FRAME_SHORT ? "truncated frame" : "frame length or CRC mismatch";
            break;
        }
        if (pos + flen > bp__seg_end_max) { /* (only a writer without the limit made one) */
            snprintf(whybuf, sizeof whybuf,
                     "frame ends at offset %llu, past the %llu bytes a segment can index (frame "
                     "offsets are 32-bit)",
                     (unsigned long long)(pos + flen), (unsigned long long)bp__seg_end_max);
            misfit = true;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            bp_scanned *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = bp_err(BP_ENOMEM, "%s: out of memory scanning segment %06u", s->dir,
                            seg->segno);
                goto out;
            }
            v = nv;
        }
        /* A CRC-valid frame that does not decode or does not fit here is never a torn
         * write: the segment is corrupt from this frame on (salvage keeps what precedes). */
        bp_scanned *sc = &v[n];
        if (bp_frame_decode(data + pos + BP_FRAME_PREFIX, flen - BP_FRAME_PREFIX, &sc->fr)) {
            snprintf(whybuf, sizeof whybuf, "%s", bp_last_error());
            misfit = true;
            break;
        }
        const bp_event_fields *f = &sc->fr.f;
        if (compacted ? f->global_seq <= prev_seq || f->global_seq > s->anchors.upto
                      : f->global_seq != prev_seq + 1) {
            snprintf(whybuf, sizeof whybuf, "global_seq %llu, expected %s%llu",
                     (unsigned long long)f->global_seq, compacted ? "more than " : "",
                     (unsigned long long)(prev_seq + !compacted));
            misfit = true;
            break;
        }
        prev_seq = f->global_seq;
        if (f->batch_count && !compacted) {
            bool starts = !in_batch && f->batch_index == 0;
            bool continues = in_batch && f->batch_id == batch_id && f->batch_index == batch_next;
            if (!starts && !continues) {
                snprintf(whybuf, sizeof whybuf, "batch frame %u/%u out of place", f->batch_index,
                         f->batch_count);
                misfit = true;
                break;
            }
            in_batch = f->batch_index + 1 < f->batch_count;
            batch_id = f->batch_id;
            batch_next = f->batch_index + 1;
        } else if (in_batch) {
            snprintf(whybuf, sizeof whybuf, "incomplete batch followed by other events");
            misfit = true;
            break;
        }
        sc->offset = (uint32_t)pos;
        sc->len = flen;
        n++;
        pos += flen;
        s->report.frames_scanned++;
        if (!in_batch) {
            committed = n;
            good_end = pos;
        }
    }
    if (misfit) {
        bad = true;
        bad_at = pos;
        why = whybuf;
        in_batch = false; /* the events of an open batch are cut with the rest */
    }
    s->report.bytes_scanned += pos - start;
    /* the writer fills zeros ahead of its frames (bp_segment_zero_ahead): a tail that ends
     * in them is cut like a torn one, without them; a tail of zeros alone is no damage */
    uint64_t data_end = bad && !misfit && is_tail ? torn_end(data, bad_at, end) : end;
    bool torn = bad && !misfit && is_tail && !bp_frame_find(data, bad_at + 1, data_end, NULL);
    bool corrupt = (bad && !torn) || (in_batch && !is_tail);
    if (corrupt) {
        if (!s->opts.salvage) {
            rc = bp_err(BP_ECORRUPT,
                        "%s: segment %06u offset %llu: %s%s (open with salvage, batpak --salvage, "
                        "to keep the valid prefix)",
                        s->dir, seg->segno, (unsigned long long)(bad ? bad_at : good_end),
                        bad ? why : "incomplete batch",
                        misfit    ? ""
                        : is_tail ? ", followed by valid frames"
                                  : " in a sealed segment");
            goto out;
        }
        *salvaged = true;
        salvage_count(s, seg, data, good_end, end, n - committed, bad ? why : "incomplete batch");
    }
    s->report.frames_cut += n - committed;
    if ((rc = bp_recover_insert(s, seg, v, committed))) goto out;
    seg->size = good_end;
    if (torn || corrupt || in_batch)
        rc = cut_tail(s, seg, data, good_end, torn ? data_end : file_size);
out:
    free(v);
    return rc;
}

/* Overwrite len bytes at off of a sealed segment (a repaired trailer or
 * footer) and make them durable. */
static bp_status rewrite_in_place(bp_segment *seg, const char *path, const void *buf, size_t len,
                                  uint64_t off, const char *what) {
    int w = bp_pf_pwrite(&seg->f, buf, len, off);
    if (!w) w = bp_pf_fsync(&seg->f);
    return w ? bp_err_sys(BP_EIO, w, "%s: cannot rewrite the %s", path, what) : BP_OK;
}

/* A sealed segment was rebuilt from its frames because its footer did not
 * decode: rewrite the footer from the index. Only when the new footer has the
 * same length, so the trailer stays as it is and a crash during the rewrite
 * leaves at worst another damaged footer (a cache miss). */
static bp_status repair_footer(bp_store *s, bp_segment *seg, const char *path, uint64_t foff,
                               uint32_t flen) {
    bp_iblock blk;
    bp_buf b = {0};
    bp_status rc = BP_OK;
    if (bp_index_export_view(&s->idx, seg->first_slot, s->idx.n, &blk) ||
        bp_footer_encode(&b, &blk, foff)) {
        rc = bp_err(BP_ENOMEM, "%s: out of memory rebuilding the footer", path);
    } else if (b.len == (size_t)flen + BP_TRAILER_SIZE) {
        rc = rewrite_in_place(seg, path, b.data, flen, foff, "SIDX footer");
    }
    bp_index_block_release(&blk);
    bp_buf_free(&b);
    return rc;
}

bp_status bp_recover_segment(bp_store *s, bp_segment *seg, const char *path, uint64_t scan_from,
                             bool try_footer, bool is_tail, bool *stop_after) {
    /* The segment is mapped, not read: a sealed one is loaded from its footer alone, and
     * a scan touches each byte once. Without a mapping, it is read whole. */
    bp_view view;
    /* the newest segment of a read-only open may be a live writer's, which a recovery or a
     * close of that writer may cut: read, not mapped (no page past a new end is touched);
     * but up to a live writer's mark, which no one cuts, it is mapped and read no further */
    uint64_t bound = UINT64_MAX;
    bool mark = s->read_only && is_tail && bp_live_tail_bound(s, seg->segno, &bound);
    int e = s->read_only && is_tail && !mark
                ? bp_pf_view_copy_part(&seg->f, &view, BP_SEG_HEADER_SIZE, scan_from)
                : bp_pf_view(&seg->f, &view);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot read segment", path);
    const uint8_t *data = view.p;
    uint64_t size = view.len < bound ? view.len : bound;
    bp_status rc;
    bp_seg_header h;
    if ((rc = bp_seg_header_decode(&h, data, size, path))) goto out;
    if (h.segno != seg->segno || memcmp(h.uuid, s->ident.uuid, 16) != 0) {
        rc = bp_err(BP_ECORRUPT, "%s: offset 0: segment header names segment %u of another store",
                    path, h.segno);
        goto out;
    }
    /* the segment's first event: the checkpoint may already hold some of them (the six
     * tier's segments, whose records are not in memory, are all before it) */
    uint64_t lo = s->idx.rbase, hi = s->idx.n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (BP_XREC(&s->idx, mid).segno < seg->segno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!seg->six_end) seg->first_slot = lo; /* (a piece's segment: its first is the tier's) */
    /* sealed? */
    uint64_t foff = 0, frames_end = size;
    uint32_t flen = 0;
    bool sealed = size >= BP_SEG_HEADER_SIZE + BP_TRAILER_SIZE &&
                  bp_trailer_decode(data + size - BP_TRAILER_SIZE, size, &foff, &flen);
    if (!sealed && !is_tail && bp_footer_find(data, size, &foff, &flen)) {
        /* an older segment must be sealed: its trailer is damaged but its footer is
         * intact, so the frames end at the footer. Repair the 16 bytes (writable open). */
        sealed = true;
        if (!s->read_only) {
            uint8_t t[BP_TRAILER_SIZE];
            bp_trailer_encode(t, foff, flen);
            if ((rc = rewrite_in_place(seg, path, t, sizeof t, size - BP_TRAILER_SIZE,
                                       "segment trailer")))
                goto out;
            if (view.copy) /* a map sees the rewrite */
                memcpy(view.copy + size - BP_TRAILER_SIZE, t, sizeof t);
        }
    }
    if (sealed) {
        frames_end = foff;
        if (try_footer && scan_from <= BP_SEG_HEADER_SIZE) {
            bp_iblock blk;
            if (bp_footer_decode(&blk, data + foff, flen, path) == BP_OK) {
                rc = BP_OK;
                for (uint32_t i = 0; i < blk.n_recs && !rc; i++)
                    if (blk.recs[i].segno != seg->segno ||
                        (uint64_t)blk.recs[i].offset + blk.recs[i].frame_len > foff)
                        rc = bp_err(BP_ECORRUPT, "%s: SIDX footer record %u out of range", path, i);
                /* its index file, when current, answers for its ids: idtab leaves them out */
                bool six = !rc && blk.n_recs &&
                           bp_six_attach(s, seg, size, foff, bp_get_be32(data + foff + flen - 4),
                                         blk.n_recs, blk.seqs ? blk.seqs[0] : blk.first_seq);
                /* the six tier: a prefix of such segments, whose slots the scope and kind
                 * lists leave out too */
                bool tier = six && s->n_six == s->n_segs - 1 && s->idx.n == s->idx.list_base &&
                            s->idx.n == s->idx.rbase;
                if (!rc)
                    rc = load_block(s, &blk, path, tier ? LOAD_TIER : six ? LOAD_NOID : LOAD_ALL);
                seg->ids_six = six && !rc;
                seg->six_tier = tier && !rc;
                if (seg->six_tier) s->n_six++;
                bp_iblock_free(&blk);
                if (rc) goto out;
                seg->size = size;
                seg->sealed = true;
                s->report.footers_used++;
                goto out;
            }
            /* a damaged footer is only a cache: rebuild from the frames */
        }
    }
    bool salvaged = false;
    uint64_t start = scan_from > BP_SEG_HEADER_SIZE ? scan_from : BP_SEG_HEADER_SIZE;
    if (start > frames_end) {
        rc = bp_err(BP_ECORRUPT,
                    "%s: acknowledged events lost: %llu bytes of frames, but index.ckpt "
                    "(written at a clean close) covers events up to offset %llu. Restore the "
                    "segment from a backup, or open with accept_loss (batpak --accept-loss) to "
                    "accept the loss",
                    path, (unsigned long long)frames_end, (unsigned long long)start);
        goto out;
    }
    rc = scan_frames(s, seg, data, start, frames_end, size, is_tail && !sealed, &salvaged);
    if (!rc && sealed && !salvaged) {
        seg->size = size;
        seg->sealed = true;
        if (try_footer && scan_from <= BP_SEG_HEADER_SIZE && !s->read_only)
            rc = repair_footer(s, seg, path, foff, flen);
    }
    *stop_after = salvaged;
out:
    bp_pf_view_release(&view);
    return rc;
}
