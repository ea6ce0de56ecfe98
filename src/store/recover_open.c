/* Recovery of a store at open: the segment files listed and checked against the evidence of
 * what the store held (index.ckpt, ANCHORS, the numbering), the checkpoint loaded where it
 * fits, and each segment loaded by its footer or scanned (recover.c scans the frames). */
#include "store/recover.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* A segment file's name exactly as segments are named ("%06u.fbat"): "0000001.fbat" or
 * "+1.fbat" is not segment 1 but a stray file. */
static bool parse_segno(const char *name, uint32_t *segno) {
    char *end;
    unsigned long v = strtoul(name, &end, 10);
    if (end == name || strcmp(end, ".fbat") != 0 || v == 0 || v > UINT32_MAX) return false;
    char canon[32];
    snprintf(canon, sizeof canon, "%06lu.fbat", v);
    if (strcmp(canon, name) != 0) return false;
    *segno = (uint32_t)v;
    return true;
}

typedef enum { CKPT_NONE, CKPT_FULL, CKPT_TAIL } ckpt_kind;

/* Evidence that data the store held is gone: index.ckpt (what a clean close covered),
 * DIR/ANCHORS (the segments a compaction wrote) and the segment numbering. A crash leaves
 * none of it (recovery cuts only what no checkpoint covers), so each is refused unless the
 * open accepts the loss (bp_open_options.accept_loss). */
typedef struct loss_ev {
    uint64_t last_seq;    /* the last global_seq the records list (0: none known) */
    uint32_t last;        /* the newest segment kept */
    uint32_t lost_to;     /* segments (last, lost_to] are gone (missing or set aside) */
    uint32_t short_segno; /* index.ckpt covers more of this segment than it holds; 0 none */
    bool gap;             /* a gap in the numbering: the segments after it are set aside */
    char what[300];       /* the first evidence found, for the message and the report */
} loss_ev;

/* Record one piece of evidence (the first one names the loss). */
static void loss_note(loss_ev *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loss_note(loss_ev *ev, const char *fmt, ...) {
    if (ev->what[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->what, sizeof ev->what, fmt, ap);
    va_end(ap);
}

/* How much of segment segno holds frames: its size, or where its footer starts when it is
 * sealed. -errno when it cannot be read. */
static int segment_frames_end(const bp_store *s, uint32_t segno, uint64_t *end) {
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    uint64_t size = 0;
    if (!e) e = bp_pf_size(&f, &size);
    *end = size;
    uint8_t t[BP_TRAILER_SIZE];
    uint64_t foff;
    uint32_t flen;
    if (!e && size >= BP_SEG_HEADER_SIZE + BP_TRAILER_SIZE &&
        bp_pf_pread(&f, t, sizeof t, size - sizeof t) == (ssize_t)sizeof t &&
        bp_trailer_decode(t, size, &foff, &flen))
        *end = foff;
    bp_pf_close(&f);
    return e;
}

/* Is there, where record r (the event at seq) says, a valid frame of another event? One
 * pread: a cheap guard against a CRC-valid checkpoint of other events (copied from a
 * backup of this store, say), which would point reads at the wrong frames. A missing or
 * damaged frame is not "another event": the checkpoint is then evidence of acknowledged
 * events, and open or the read reports their loss. */
static bool other_event_there(bp_file *f, const bp_irec *r, uint64_t seq) {
    uint8_t pre[BP_FRAME_PREFIX];
    if (bp_pf_pread(f, pre, sizeof pre, r->offset) != (ssize_t)sizeof pre) return false;
    uint32_t len = BP_FRAME_PREFIX + bp_frame_body_len(pre, sizeof pre); /* the frame's own */
    if (len < BP_FRAME_PREFIX || len > BP_FRAME_PREFIX + BP_FRAME_MAX_BODY) return false;
    uint8_t *buf = malloc(len);
    if (!buf) return false;
    bool other = false;
    uint32_t fl;
    bp_frame fr;
    if (bp_pf_pread(f, buf, len, r->offset) == (ssize_t)len &&
        bp_frame_peek(buf, len, &fl) == BP_FRAME_OK &&
        bp_frame_decode(buf + BP_FRAME_PREFIX, fl - BP_FRAME_PREFIX, &fr) == BP_OK)
        other = fl != r->frame_len || fr.f.global_seq != seq ||
                memcmp(fr.f.event_id.b, r->id.b, 16) != 0;
    free(buf);
    return other;
}

/* The block's first and last events in the covered segment are not other events, and the
 * last one ends at the covered offset. f: the covered segment. */
static bool block_fits(bp_file *f, const bp_iblock *blk, const bp_ckpt_meta *m) {
    if (!blk->n_recs) return true;
    const bp_irec *first = &blk->recs[0], *last = &blk->recs[blk->n_recs - 1];
    return last->segno == m->covered_segno &&
           (uint64_t)last->offset + last->frame_len == m->covered_offset &&
           (first->segno != m->covered_segno || !other_event_there(f, first, blk->first_seq)) &&
           !other_event_there(f, last, blk->first_seq + blk->n_recs - 1);
}

/* The checkpoint lists, in segment segno (whose frames end at end), a frame that is
 * another event's: its first record there, or the first one that does not fit whole. It is
 * then of another history of this store (a copy that went its own way), not a record of
 * this one. A record cut short or past the end is no such evidence: it is missing. */
static bool other_history(const bp_store *s, const bp_iblock *blk, uint32_t segno, uint64_t end) {
    uint32_t first = 0, cut;
    while (first < blk->n_recs && blk->recs[first].segno != segno)
        first++;
    for (cut = first; cut < blk->n_recs; cut++)
        if ((uint64_t)blk->recs[cut].offset + blk->recs[cut].frame_len > end) break;
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    bp_file f = BP_FILE_INIT;
    if (first == blk->n_recs || bp_pf_open(&f, NULL, path, BP_O_READ)) return false;
    bool other = false;
    uint32_t look[2] = {first, cut};
    for (int k = 0; k < 2 && !other; k++)
        if (look[k] < blk->n_recs && blk->recs[look[k]].offset < end)
            other = other_event_there(&f, &blk->recs[look[k]],
                                      blk->seqs ? blk->seqs[look[k]] : blk->first_seq + look[k]);
    bp_pf_close(&f);
    return other;
}

/* Try index.ckpt. A full checkpoint (first_seq 1, as older builds wrote) is loaded into the
 * index at once: CKPT_FULL. A tail checkpoint (the events of the covered segment only; the
 * sealed segments before it have their footers) is decoded into *tail and loaded when
 * recovery reaches the covered segment: CKPT_TAIL. CKPT_NONE: the note says why.
 * A checkpoint of this store that covers more than the files hold is evidence of lost data:
 * it goes into *ev. */
static ckpt_kind load_checkpoint(bp_store *s, uint32_t first_segno, uint32_t last_segno,
                                 bp_ckpt_meta *m, bp_iblock *tail, loss_ev *ev) {
    char path[4096];
    snprintf(path, sizeof path, "%s/index.ckpt", s->dir);
    /* mapped, not read: the file is large (48 bytes per event) and read once */
    bp_view view;
    memset(&view, 0, sizeof view);
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (!e) e = bp_pf_view(&f, &view);
    bp_pf_close(&f);
    if (e) {
        snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note, "%s",
                 e == -ENOENT ? "missing" : "unreadable");
        return CKPT_NONE;
    }
    bp_iblock blk;
    ckpt_kind kind = CKPT_NONE;
    bp_status rc = bp_ckpt_decode(m, &blk, view.p, view.len, path);
    const char *why = NULL;
    if (rc)
        why = rc == BP_EVERSION ? "unknown version" : "CRC or structure mismatch";
    else if (memcmp(m->uuid, s->ident.uuid, 16) != 0)
        why = "belongs to another store";
    if (!why) { /* this store's: what it covers was there at a clean close */
        uint64_t last_seq =
            blk.n_recs ? (blk.seqs ? blk.seqs[blk.n_recs - 1] : blk.first_seq + blk.n_recs - 1)
                       : blk.first_seq - 1;
        uint64_t end = 0;
        if (m->covered_segno > last_segno) {
            why = "refers to a missing segment";
            if (ev->last_seq < last_seq) ev->last_seq = last_seq;
            if (ev->lost_to < m->covered_segno) ev->lost_to = m->covered_segno;
            loss_note(ev,
                      "segment %06u is missing: index.ckpt (written at a clean close) covers "
                      "events up to global_seq %llu in segment %06u, the segments end at %06u",
                      last_segno + 1, (unsigned long long)last_seq, m->covered_segno, last_segno);
        } else if (m->covered_segno < first_segno) {
            why = "refers to a missing segment"; /* older than a compaction: not evidence */
        } else if (segment_frames_end(s, m->covered_segno, &end) == 0 && end < m->covered_offset) {
            if (other_history(s, &blk, m->covered_segno, end)) {
                why = "does not fit the segments"; /* of another history: not a record */
            } else {
                why = "covers more than the segment holds";
                if (ev->last_seq < last_seq) ev->last_seq = last_seq;
                ev->short_segno = m->covered_segno;
                loss_note(ev,
                          "segment %06u ends at offset %llu, but index.ckpt (written at a clean "
                          "close) covers events up to global_seq %llu at offset %llu in it",
                          m->covered_segno, (unsigned long long)end, (unsigned long long)last_seq,
                          (unsigned long long)m->covered_offset);
            }
        }
    }
    if (!why) {
        kind = blk.first_seq == 1 ? CKPT_FULL : CKPT_TAIL;
        for (uint32_t i = 0; i < blk.n_recs && !why; i++)
            if (blk.recs[i].segno < first_segno || blk.recs[i].segno > m->covered_segno ||
                (kind == CKPT_TAIL && blk.recs[i].segno != m->covered_segno))
                why = "record refers to a missing segment";
    }
    if (!why && kind == CKPT_FULL) {
        char seg[4200];
        bp_segment_path(s, m->covered_segno, "", seg, sizeof seg);
        bp_file sf = BP_FILE_INIT;
        if (!bp_pf_open(&sf, NULL, seg, BP_O_READ) && !block_fits(&sf, &blk, m))
            why = "does not fit the segments"; /* (a missing segment is refused below) */
        bp_pf_close(&sf);
    }
    if (!why && kind == CKPT_FULL && bp_recover_load_block(s, &blk, path)) {
        why = "does not fit the segments";
        bp_index_free(&s->idx);
        bp_index_init(&s->idx);
    }
    if (!why && kind == CKPT_TAIL)
        *tail = blk; /* the caller loads and frees it */
    else
        bp_iblock_free(&blk);
    bp_pf_view_release(&view);
    if (why) {
        snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note, "%s", why);
        return CKPT_NONE;
    }
    if (kind == CKPT_FULL) {
        s->report.checkpoint_used = true;
        snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note, "used");
    }
    return kind;
}

/* Move segments segno > after into quarantine (salvage). */
static bp_status set_aside(bp_store *s, char **names, size_t from, size_t n) {
    char a[4096], b[4096 + BP_QNAME_MAX], base[300], qdir[4096], name[BP_QNAME_MAX];
    int e = 0;
    for (size_t i = from; i < n && !e; i++) {
        snprintf(a, sizeof a, "%s/%s", s->segdir, names[i]);
        snprintf(base, sizeof base, "%s.salvaged", names[i]);
        if ((e = bp_quarantine_name(s, base, qdir, name))) break;
        snprintf(b, sizeof b, "%s/%s", qdir, name);
        e = bp_pf_rename(s->fault, a, b);
    }
    /* the quarantine entries must survive a power cut too */
    if (!e && from < n) e = bp_pf_fsync_dir(s->fault, qdir);
    if (!e) e = bp_pf_fsync_dir(s->fault, s->segdir);
    return e ? bp_err_sys(BP_EIO, e, "%s: cannot set segments aside", s->dir) : BP_OK;
}

/* A salvage sets the segments after the damaged one aside: what they hold is lost (counted in
 * the open report: segments_lost, events_lost). */
static void count_set_aside(bp_store *s, char **names, size_t from, size_t n) {
    for (size_t i = from; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", s->segdir, names[i]);
        bp_file f = BP_FILE_INIT;
        bp_view v;
        memset(&v, 0, sizeof v);
        s->report.segments_lost++;
        if (bp_pf_open(&f, NULL, path, BP_O_READ) || bp_pf_view(&f, &v)) {
            bp_pf_close(&f);
            continue;
        }
        bp_pf_close(&f);
        if (v.len > BP_SEG_HEADER_SIZE) bp_recover_count_lost(s, v.p, BP_SEG_HEADER_SIZE, v.len);
        bp_pf_view_release(&v);
    }
}

/* The newest segment holds at most a header, and that header is not valid. */
static bool unborn_segment(bp_segment *seg) {
    uint64_t size;
    if (bp_pf_size(&seg->f, &size) || size > BP_SEG_HEADER_SIZE) return false;
    uint8_t hdr[BP_SEG_HEADER_SIZE];
    ssize_t got = bp_pf_pread(&seg->f, hdr, (size_t)size, 0);
    bp_seg_header h;
    char what[64];
    snprintf(what, sizeof what, "segment %06u", seg->segno);
    bool bad = got != (ssize_t)size || bp_seg_header_decode(&h, hdr, (size_t)size, what) != BP_OK;
    bp_err_clear();
    return bad;
}

/* Past the compacted segments: the seqs their compaction removed at the end are holes. */
static bp_status fill_compacted(bp_store *s) {
    int e = bp_index_holes(&s->idx, s->anchors.upto, s->anchors.last_segno);
    return e ? bp_err(BP_ENOMEM, "%s: out of memory loading the index", s->dir) : BP_OK;
}

/* The segment files listed: their names in order (names[n, all) are set aside past a gap in
 * the numbering, when the loss is accepted), the first and last numbers, and the evidence of
 * loss in the numbering and in ANCHORS. */
typedef struct seglist {
    char **names;
    size_t n, all;
    uint32_t first, last; /* last == first - 1: none */
    loss_ev ev;
} seglist;

static bp_status list_segments(bp_store *s, seglist *l) {
    char **names = NULL;
    size_t n = 0;
    int e = bp_pf_list(s->segdir, ".fbat", &names, &n);
    l->names = names;
    l->all = n;
    if (e == -ENOTDIR) return bp_segdir_not_dir(s);
    if (e && e != -ENOENT) return bp_err_sys(BP_EIO, e, "%s: cannot list segments", s->segdir);
    uint32_t first = l->first = s->anchors.first_segno;
    /* a read-only view of an unfinished compaction: the segments it replaced, before its
     * first one, are still there (moved to the end of the list, which frees them) */
    size_t skip = 0;
    uint32_t no;
    while (s->cv_compact && skip < n && parse_segno(names[skip], &no) && no < first)
        skip++;
    for (size_t k = 0; k < skip; k++) {
        char *name = names[0];
        memmove(names, names + 1, (n - 1) * sizeof *names);
        names[n - 1] = name;
    }
    n -= skip;
    size_t all = n;
    loss_ev *ev = &l->ev;
    for (size_t i = 0; i < all; i++) {
        uint32_t segno;
        if (!parse_segno(names[i], &segno))
            return bp_err(BP_ECORRUPT,
                          "%s/%s: unexpected file name in segments/ (segment files are named "
                          "NNNNNN.fbat): move it out of the directory",
                          s->segdir, names[i]);
        if (i == 0 && segno != s->anchors.first_segno)
            return bp_err(BP_ECORRUPT,
                          "%s: acknowledged events lost: segment %06u is missing (the first "
                          "segment is %06u): the events after it chain from its events, so this "
                          "loss cannot be accepted; restore the missing segments from a backup "
                          "(nothing is written)",
                          s->segdir, s->anchors.first_segno, segno);
        if (!ev->gap && segno != first + i) {
            ev->gap = true; /* the segments from here on are set aside when it is accepted */
            loss_note(ev, "segment %06u is missing (the next one is %s)", (unsigned)(first + i),
                      names[i]);
            n = i;
        }
        if (ev->gap) ev->lost_to = segno;
    }
    uint32_t last = first + (uint32_t)n - 1;
    ev->last = last;
    if (s->anchors.last_segno > last) { /* a compaction wrote them */
        if (ev->lost_to < s->anchors.last_segno) ev->lost_to = s->anchors.last_segno;
        if (ev->last_seq < s->anchors.upto) ev->last_seq = s->anchors.upto;
        loss_note(ev,
                  "segment %06u is missing: ANCHORS (written by a compaction) lists segments "
                  "up to %06u, the segments end at %06u",
                  last + 1, s->anchors.last_segno, last);
    }
    l->n = n;
    l->last = last;
    return BP_OK;
}

/* Open each listed segment and load it into the index: from the checkpoint where it covers
 * the segment, else by its footer or a scan (recover.c). A segment that stops the scan (a
 * torn frame before its end) sets aside the ones after it. *ck drops to CKPT_NONE when the
 * tail checkpoint does not fit. */
static bp_status load_segments(bp_store *s, const seglist *l, ckpt_kind *ck, const bp_ckpt_meta *m,
                               bp_iblock *ckblk) {
    bp_status rc = BP_OK;
    char **names = l->names;
    size_t n = l->n;
    uint32_t first = l->first;
    int e;
    size_t start = 0; /* the segments the entity checkpoint attached (the six tier) */
    if (*ck != CKPT_FULL && n) {
        start = bp_entckpt_attach(s, first, first + (uint32_t)n - 1, 0, &rc);
        if (rc) return rc;
        /* a checkpoint of a tail the entity checkpoint's segments cover is older than it (a
         * writer sealed that segment since): what it holds, their index files have */
        if (start && *ck == CKPT_TAIL && first + start - 1 >= m->covered_segno) *ck = CKPT_NONE;
    }
    uint64_t piece_end = 0; /* the newest segment attached by its piece: scanned past it */
    if (start && s->segs[start - 1].six_end) {
        start--;
        s->n_segs--; /* (counted again below) */
        piece_end = s->segs[start].size;
        *ck = CKPT_NONE; /* (what a checkpoint of the tail has, the piece has too) */
    }
    for (size_t i = start; i < n; i++) {
        bp_segment *seg = &s->segs[i];
        char path[4096];
        seg->segno = first + (uint32_t)i;
        if (s->cv_compact) /* (its .compact file, when a compaction's view says so) */
            bp_segment_path(s, seg->segno, "", path, sizeof path);
        else
            snprintf(path, sizeof path, "%s/%s", s->segdir, names[i]);
        seg->f = (bp_file)BP_FILE_INIT;
        int fl = s->read_only ? BP_O_READ : BP_O_RDWR;
        if ((e = bp_pf_open(&seg->f, s->fault, path, fl))) {
            rc = bp_err_sys(BP_EIO, e, "%s: cannot open segment", path);
            return rc;
        }
        bool tail = i + 1 == n, stop = false;
        if (tail && unborn_segment(seg)) {
            /* a crash between creating the file and syncing its header: no frame can be in
             * it, so it is set aside and the previous segment is the newest again */
            bp_pf_close(&seg->f);
            s->report.segments--;
            if (!s->read_only && (rc = set_aside(s, names, i, n))) return rc;
            break;
        }
        s->n_segs++;
        uint64_t from = 0;
        if (seg->segno > s->anchors.last_segno && (rc = fill_compacted(s))) return rc;
        if (*ck == CKPT_FULL && seg->segno < m->covered_segno) {
            uint64_t sz;
            if ((e = bp_pf_size(&seg->f, &sz))) {
                rc = bp_err_sys(BP_EIO, e, "%s: cannot stat", path);
                return rc;
            }
            seg->size = sz;
            seg->sealed = true;
            bp_pf_close(&seg->f); /* sealed: readers open it on demand */
            continue;
        }
        if (*ck == CKPT_TAIL && seg->segno == m->covered_segno) {
            /* the footers before it are loaded: the tail block must start right after */
            char what[4200];
            snprintf(what, sizeof what, "%s/index.ckpt", s->dir);
            if ((ckblk->n_recs && ckblk->first_seq != s->idx.n + 1) ||
                !block_fits(&seg->f, ckblk, m) || (rc = bp_recover_load_block(s, ckblk, what))) {
                if (rc) return rc; /* out of memory: the index is half-loaded */
                snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note,
                         "does not fit the segments");
                *ck = CKPT_NONE;
            } else {
                s->report.checkpoint_used = true;
                snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note, "used");
            }
        }
        if (*ck && seg->segno == m->covered_segno) from = m->covered_offset;
        if (piece_end && i == start) from = piece_end;
        if ((rc = bp_recover_segment(s, seg, path, from, from == 0, tail, &stop))) return rc;
        /* one descriptor at a time: only a last segment left unsealed keeps its descriptor,
         * which a writable handle goes on writing and a read-only one reads (bp_live_pin) */
        if (seg->sealed || !(tail || stop) || (s->read_only && !tail)) bp_pf_close(&seg->f);
        if (stop && !tail) {
            count_set_aside(s, names, i + 1, n);
            if (!s->read_only && (rc = set_aside(s, names, i + 1, n))) return rc;
            break;
        }
    }
    return rc;
}

/* Recovery at open (before the modules open): an interrupted compaction finished or undone,
 * the segments listed, the checkpoint loaded where it fits, each segment loaded or scanned,
 * a torn tail cut; lost data refused unless the open accepts the loss. */
bp_status bp_store_recover(bp_store *s) {
    bp_iblock ckblk; /* a tail checkpoint's block, loaded at the covered segment */
    memset(&ckblk, 0, sizeof ckblk);
    seglist l;
    memset(&l, 0, sizeof l);
    /* an interrupted compaction first: finished (manifest) or undone (leftovers) */
    bp_status rc = bp_compact_recover(s);
    if (rc) return rc;
    if ((rc = list_segments(s, &l))) goto out;
    size_t n = l.n;
    uint32_t first = l.first, last = l.last;
    loss_ev *ev = &l.ev;
    s->report.segments = (uint32_t)n;
    bp_ckpt_meta m;
    memset(&m, 0, sizeof m);
    ckpt_kind ck = load_checkpoint(s, first, last, &m, &ckblk, ev);
    if (!n) {
        ck = CKPT_NONE;
        if (!strcmp(s->report.checkpoint_note, "missing"))
            snprintf(s->report.checkpoint_note, sizeof s->report.checkpoint_note, "no segments");
    }
    if (ev->what[0] && !s->opts.accept_loss) {
        rc = bp_err(BP_ECORRUPT,
                    "%s: acknowledged events lost: %s. Restore the files from a backup, or open "
                    "with accept_loss (batpak --accept-loss) to accept the loss (nothing is "
                    "written)",
                    s->dir, ev->what);
        goto out;
    }
    if (ev->what[0]) {
        s->report.segments_lost = (ev->lost_to > last ? ev->lost_to - last : 0) +
                                  (ev->short_segno && ev->short_segno <= last);
        snprintf(s->report.loss_note, sizeof s->report.loss_note, "%s", ev->what);
        s->loss_accepted = true;
        if (l.all > n && !s->read_only && (rc = set_aside(s, l.names, n, l.all))) goto out;
        if (s->anchors.last_segno > last) { /* rewritten with the new checkpoint */
            s->anchors.last_segno = last;
            s->anchors_lost = true;
        }
    }
    s->segs = calloc(n ? n : 1, sizeof *s->segs);
    s->segs_cap = n ? (uint32_t)n : 1;
    if (!s->segs) {
        rc = bp_err(BP_ENOMEM, "%s: out of memory", s->dir);
        goto out;
    }
    if ((rc = load_segments(s, &l, &ck, &m, &ckblk))) goto out;
    if (!rc && ev->what[0] && ev->last_seq > s->idx.n) { /* what the files no longer hold */
        s->report.first_lost_seq = s->idx.n + 1;
        s->report.events_lost = ev->last_seq - s->idx.n;
    }
    if (!rc) rc = fill_compacted(s);
    if (rc) goto out;
    bp_segment *newest = s->n_segs ? &s->segs[s->n_segs - 1] : NULL;
    if (newest && !newest->sealed && !s->read_only && newest->f.fd < 0) { /* the writer's again */
        char path[4096];
        bp_segment_path(s, newest->segno, "", path, sizeof path);
        int e = bp_pf_open(&newest->f, s->fault, path, BP_O_RDWR);
        if (e) {
            rc = bp_err_sys(BP_EIO, e, "%s: cannot open segment", path);
            goto out;
        }
    }
    if (ck == CKPT_TAIL && !s->report.checkpoint_used) ck = CKPT_NONE; /* never reached */
    if (ck) {
        s->last_hlc = m.last_hlc;
        bp_idgen_observe(&s->idgen, &m.last_id);
    }
out:
    bp_iblock_free(&ckblk);
    bp_pf_list_free(l.names, l.all);
    return rc;
}
