/* snapshot(dest): a consistent online backup (doc/GUIDE.md).
 *
 * Everything written is synced first, so every append that returned before the call is
 * published. Then, under the write lock, the point is taken: P, the publish watermark,
 * and for every segment how many of its bytes hold events <= P (a sealed segment whole;
 * the one holding P up to the end of P's frame, or whole when P is its last event and it
 * is sealed). Published frames never change, so the copy runs without the write lock while
 * appends go on; it holds the compaction lock (cmu), so that no compaction replaces a
 * segment file meanwhile, and opens one segment file at a time. The copy is made in
 * DEST.partial-PID, every file and directory is fsynced, and only then is it renamed to DEST: DEST
 * either does not exist or is a complete store holding exactly the events 1..P. */
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct seg_part {
    uint32_t segno;
    uint64_t len;
} seg_part;

/* Copy the files DIR/sub/ *suffix into tmp/sub/ (0700 when private), synced. */
static bp_status copy_keys(bp_store *s, const char *tmp, const char *sub, const char *suffix,
                           bool private_dir) {
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", s->dir, sub);
    char **names = NULL;
    size_t n = 0;
    int e = bp_pf_list(from, suffix, &names, &n);
    if (e == -ENOENT) return BP_OK;
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot list the keys", from);
    snprintf(to, sizeof to, "%s/%s", tmp, sub);
    if ((e = private_dir ? bp_pf_mkdir_private(to) : bp_pf_mkdir(to)) < 0) {
        bp_pf_list_free(names, n);
        return bp_err_sys(BP_EIO, e, "%s: cannot create", to);
    }
    bp_status rc = BP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        char src[4096], dst[4096];
        snprintf(src, sizeof src, "%s/%s", from, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", to, names[i]);
        uint8_t *buf = NULL;
        size_t len = 0;
        bp_file out;
        if ((e = bp_pf_read_all(src, &buf, &len)) ||
            (e = bp_pf_open(&out, s->fault, dst, BP_O_RDWR | BP_O_CREATE | BP_O_EXCL))) {
            rc = bp_err_sys(BP_EIO, e, "snapshot: cannot copy key %s", src);
        } else {
            e = bp_pf_pwrite(&out, buf, len, 0);
            if (!e) e = bp_pf_fsync(&out);
            int ce = bp_pf_close(&out);
            if (!e) e = ce;
            if (e) rc = bp_err_sys(BP_EIO, e, "snapshot: cannot write %s", dst);
        }
        if (buf) bp_wipe(buf, len);
        free(buf);
    }
    bp_pf_list_free(names, n);
    if (!rc && (e = bp_pf_fsync_dir(s->fault, to)))
        rc = bp_err_sys(BP_EIO, e, "snapshot: cannot sync %s", to);
    return rc;
}

/* [i] shared, wmu. What the copy holds, recorded as a clean close records it (an index.ckpt
 * of its newest segment: doc/FORMAT.md "index.ckpt"), so that an open of a copy that was cut
 * afterwards (a truncated backup) refuses the loss instead of taking it for a crash's torn
 * tail. The last part copied: a sealed segment copied whole (with its footer) is followed by
 * an empty segment (*next), which the checkpoint covers, as after a seal; a partial one is
 * covered up to where its copy ends, with its records (kept in memory: the newest segment's
 * are; one whose records are in the six tier's files gets no checkpoint, *out left empty). */
static bp_status snapshot_ckpt(bp_store *s, const seg_part *last, bool whole_sealed,
                               uint64_t first_slot, uint64_t seq, bp_buf *out, bool *next) {
    bp_ckpt_meta m;
    bp_iblock blk;
    memset(&blk, 0, sizeof blk);
    bool view = false;
    if (whole_sealed) {
        bp_ckpt_meta_of(s, last->segno + 1, BP_SEG_HEADER_SIZE, &m);
        blk.first_seq = seq + 1;
        *next = true;
    } else {
        const bp_index *x = &s->idx;
        if (first_slot < x->list_base || first_slot > seq) return BP_OK;
        bp_ckpt_meta_of(s, last->segno, last->len, &m);
        uint64_t *fc = NULL; /* (the first clocks: not needed here) */
        if (bp_index_export_six(x, first_slot, seq, &blk, &fc))
            return bp_err(BP_ENOMEM, "snapshot: out of memory");
        free(fc);
        view = true;
        /* each entity's head as of seq: events past the point (written, not yet published;
         * a reader's view of a live writer has them) are not the copy's */
        for (uint32_t k = 0; k < blk.n_entities; k++) {
            int64_t e = bp_strtab_find(&x->entity_names, blk.entities[k].name, blk.entities[k].len);
            const bp_u32vec *v = e >= 0 ? &x->entities[e].slots : NULL;
            uint32_t i = v ? bp_u32vec_lower_bound(v, seq) : 0; /* its first slot past the point */
            if (v && i == v->n) {
                blk.entity_heads[k] = x->entities[e].head;
                continue;
            }
            bp_slot sl;
            bp_status rc = !v || !i ? bp_err(BP_ECORRUPT, "snapshot: entity '%.*s' is not indexed",
                                             (int)blk.entities[k].len, blk.entities[k].name)
                                    : bp_slot_read_locked(s, v->v[i - 1],
                                                          BP_SLOT_HASH | BP_SLOT_UNPUBLISHED, &sl);
            if (rc) {
                bp_index_block_release(&blk);
                return rc;
            }
            blk.entity_heads[k] = sl.hash;
        }
    }
    int e = bp_ckpt_encode(out, &m, &blk);
    if (view) bp_index_block_release(&blk);
    return e ? bp_err(BP_ENOMEM, "snapshot: out of memory") : BP_OK;
}

/* The copy's index.ckpt (ck, unless empty), and first the empty segment next_segno it covers
 * when next: each synced. */
static bp_status write_ckpt(bp_store *s, const char *tmp, uint32_t next_segno, bool next,
                            const bp_buf *ck, uint64_t *bytes) {
    char path[4096], name[32];
    int e = 0;
    if (!ck->len) return BP_OK;
    if (next) {
        uint8_t hdr[BP_SEG_HEADER_SIZE];
        bp_segment_header(s, next_segno, hdr);
        snprintf(path, sizeof path, "%s/segments", tmp);
        snprintf(name, sizeof name, "%06u.fbat", next_segno);
        if (!(e = bp_pf_write_atomic(s->fault, path, name, hdr, sizeof hdr)))
            e = bp_pf_fsync_dir(s->fault, path);
        *bytes += sizeof hdr;
    }
    if (!e) e = bp_pf_write_atomic(s->fault, tmp, "index.ckpt", ck->data, ck->len);
    *bytes += ck->len;
    return e ? bp_err_sys(BP_EIO, e, "snapshot: cannot write the index checkpoint in %s", tmp)
             : BP_OK;
}

/* Copy the point's files into tmp (a new, empty directory). */
static bp_status copy_into(bp_store *s, const char *tmp, seg_part *parts, uint32_t n,
                           const uint8_t *ident, size_t ident_len, const uint8_t *anchors,
                           size_t anchors_len, uint64_t *bytes) {
    char path[4096];
    int e;
    snprintf(path, sizeof path, "%s/segments", tmp);
    if ((e = bp_pf_mkdir(path))) return bp_err_sys(BP_EIO, e, "snapshot: cannot create %s", path);
    for (uint32_t i = 0; i < n; i++) { /* one file open at a time (cmu: no compaction) */
        char src[4200], name[32];
        bp_segment_path(s, parts[i].segno, "", src, sizeof src);
        snprintf(name, sizeof name, "%06u.fbat", parts[i].segno);
        snprintf(path, sizeof path, "%s/segments/%s", tmp, name);
        /* a read-only handle copies the files it maps (bp_live_pin): a live writer in
         * another process may compact meanwhile, which cmu does not stop */
        bp_segref ref = BP_SEGREF_INIT;
        bool mapped = false;
        if (s->read_only) {
            pthread_rwlock_rdlock(&s->ilock);
            mapped = bp_segment_ref(s, parts[i].segno, &ref) && !ref.err && ref.sf->p &&
                     ref.sf->len >= parts[i].len;
            pthread_rwlock_unlock(&s->ilock);
        }
        if (mapped) {
            snprintf(path, sizeof path, "%s/segments", tmp);
            e = bp_pf_write_atomic(s->fault, path, name, ref.sf->p, parts[i].len);
            snprintf(path, sizeof path, "%s/segments/%s", tmp, name);
        } else {
            bp_file f = BP_FILE_INIT;
            if ((e = bp_pf_open(&f, NULL, src, BP_O_READ))) {
                bp_segref_done(s, &ref);
                return bp_err_sys(BP_EIO, e, "snapshot: cannot open %s", src);
            }
            e = bp_pf_copy_prefix(s->fault, &f, path, parts[i].len);
            bp_pf_close(&f);
        }
        bp_segref_done(s, &ref);
        if (e)
            return bp_err_sys(BP_EIO, e, "snapshot: cannot copy segment %06u to %s", parts[i].segno,
                              path);
        *bytes += parts[i].len;
    }
    snprintf(path, sizeof path, "%s/segments", tmp);
    if ((e = bp_pf_fsync_dir(s->fault, path)))
        return bp_err_sys(BP_EIO, e, "snapshot: cannot sync %s", path);
    bp_status rc = copy_keys(s, tmp, "keys", ".pub", false);
    if (rc) return rc;
    /* the data keys as they are now: every key an event up to the point was sealed with
     * was durable before that event was written, unless forgotten since */
    bp_dkeys_lock(s, true);
    rc = copy_keys(s, tmp, "dkeys", ".key", true);
    bp_dkeys_lock(s, false);
    if (rc) return rc;
    /* a compacted store's anchors (what its first segments' chains start from) */
    if (anchors && (e = bp_pf_write_atomic(s->fault, tmp, "ANCHORS", anchors, anchors_len)))
        return bp_err_sys(BP_EIO, e, "snapshot: cannot write %s/ANCHORS", tmp);
    *bytes += anchors_len;
    /* STORE last: a directory without it is not a store */
    if ((e = bp_pf_write_atomic(s->fault, tmp, "STORE", ident, ident_len)))
        return bp_err_sys(BP_EIO, e, "snapshot: cannot write %s/STORE", tmp);
    *bytes += ident_len;
    return BP_OK;
}

bp_status bp_store_snapshot(bp_store *s, bp_snapshot_report *out, const char *dest) {
    uint64_t t0 = bp_pf_mono_us();
    if (!s || !dest || !*dest) return bp_err(BP_EINVAL, "bp_store_snapshot: NULL argument");
    if (out) {
        BP_SIZE_CHECK("bp_store_snapshot", out, bp_snapshot_report, BP_SNAPSHOT_REPORT_INIT);
        BP_OUT_RESET(out, bp_snapshot_report);
    }
    int e = bp_pf_exists(dest);
    if (e == 1) return bp_err(BP_EEXIST, "snapshot: %s exists; give a new path", dest);
    char tmp[4096], parent[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.partial-%ld", dest, bp_pf_getpid()) >= sizeof tmp)
        return bp_err(BP_EINVAL, "snapshot: destination path too long");
    snprintf(parent, sizeof parent, "%s", dest);
    char *slash = strrchr(parent, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    char real_parent[4096], real_dir[4096]; /* a copy inside the store would copy itself */
    if (!bp_pf_realpath(parent, real_parent, sizeof real_parent) &&
        !bp_pf_realpath(s->dir, real_dir, sizeof real_dir)) {
        size_t n = strlen(real_dir);
        if (!strncmp(real_parent, real_dir, n) && (real_parent[n] == '\0' || real_parent[n] == '/'))
            return bp_err(BP_EINVAL, "snapshot: %s is inside the store %s; give a path outside it",
                          dest, s->dir);
    }
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s/STORE", s->dir);
    uint8_t *ident = NULL;
    size_t ident_len = 0;
    if ((e = bp_pf_read_all(ipath, &ident, &ident_len)))
        return bp_err_sys(BP_EIO, e, "snapshot: cannot read %s", ipath);

    /* the point */
    bp_status rc = BP_OK;
    seg_part *parts = NULL;
    uint32_t n = 0;
    uint64_t seq = 0;
    uint8_t *anchors = NULL;
    size_t anchors_len = 0;
    bp_buf ck = {0}; /* the copy's index.ckpt (snapshot_ckpt), or empty */
    /* the copy reads the segments by name: no compaction may replace them meanwhile */
    if (s->read_only && (rc = bp_store_refresh(s, NULL))) { /* what the writer published */
        free(ident);
        return rc;
    }
    pthread_mutex_lock(&s->cmu);
    pthread_mutex_lock(&s->wmu);
    if (!s->read_only && (rc = bp_sync_locked(s))) {
        pthread_mutex_unlock(&s->wmu);
        pthread_mutex_unlock(&s->cmu);
        free(ident);
        return rc;
    }
    /* DIR/ANCHORS changes only under wmu (a compaction's commit); a read-only handle's
     * view has its own (the writer of another process may have compacted since) */
    snprintf(ipath, sizeof ipath, "%s/ANCHORS", s->dir);
    bp_buf ab = {0};
    if (s->read_only) {
        pthread_rwlock_rdlock(&s->ilock);
        e = s->anchors.last_segno || s->anchors.n || s->anchors.upto
                ? bp_anchors_encode(&ab, &s->anchors)
                : -ENOENT;
        pthread_rwlock_unlock(&s->ilock);
        anchors = ab.data; /* (ab is not freed: anchors owns its bytes) */
        anchors_len = ab.len;
    } else {
        e = bp_pf_read_all(ipath, &anchors, &anchors_len);
    }
    if (e && e != -ENOENT) {
        pthread_mutex_unlock(&s->wmu);
        pthread_mutex_unlock(&s->cmu);
        free(ident);
        return bp_err_sys(BP_EIO, e, "snapshot: cannot read %s", ipath);
    }
    pthread_rwlock_rdlock(&s->ilock);
    seq = s->published;
    /* the last segment to copy, and how much of it: up to the end of event seq's frame, or
     * the whole file when seq is the last event of a sealed segment (its footer too) */
    uint32_t last = s->segs[0].segno;
    uint64_t last_len = BP_SEG_HEADER_SIZE;
    uint64_t q = seq; /* the newest event there is (after a compaction, holes may end the log) */
    bp_irec r;
    int got = 0;
    while (q && (got = bp_store_rec(s, q - 1, &r, 0)) == 0)
        q--;
    if (got < 0) rc = bp_err(BP_ECORRUPT, "snapshot: %s", bp_last_error());
    if (q && got > 0) {
        last = r.segno;
        last_len = (uint64_t)r.offset + r.frame_len;
    }
    bool last_whole = false, next = false;
    uint64_t last_first = 0;
    parts = calloc(last - s->segs[0].segno + 1, sizeof *parts);
    if (!parts) rc = bp_err(BP_ENOMEM, "snapshot: out of memory");
    for (uint32_t i = 0; !rc && i < s->n_segs && s->segs[i].segno <= last; i++) {
        const bp_segment *g = &s->segs[i];
        parts[n].segno = g->segno;
        parts[n].len = g->segno < last ? g->size : last_len;
        bool whole = false;
        if (g->sealed && g->segno == last && i + 1 < s->n_segs &&
            s->segs[i + 1].first_slot == seq) {
            parts[n].len = g->size; /* seq is its last event: keep the footer */
            whole = true;
        }
        if (g->segno == last) last_whole = whole, last_first = g->first_slot;
        n++;
    }
    if (!rc && n) rc = snapshot_ckpt(s, &parts[n - 1], last_whole, last_first, seq, &ck, &next);
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->wmu);

    uint64_t bytes = 0;
    if (!rc) {
        if ((e = bp_pf_mkdir_new(tmp)))
            rc =
                bp_err_sys(e == -EEXIST ? BP_EEXIST : BP_EIO, e, "snapshot: cannot create %s", tmp);
        else if (!(rc = copy_into(s, tmp, parts, n, ident, ident_len, anchors, anchors_len,
                                  &bytes)) &&
                 !(rc = write_ckpt(s, tmp, n ? parts[n - 1].segno + 1 : 0, next, &ck, &bytes))) {
            if ((e = bp_pf_fsync_dir(s->fault, tmp)))
                rc = bp_err_sys(BP_EIO, e, "snapshot: cannot sync %s", tmp);
            else if (bp_pf_exists(dest) == 1)
                rc = bp_err(BP_EEXIST, "snapshot: %s appeared meanwhile; nothing replaced", dest);
            else if ((e = bp_pf_rename(s->fault, tmp, dest)))
                rc = bp_err_sys(BP_EIO, e, "snapshot: cannot rename %s to %s", tmp, dest);
            else if ((e = bp_pf_fsync_dir(s->fault, parent)))
                rc = bp_err_sys(BP_EIO, e, "snapshot: cannot sync %s", parent);
        }
        if (rc && bp_pf_exists(tmp) == 1) bp_pf_rmtree(tmp); /* leave nothing half-made */
    }
    pthread_mutex_unlock(&s->cmu);
    bp_buf_free(&ck);
    free(parts);
    free(ident);
    free(anchors);
    if (!rc && out) {
        out->global_seq = seq;
        out->segments = n;
        out->bytes = bytes;
        out->duration_us = bp_pf_mono_us() - t0;
    }
    return rc;
}
