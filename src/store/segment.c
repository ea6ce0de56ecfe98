/* Segment files: creation, sealing with the SIDX footer, and the index
 * checkpoint written at close. */
#include "store/store_impl.h"
#include "store/piece.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void bp_segment_path(const bp_store *s, uint32_t segno, const char *suffix, char *out, size_t cap) {
    if (!*suffix && s->cv_compact && segno - s->cv_first < s->cv_n &&
        s->cv_compact[segno - s->cv_first])
        suffix = ".compact"; /* (a read-only view of an unfinished compaction) */
    snprintf(out, cap, "%s/%06u.fbat%s", s->segdir, segno, suffix);
}

bp_status bp_segdir_not_dir(const bp_store *s) {
    return bp_err(BP_ECORRUPT,
                  "%s: not a directory (a store keeps its segment files there): move it aside, "
                  "or restore the store from a backup",
                  s->segdir);
}

int bp_segs_reserve(bp_store *s) {
    if (s->n_segs < s->segs_cap) return 0;
    uint32_t nc = s->segs_cap ? s->segs_cap * 2 : 8;
    bp_segment *g = realloc(s->segs, nc * sizeof *g);
    if (!g) return -ENOMEM;
    s->segs = g;
    s->segs_cap = nc;
    return 0;
}

bp_segfile *bp_segs_push(bp_store *s, const bp_segment *seg) {
    /* the previous segment's segfile was made for an active one (a descriptor, room to grow
     * into): the next reader maps it as a sealed one */
    bp_segfile *old = s->n_segs ? bp_segment_uncache(s, &s->segs[s->n_segs - 1]) : NULL;
    s->segs[s->n_segs++] = *seg;
    return old;
}

void bp_segment_header(const bp_store *s, uint32_t segno, uint8_t out[BP_SEG_HEADER_SIZE]) {
    bp_seg_header h = {BP_FORMAT_VERSION, segno, {0}, bp_pf_wall_ms()};
    memcpy(h.uuid, s->ident.uuid, 16);
    bp_seg_header_encode(&h, out);
}

bp_status bp_segment_create(bp_store *s, uint32_t segno) {
    char path[4096];
    bp_segment_path(s, segno, "", path, sizeof path);
    pthread_rwlock_wrlock(&s->ilock);
    int room = bp_segs_reserve(s);
    pthread_rwlock_unlock(&s->ilock);
    if (room) return bp_store_fail(s, BP_ENOMEM, 0, "%s: out of memory", path);
    bp_segment seg = {.segno = segno,
                      .f = BP_FILE_INIT,
                      .size = BP_SEG_HEADER_SIZE,
                      .first_slot = s->idx.n}; /* the rest zero: active, nothing cached */
    int rc = bp_pf_open(&seg.f, s->fault, path, BP_O_RDWR | BP_O_CREATE | BP_O_TRUNC);
    if (rc) return bp_store_fail(s, BP_EIO, rc, "%s: cannot create segment", path);
    uint8_t hdr[BP_SEG_HEADER_SIZE];
    bp_segment_header(s, segno, hdr);
    if ((rc = bp_pf_pwrite(&seg.f, hdr, sizeof hdr, 0)) || (rc = bp_pf_datasync(&seg.f)) ||
        (rc = bp_pf_fsync_dir(s->fault, s->segdir))) {
        bp_pf_close(&seg.f);
        return bp_store_fail(s, BP_EIO, rc, "%s: cannot write segment header", path);
    }
    s->fsyncs += 2;
    pthread_rwlock_wrlock(&s->ilock);
    bp_segfile *old = bp_segs_push(s, &seg);
    pthread_rwlock_unlock(&s->ilock);
    bp_segfile_unref(old);
    return BP_OK;
}

void bp_segment_zero_ahead(bp_store *s) {
    static uint8_t page[4096]; /* never written */
    bp_segment *seg = &s->segs[s->n_segs - 1];
    if (seg->zero_end == UINT64_MAX || seg->zero_end >= seg->size + BP_ZERO_AHEAD_MIN) return;
    uint64_t from = seg->zero_end > seg->size ? seg->zero_end : seg->size;
    uint64_t to = from + BP_ZERO_CHUNK, cap = s->opts.segment_size; /* rotation comes first */
    if (cap > bp__seg_end_max) cap = bp__seg_end_max;
    if (to > cap) to = cap;
    /* a page per write: the page cache then holds small folios, and a later fdatasync writes
     * back the pages appends dirtied, not a whole large folio made by one big write (measured
     * on Linux 6.18 ext4: 1 MiB written back per sync with one 1 MiB write of zeros) */
    for (uint64_t off = from; off < to;) {
        uint64_t next = (off / sizeof page + 1) * sizeof page;
        size_t len = (size_t)((next < to ? next : to) - off);
        if (bp_pf_pwrite(&seg->f, page, len, off)) {
            seg->zero_end = UINT64_MAX; /* not again on this segment: trim and recovery cut it */
            return;
        }
        off += len;
        seg->zero_end = off;
    }
}

int bp_segment_trim(bp_store *s) {
    bp_segment *seg = &s->segs[s->n_segs - 1];
    if (seg->zero_end <= seg->size) return 0;
    int e = bp_pf_truncate(&seg->f, seg->size);
    if (!e) seg->zero_end = seg->size;
    return e;
}

bp_status bp_segment_seal(bp_store *s) {
    bp_status prc = bp_flush_pending(s); /* the footer goes after every frame */
    if (prc) return prc;
    bp_segment *seg = &s->segs[s->n_segs - 1];
    /* the footer ends the file (its trailer is read at the end): the zeros ahead go first,
     * and the fdatasync below makes the new size durable with the footer */
    int te = bp_segment_trim(s);
    if (te)
        return bp_store_fail(s, BP_EIO, te, "%s: sealing segment %06u: cannot truncate it", s->dir,
                             seg->segno);
    bp_iblock blk;
    bp_buf b = {0};
    if (bp_index_export_view(&s->idx, seg->first_slot, s->idx.n, &blk) ||
        bp_footer_encode(&b, &blk, seg->size)) {
        bp_index_block_release(&blk);
        bp_buf_free(&b);
        return bp_store_fail(s, BP_ENOMEM, 0, "%s: out of memory building a segment footer",
                             s->dir);
    }
    bp_index_block_release(&blk);
    int rc = bp_pf_pwrite(&seg->f, b.data, b.len, seg->size);
    if (!rc) rc = bp_pf_datasync(&seg->f);
    uint32_t footer_crc = bp_get_be32(b.data + b.len - BP_TRAILER_SIZE - 4);
    size_t footer_len = b.len; /* (before the buffer is freed, which zeroes it) */
    bp_buf_free(&b);
    s->fsyncs++;
    if (rc)
        return bp_store_fail(s, BP_EIO, rc, "%s: sealing segment %06u failed", s->dir, seg->segno);
    seg->size += footer_len;
    seg->sealed = true;
    bp_segment_close_writer(s, seg);    /* sealed: nothing writes to it again */
    bp_six_write_seg(s, s->n_segs - 1); /* caches: a failure is counted, not fatal */
    bp_entckpt_write_seal(s, footer_crc);
    bp_piece_drop(s);     /* (the two above stand for it now) */
    s->tier_check = true; /* its records leave memory once published (bp_tier_extend) */
    /* everything in the sealed segment is durable now */
    __atomic_store_n(&s->synced_seq, s->written_seq, __ATOMIC_RELEASE); /* read without wmu */
    s->unsynced = 0;
    return BP_OK;
}

void bp_ckpt_meta_of(const bp_store *s, uint32_t segno, uint64_t offset, bp_ckpt_meta *m) {
    memset(m, 0, sizeof *m);
    memcpy(m->uuid, s->ident.uuid, 16);
    m->covered_segno = segno;
    m->covered_offset = offset;
    m->last_hlc = s->last_hlc; /* (a floor: an open takes the newest event's if later) */
    memcpy(m->last_id.b, s->idgen.last, 16);
}

/* Write index.ckpt listing the events from slot `from` on (doc/FORMAT.md "index.ckpt"). */
static bp_status write_checkpoint(bp_store *s, uint64_t from) {
    if (s->pending.len) /* callers sync first; a checkpoint must not cover unwritten bytes */
        return bp_err(BP_EINVAL, "%s: checkpoint with frames still queued", s->dir);
    bp_iblock blk;
    bp_buf b = {0};
    const bp_segment *act = &s->segs[s->n_segs - 1];
    bp_ckpt_meta m;
    bp_ckpt_meta_of(s, act->segno, act->size, &m);
    if (bp_index_export_view(&s->idx, from, s->idx.n, &blk) || bp_ckpt_encode(&b, &m, &blk)) {
        bp_index_block_release(&blk);
        bp_buf_free(&b);
        return bp_err(BP_ENOMEM, "%s: out of memory writing the index checkpoint", s->dir);
    }
    bp_index_block_release(&blk);
    int rc = bp_pf_write_atomic(s->fault, s->dir, "index.ckpt", b.data, b.len);
    bp_buf_free(&b);
    s->fsyncs += 2;
    if (rc) return bp_err_sys(BP_EIO, rc, "%s/index.ckpt: cannot write checkpoint", s->dir);
    return BP_OK;
}

bp_status bp_store_checkpoint(bp_store *s) {
    /* the tail: the events of the active segment (the sealed ones have their footers) */
    return write_checkpoint(s, s->segs[s->n_segs - 1].first_slot);
}

void bp__store_hot_events(bp_store *s, uint64_t n) {
    pthread_mutex_lock(&s->wmu);
    s->hot_events = n;
    s->tier_check = true;
    pthread_mutex_unlock(&s->wmu);
}

bp_status bp__store_checkpoint_full(bp_store *s) {
    bp_status rc = bp_six_untier(s); /* (every record, in memory) */
    return rc ? rc : write_checkpoint(s, 0);
}
