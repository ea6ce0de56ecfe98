/* Pieces (doc/FORMAT.md "Pieces"): what a reader of a live writer's store would otherwise
 * index itself. A reader's open attaches the sealed segments by their index files and the
 * entities by entities.ckpt, then scans the newest segment, which the writer has not sealed:
 * every event of it goes into the reader's memory (about 0.7 us each: a CLI command beside a
 * writer holding 240,000 unsealed events took 220 ms). So the writer, each time at least
 * BP_PIECE_BYTES of frames passed since its last piece, writes
 *  - segments/NNNNNN.pfidx, a segment index file (format/six.h) of the active segment's
 *    frames from its header to the last published one, and
 *  - entities.part, an entity checkpoint (format/entdir.h) of every entity's state there,
 * both paired with that point: the pair's seg_size and frames_end are the frames' end (a
 * sealed segment's pair has a footer past it, so the two never match), its footer_crc the
 * CRC32 of the last frame (its frame header's). A reader attaches them as a segment of the
 * six tier that ends early (bp_segment.six_end) and scans only past them.
 *
 * Like index files they are caches: written as tmp + rename without a sync (the pfidx first),
 * checked by their CRCs and against the frames before use, their failures counted and never
 * fatal. A piece that does not fit (another point of the frames, a write the crash took, a
 * pair the other file does not share) is passed over: the reader scans as before. A writer
 * removes them at a seal and at its open.
 *
 * Cost: a piece encodes the whole segment so far and every entity (tens of ms at 100,000
 * entities: 2-13 ms at 1M events of 100 B), under wmu. Unless forced by bp_store_sync, a
 * piece waits until 50 times the last one's cost passed: at most about 2 % of the writer's
 * time (measured: 1M appends without sync, 394k/s against 400k/s without pieces, medians of
 * 3; at 20 times it was 6 % fewer). */
#include "format/entdir.h"
#include "format/six.h"
#include "store/store_impl.h"
#include "store/piece.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t bp__piece_bytes = BP_PIECE_BYTES;

static void piece_name(uint32_t segno, char *out, size_t cap) {
    snprintf(out, cap, "%06u.pfidx", segno);
}

/* The CRC32 of the frame at offset of the file f (its frame header's), and whether the frame
 * is frame_len bytes long. */
static bool frame_crc(bp_file *f, uint64_t offset, uint32_t frame_len, uint32_t *crc) {
    uint8_t h[8];
    if (bp_pf_pread(f, h, sizeof h, offset) != (ssize_t)sizeof h) return false;
    *crc = bp_get_be32(h + 4);
    return (uint64_t)bp_get_be32(h) + 8 == frame_len;
}

void bp_piece_maybe(bp_store *s, bool force) {
    if (s->read_only || s->failed || !s->n_segs) return;
    bp_segment *seg = &s->segs[s->n_segs - 1];
    uint64_t last = s->piece_segno == seg->segno ? s->piece_end : BP_SEG_HEADER_SIZE;
    /* every event it indexes published (an append waiting for its sync is not), the segment
     * not one a compaction's range holds (holes), and enough frames since the last piece */
    if (seg->sealed || seg->segno <= s->anchors.last_segno || s->pending.len ||
        s->idx.n != s->published || s->idx.n <= seg->first_slot || s->idx.rbase > seg->first_slot ||
        seg->size < last + bp__piece_bytes)
        return;
    uint64_t t0 = bp_pf_mono_us();
    if (!force && t0 - s->piece_at_us < 50 * s->piece_cost_us) return;
    const bp_irec *r = &BP_XREC(&s->idx, s->idx.n - 1);
    bp_six_pair pair;
    memset(&pair, 0, sizeof pair);
    pair.segno = seg->segno;
    memcpy(pair.uuid, s->ident.uuid, 16);
    pair.seg_size = pair.frames_end = (uint64_t)r->offset + r->frame_len;
    char name[32];
    piece_name(seg->segno, name, sizeof name);
    bp_status rc = BP_OK;
    if (BP_IREC_HOLE(r) || r->segno != seg->segno ||
        !frame_crc(&seg->f, r->offset, r->frame_len, &pair.footer_crc))
        rc = bp_err(BP_EIO, "%s: segment %06u: cannot read its last frame", s->dir, seg->segno);
    if (!rc) rc = bp_six_write_as(s, &s->idx, seg->first_slot, s->idx.n, &pair, name);
    if (!rc)
        rc = bp_entckpt_write_now(s, BP_PIECE_NAME, seg->segno, pair.frames_end, pair.footer_crc);
    uint64_t t1 = bp_pf_mono_us();
    s->piece_at_us = t1;
    s->piece_cost_us = t1 - t0;
    if (rc) {
        s->pieces_failed++;
        bp_err_clear();
        return;
    }
    s->pieces_written++;
    s->piece_segno = seg->segno;
    s->piece_end = pair.frames_end;
}

void bp_piece_drop(bp_store *s) {
    if (!s->piece_segno) return;
    char name[32], path[4200];
    piece_name(s->piece_segno, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", s->segdir, name);
    (void)bp_pf_unlink(path); /* (entities.part first would not matter: they pair) */
    snprintf(path, sizeof path, "%s/%s", s->dir, BP_PIECE_NAME);
    (void)bp_pf_unlink(path);
    s->piece_segno = 0;
    s->piece_end = 0;
}

void bp_piece_clean(bp_store *s) {
    if (s->read_only) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", s->dir, BP_PIECE_NAME);
    (void)bp_pf_unlink(path);
    char **names = NULL;
    size_t n = 0;
    if (bp_pf_list(s->segdir, ".pfidx", &names, &n)) return;
    for (size_t k = 0; k < n; k++) {
        snprintf(path, sizeof path, "%s/%s", s->segdir, names[k]);
        (void)bp_pf_unlink(path);
    }
    bp_pf_list_free(names, n);
}

bool bp_piece_attach(bp_store *s, bp_segment *seg, const bp_entdir_meta *m) {
    char path[4200];
    char name[32];
    piece_name(seg->segno, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", s->segdir, name);
    bp_six_pair want;
    memset(&want, 0, sizeof want);
    want.segno = seg->segno;
    memcpy(want.uuid, s->ident.uuid, 16);
    want.seg_size = want.frames_end = m->seg_size;
    want.footer_crc = m->footer_crc;
    if (!bp_six_attach_file(s, seg, path, &want, 0, 0)) return false;
    bp_six *x = &seg->six->x;
    /* whole (its CRCs and invariants: a piece is not synced, and a tier segment that cannot
     * answer falls back on a footer, which this segment does not have), no holes (only a
     * compacted segment has them), and its last record the frame the segment holds there */
    bool ok = !(x->flags & BP_SIX_HOLES) && x->n_recs && bp_six_check_all(x, path) == BP_OK;
    bp_six_rec r;
    if (ok) bp_six_rec_get(x, x->n_recs - 1, &r);
    ok = ok && !bp_six_failed(x) && (uint64_t)r.offset + r.frame_len == m->seg_size;
    bp_segment_path(s, seg->segno, "", path, sizeof path);
    bp_file f = BP_FILE_INIT;
    uint8_t h[BP_SEG_HEADER_SIZE];
    bp_seg_header hd;
    uint32_t crc = 0;
    ok = ok && !bp_pf_open(&f, NULL, path, BP_O_READ) &&
         bp_pf_pread(&f, h, sizeof h, 0) == (ssize_t)sizeof h &&
         bp_seg_header_decode(&hd, h, sizeof h, path) == BP_OK && hd.segno == seg->segno &&
         memcmp(hd.uuid, s->ident.uuid, 16) == 0 && frame_crc(&f, r.offset, r.frame_len, &crc) &&
         crc == m->footer_crc;
    bp_pf_close(&f);
    bp_err_clear();
    if (!ok) bp_six_detach(seg);
    return ok;
}
