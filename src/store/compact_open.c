/* compact_open.c: what a compaction leaves on disk, seen from the open: finishing a committed
 * compaction from its manifest (also at the end of an online one), removing what an
 * unfinished one left, loading DIR/ANCHORS; and the anchors of an import (doc/FORMAT.md
 * "Compaction", doc/COMPACTION.md). compact.c runs a compaction.
 */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void (*bp__compact_step)(int step);

void bp_compact_step(int n) {
    if (bp__compact_step) bp__compact_step(n);
}

/* ------------------------------------------------------------- finish */

/* CRC32 and size of a whole file. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc) {
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (e) return e;
    bp_view v;
    if (!(e = bp_pf_view(&f, &v))) {
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
bp_status bp_compact_finish(bp_store *s, const bp_cmanifest *m) {
    char a[4200], b[4200];
    int e = 0;
    for (uint32_t i = 0; i < m->n_new && !e; i++) {
        uint32_t k = m->new_first + i;
        bp_segment_path(s, k, ".compact", a, sizeof a);
        bp_segment_path(s, k, "", b, sizeof b);
        e = bp_pf_exists(a);
        if (e == 1) {
            e = bp_pf_rename(s->fault, a, b);
            bp_compact_step(100 + (int)i);
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
        bp_six_path(s, k, a, sizeof a);
        if (!e) (void)bp_pf_unlink(a); /* its index file, a cache (may be missing) */
    }
    if (!e) e = bp_pf_fsync_dir(s->fault, s->segdir);
    bp_compact_step(20);
    if (!e) e = bp_pf_write_atomic(s->fault, s->dir, "ANCHORS", m->anchors, m->anchors_len);
    bp_compact_step(21);
    if (!e) {
        snprintf(a, sizeof a, "%s/COMPACT", s->dir);
        e = bp_pf_unlink(a);
    }
    if (!e) e = bp_pf_fsync_dir(s->fault, s->dir);
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
    if (!e && n) e = bp_pf_fsync_dir(s->fault, s->segdir);
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
    int e = bp_pf_write_atomic(s->fault, s->dir, "ANCHORS", b.data, b.len);
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
    return rc ? rc : bp_anchors_index(s);
}

bp_status bp_anchors_index(bp_store *s) {
    for (uint32_t i = 0; i < s->anchors.n; i++) {
        const bp_anchor *a = &s->anchors.v[i];
        if (bp_index_anchor(&s->idx, a->entity, a->len, a->clock, &a->hash))
            return bp_err(BP_ENOMEM, "%s/ANCHORS: out of memory", s->dir);
    }
    return BP_OK;
}

/* A read-only open of a store whose compaction committed but did not finish (a writer killed
 * during its renames, or running them now): it reads what the finish would leave, without
 * renaming anything. The new segments are read from their .compact files where those are
 * still there (bp_segment_path), the replaced segments before them are left out of the list,
 * and the anchors are the manifest's. */
static bp_status read_only_view(bp_store *s, const bp_cmanifest *m, const char *path) {
    bp_status rc = bp_anchors_decode(&s->anchors, m->anchors, m->anchors_len, path);
    if (rc) return rc;
    s->cv_compact = calloc(m->n_new ? m->n_new : 1, 1);
    if (!s->cv_compact) return bp_err(BP_ENOMEM, "%s: out of memory", path);
    s->cv_first = m->new_first;
    s->cv_n = m->n_new;
    for (uint32_t i = 0; i < m->n_new; i++) {
        char a[4200];
        bp_segment_path(s, m->new_first + i, ".compact", a, sizeof a);
        int e = bp_pf_exists(a);
        if (e < 0) return bp_err_sys(BP_EIO, e, "%s: cannot look for it", a);
        s->cv_compact[i] = e == 1;
    }
    return bp_anchors_index(s);
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
        if (!rc && s->read_only) { /* the files as the finish would leave them, in place */
            rc = read_only_view(s, &m, path);
            bp_cmanifest_free(&m);
            free(buf);
            return rc;
        }
        if (!rc) {
            bp_anchors check; /* the embedded anchors must decode before anything moves */
            rc = bp_anchors_decode(&check, m.anchors, m.anchors_len, path);
            bp_anchors_free(&check);
        }
        if (!rc) rc = bp_compact_finish(s, &m);
        bp_cmanifest_free(&m);
    }
    free(buf);
    return rc ? rc : load_anchors(s);
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
