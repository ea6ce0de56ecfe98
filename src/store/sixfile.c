/* Segment index files (format/six.h, doc/FORMAT.md "Segment index files") at the store
 * level: written when a segment is sealed, after a compaction renamed its new segments in,
 * and by a writable open for every sealed segment whose file is missing, damaged or stale
 * (a store written before they existed, a crash between a seal and its index file).
 *
 * An index file is a cache derived from its segment: a failure to write one is counted
 * (bp_store.six_failed) and never fails the append or compaction that sealed the segment;
 * the next writable open writes it again. It is written to NAME.tmp and renamed over NAME,
 * so a process that mapped the old file keeps reading a complete one; not synced: after a
 * crash it may be missing, old (it then names another file) or have parts that fail their
 * CRCs, each a cache miss, never a wrong answer. */
#include "format/six.h"
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void bp_six_path(const bp_store *s, uint32_t segno, char *out, size_t cap) {
    snprintf(out, cap, "%s/%06u.fidx", s->segdir, segno);
}

/* What pairs an index file with segment segno as its file is now: its size, where its
 * footer starts and the CRC the footer ends with. -ENOENT when the segment is not sealed
 * (no trailer), -EILSEQ when its header does not name it and this store (what recovery
 * checks of every segment it loads), else 0 or -errno. */
int bp_six_pair_read(const bp_store *s, uint32_t segno, bp_six_pair *pair) {
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    memset(pair, 0, sizeof *pair);
    pair->segno = segno;
    memcpy(pair->uuid, s->ident.uuid, 16);
    bp_file f = BP_FILE_INIT;
    int e = bp_pf_open(&f, NULL, path, BP_O_READ);
    if (!e) e = bp_pf_size(&f, &pair->seg_size);
    uint8_t h[BP_SEG_HEADER_SIZE];
    bp_seg_header hd;
    if (!e && bp_pf_pread(&f, h, sizeof h, 0) != (ssize_t)sizeof h) e = -EILSEQ;
    if (!e && bp_seg_header_decode(&hd, h, sizeof h, path) != BP_OK) {
        bp_err_clear(); /* (the caller says what it could not do) */
        e = -EILSEQ;
    }
    if (!e && (hd.segno != segno || memcmp(hd.uuid, s->ident.uuid, 16) != 0)) e = -EILSEQ;
    uint8_t t[4 + BP_TRAILER_SIZE];
    uint32_t flen = 0;
    if (!e && (pair->seg_size < BP_SEG_HEADER_SIZE + sizeof t ||
               bp_pf_pread(&f, t, sizeof t, pair->seg_size - sizeof t) != (ssize_t)sizeof t ||
               !bp_trailer_decode(t + 4, pair->seg_size, &pair->frames_end, &flen)))
        e = -ENOENT;
    if (!e) pair->footer_crc = bp_get_be32(t);
    bp_pf_close(&f);
    return e;
}

bool bp_six_pair_eq(const bp_six_pair *a, const bp_six_pair *b) {
    return a->segno == b->segno && memcmp(a->uuid, b->uuid, 16) == 0 &&
           a->seg_size == b->seg_size && a->frames_end == b->frames_end &&
           a->footer_crc == b->footer_crc;
}

bool bp_six_current(const bp_store *s, uint32_t segno) {
    bp_six_pair want;
    if (bp_six_pair_read(s, segno, &want)) return false;
    char path[4200];
    bp_six_path(s, segno, path, sizeof path);
    bp_file f = BP_FILE_INIT;
    if (bp_pf_open(&f, NULL, path, BP_O_READ)) return false;
    uint8_t h[BP_SIX_HEADER];
    uint64_t size = 0;
    bool ok = !bp_pf_size(&f, &size) && bp_pf_pread(&f, h, sizeof h, 0) == (ssize_t)sizeof h;
    bp_pf_close(&f);
    bp_six x; /* bp_six_open reads the header only: the file's size bounds the blocks */
    ok = ok && bp_six_open(&x, h, (size_t)size, path) == BP_OK && bp_six_pair_eq(&x.pair, &want);
    bp_err_clear();
    return ok;
}

bp_status bp_six_write_as(bp_store *s, const bp_index *x, uint64_t from, uint64_t to,
                          const bp_six_pair *pair, const char *name) {
    bp_iblock blk;
    uint64_t *first_clock = NULL;
    bp_buf b = {0};
    int e = bp_index_export_six(x, from, to, &blk, &first_clock);
    if (!e) e = bp_six_encode(&b, &blk, first_clock, pair);
    bp_index_block_release(&blk);
    free(first_clock);
    if (e) {
        bp_buf_free(&b);
        return e == -ENOMEM
                   ? bp_err(BP_ENOMEM, "%s: out of memory building a segment index", s->segdir)
                   : bp_err(BP_EINVAL, "%s: segment %06u cannot be indexed in place", s->segdir,
                            pair->segno);
    }
    e = bp_pf_write_cache(s->fault, s->segdir, name, b.data, b.len); /* checksummed: no sync */
    bp_buf_free(&b);
    if (e) return bp_err_sys(BP_EIO, e, "%s/%s: cannot write the segment index", s->segdir, name);
    return BP_OK;
}

bp_status bp_six_write(bp_store *s, const bp_index *x, uint64_t from, uint64_t to, uint32_t segno) {
    bp_six_pair pair;
    int e = bp_six_pair_read(s, segno, &pair);
    if (e)
        return bp_err_sys(BP_EIO, e, "%s: segment %06u: cannot read its header and trailer",
                          s->segdir, segno);
    char name[32];
    snprintf(name, sizeof name, "%06u.fidx", segno);
    return bp_six_write_as(s, x, from, to, &pair, name);
}

void bp_six_write_seg(bp_store *s, uint32_t i) {
    const bp_segment *seg = &s->segs[i];
    uint64_t to = bp_seg_end_slot(s, i);
    /* an empty segment has no index; a six tier segment's clocks are in its file alone */
    if (!seg->sealed || seg->six_tier || to <= seg->first_slot) return;
    bool any = false; /* a compacted segment may hold holes only */
    for (uint64_t slot = seg->first_slot; slot < to && !any; slot++)
        any = !BP_IREC_HOLE(&BP_XREC(&s->idx, slot)); /* (not a tier segment: in memory) */
    if (!any) return;
    if (bp_six_write(s, &s->idx, seg->first_slot, to, seg->segno) == BP_OK) {
        s->six_written++;
    } else {
        s->six_failed++;
        bp_err_clear();
    }
}

void bp_six_open_pass(bp_store *s) {
    if (s->read_only) return;
    for (uint32_t i = 0; i < s->n_segs; i++)
        if (s->segs[i].sealed && !s->segs[i].six && /* (attached: recovery found it current) */
            !bp_six_current(s, s->segs[i].segno))
            bp_six_write_seg(s, i);
    /* index files of segments a compaction removed (a crash before it removed them) */
    char **names = NULL;
    size_t n = 0;
    if (bp_pf_list(s->segdir, ".fidx", &names, &n)) return;
    uint32_t first = s->n_segs ? s->segs[0].segno : 1;
    uint32_t last = s->n_segs ? s->segs[s->n_segs - 1].segno : 0;
    for (size_t k = 0; k < n; k++) {
        char *end;
        unsigned long v = strtoul(names[k], &end, 10);
        if (strcmp(end, ".fidx") != 0 || (v >= first && v <= last)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", s->segdir, names[k]);
        (void)bp_pf_unlink(path);
    }
    bp_pf_list_free(names, n);
}

/* ------------------------------------------------------------ reading in place */

bool bp_six_attach_file(bp_store *s, bp_segment *seg, const char *path, const bp_six_pair *want,
                        uint32_t n_recs, uint64_t first_seq) {
    bp_file f = BP_FILE_INIT;
    if (bp_pf_open(&f, s->fault, path, BP_O_READ)) return false;
    uint64_t len = 0;
    const uint8_t *p = NULL;
    bool ok = !bp_pf_size(&f, &len) && len >= BP_SIX_HEADER && !bp_pf_map_read(&f, len, &p);
    bp_pf_close(&f); /* the mapping stays */
    struct bp_sixmap *m = ok ? calloc(1, sizeof *m) : NULL;
    ok = m && bp_six_open(&m->x, p, len, path) == BP_OK && bp_six_pair_eq(&m->x.pair, want) &&
         (!n_recs || (m->x.n_recs == n_recs && m->x.first_seq == first_seq));
    bp_err_clear();
    if (!ok) {
        if (p) bp_pf_unmap(p, len);
        free(m);
        return false;
    }
    m->p = p;
    m->len = len;
    seg->six = m;
    return true;
}

bool bp_six_attach(bp_store *s, bp_segment *seg, uint64_t size, uint64_t foff, uint32_t footer_crc,
                   uint32_t n_recs, uint64_t first_seq) {
    char path[4200];
    bp_six_path(s, seg->segno, path, sizeof path);
    bp_six_pair want = {seg->segno, {0}, size, foff, footer_crc};
    memcpy(want.uuid, s->ident.uuid, 16);
    return bp_six_attach_file(s, seg, path, &want, n_recs, first_seq);
}

void bp_six_detach(bp_segment *seg) {
    if (!seg->six) return;
    bp_pf_unmap(seg->six->p, seg->six->len);
    free(seg->six);
    seg->six = NULL;
    seg->ids_six = false;
}

int64_t bp_store_find_id(bp_store *s, const bp_id *id, bool *repair) {
    int64_t slot = bp_index_find_id(&s->idx, id);
    if (slot >= 0 || !s->idx.n_noid) return slot;
    for (uint32_t i = 0; i < s->n_segs; i++) {
        bp_segment *g = &s->segs[i];
        if (!g->ids_six) continue;
        bp_six *x = &g->six->x;
        if (memcmp(id->b, x->min_id.b, 16) < 0 || memcmp(id->b, x->max_id.b, 16) > 0) continue;
        if (!__atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE) && bp_six_need(x, BP_SIXB_IDS) &&
            bp_six_need(x, BP_SIXB_SEQS)) {
            int64_t r = bp_six_find_id(x, id);
            if (r < 0 && !bp_six_failed(x)) continue;
            uint64_t q = r < 0 ? 0 : bp_six_seq(x, (uint32_t)r) - 1;
            /* the file's answer must be the index's record of that event (a tier segment's:
             * its frame's, which the read checks): never a wrong one; a check of what it
             * read that failed, no answer */
            if (!bp_six_failed(x) && q >= g->first_slot && q < bp_six_end_slot(s, i) &&
                (q < s->idx.rbase || memcmp(BP_XREC(&s->idx, q).id.b, id->b, 16) == 0))
                return (int64_t)q;
        }
        /* it cannot answer: its records, one by one, until bp_six_repair places them */
        __atomic_store_n(&g->six_bad, 1, __ATOMIC_RELEASE);
        *repair = true;
        for (uint64_t q = g->first_slot, end = bp_six_end_slot(s, i); q < end; q++) {
            bp_irec r;
            if (bp_store_rec(s, q, &r, 0) > 0 && memcmp(r.id.b, id->b, 16) == 0) return (int64_t)q;
        }
        bp_err_clear();
    }
    return -1;
}

/* Does the event at slot carry the idempotency key? BP_OK with *eq, or the read's error. */
static bp_status key_at(bp_store *s, uint64_t slot, const char *key, size_t len, bool *eq,
                        bp_owned_event *o) {
    bp_slot sl = {.ev = o};
    bp_status rc = bp_slot_read(s, slot, BP_SLOT_EVENT | BP_SLOT_SEALED | BP_SLOT_UNPUBLISHED, &sl);
    const char *k = rc ? NULL : o->ev.idempotency_key;
    *eq = k && strlen(k) == len && memcmp(k, key, len) == 0;
    return rc == BP_ENOTFOUND ? BP_OK : rc; /* a hole */
}

bp_status bp_store_find_idem(bp_store *s, const char *key, size_t len, int64_t *slot,
                             bool *repair) {
    *slot = bp_index_find_idem(&s->idx, key, len);
    if (*slot >= 0 || !s->idx.n_noid) return BP_OK;
    uint64_t h = bp_six_key_hash(key, len);
    bp_owned_event o;
    memset(&o, 0, sizeof o);
    bp_status rc = BP_OK;
    for (uint32_t i = 0; i < s->n_segs && !rc && *slot < 0; i++) {
        bp_segment *g = &s->segs[i];
        if (!g->ids_six) continue;
        bp_six *x = &g->six->x;
        uint64_t end = bp_six_end_slot(s, i);
        bool eq = false;
        if (!__atomic_load_n(&g->six_bad, __ATOMIC_ACQUIRE) && bp_six_need(x, BP_SIXB_IDEM) &&
            bp_six_need(x, BP_SIXB_SEQS)) {
            uint32_t lo, hi;
            bool bogus = false; /* an answer that cannot be */
            bp_six_idem_range(x, h, &lo, &hi);
            for (uint32_t k = lo; k < hi && !rc && !eq && !bogus; k++) {
                uint64_t q = bp_six_seq(x, bp_six_idem_rec(x, k)) - 1;
                bogus = q < g->first_slot || q >= end || bp_six_failed(x);
                if (!bogus && !(rc = key_at(s, q, key, len, &eq, &o)) && eq) *slot = (int64_t)q;
            }
            if (!bogus && !bp_six_failed(x)) continue;
        }
        /* it cannot answer: the segment's frames, one by one, until bp_six_repair has placed
         * its keys in memory */
        __atomic_store_n(&g->six_bad, 1, __ATOMIC_RELEASE);
        *repair = true;
        for (uint64_t q = g->first_slot; q < end && !rc && !eq; q++)
            if (!(rc = key_at(s, q, key, len, &eq, &o)) && eq) *slot = (int64_t)q;
    }
    bp_owned_event_clear(&o);
    return rc;
}

/* The idempotency keys of the events of slots [from, to), read from their frames, into
 * *keys (rec: slot - from; each key malloc'd). 0 or an error status. */
static bp_status read_keys(bp_store *s, uint64_t from, uint64_t to, bp_iidem **keys, uint32_t *n) {
    *keys = NULL;
    *n = 0;
    uint32_t cap = 0;
    bp_owned_event o;
    memset(&o, 0, sizeof o);
    bp_status rc = BP_OK;
    for (uint64_t q = from; q < to && !rc; q++) {
        bp_slot sl = {.ev = &o};
        rc = bp_slot_read(s, q, BP_SLOT_EVENT | BP_SLOT_SEALED | BP_SLOT_UNPUBLISHED, &sl);
        if (rc == BP_ENOTFOUND) { /* a hole */
            rc = BP_OK;
            continue;
        }
        const char *k = rc ? NULL : o.ev.idempotency_key;
        if (!k) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            bp_iidem *v = realloc(*keys, cap * sizeof *v);
            if (!v) {
                rc = bp_err(BP_ENOMEM, "out of memory");
                break;
            }
            *keys = v;
        }
        size_t len = strlen(k);
        char *copy = malloc(len + 1);
        if (!copy) {
            rc = bp_err(BP_ENOMEM, "out of memory");
            break;
        }
        memcpy(copy, k, len + 1);
        (*keys)[(*n)++] = (bp_iidem){(uint32_t)(q - from), copy, (uint16_t)len};
    }
    bp_owned_event_clear(&o);
    return rc;
}

static void free_keys(bp_iidem *keys, uint32_t n) {
    for (uint32_t k = 0; k < n; k++)
        free((char *)keys[k].key);
    free(keys);
}

/* [w] on a writable handle. */
static void repair(bp_store *s, bool writer) {
    bool bad_tier = __atomic_load_n(&s->untier, __ATOMIC_ACQUIRE) != 0;
    pthread_rwlock_rdlock(&s->ilock);
    for (uint32_t i = 0; i < s->n_six && !bad_tier; i++)
        bad_tier = __atomic_load_n(&s->segs[i].six_bad, __ATOMIC_ACQUIRE) != 0;
    pthread_rwlock_unlock(&s->ilock);
    if (bad_tier) {
        pthread_rwlock_wrlock(&s->ilock);
        bp_tier_untier_locked(s);
        pthread_rwlock_unlock(&s->ilock);
    }
    pthread_rwlock_rdlock(&s->ilock);
    uint32_t *bad = calloc(s->n_segs ? s->n_segs : 1, sizeof *bad), n_bad = 0;
    for (uint32_t i = 0; bad && i < s->n_segs; i++)
        if (s->segs[i].ids_six && __atomic_load_n(&s->segs[i].six_bad, __ATOMIC_ACQUIRE))
            bad[n_bad++] = i;
    pthread_rwlock_unlock(&s->ilock);
    for (uint32_t k = 0; k < n_bad; k++) {
        uint32_t i = bad[k];
        uint64_t from = s->segs[i].first_slot, to = bp_six_end_slot(s, i);
        /* a writer needs the keys in memory (its appends look them up); a reader only ids */
        bp_iidem *keys = NULL;
        uint32_t n_keys = 0;
        if (writer && read_keys(s, from, to, &keys, &n_keys)) {
            bp_err_clear(); /* the segment keeps answering by its frames */
            free_keys(keys, n_keys);
            continue;
        }
        pthread_rwlock_wrlock(&s->ilock);
        bool placed =
            s->segs[i].ids_six && bp_index_place_ids(&s->idx, from, to, keys, n_keys) == 0;
        if (placed) s->segs[i].ids_six = false;
        pthread_rwlock_unlock(&s->ilock);
        free_keys(keys, n_keys);
        /* the writer writes the file again (renamed over it: a reader that mapped the old
         * one keeps it); this handle goes on with what it placed in memory */
        if (placed && writer && !s->failed && !s->segs[i].six_tier) /* (its clocks: listed) */
            bp_six_write_seg(s, i);
    }
    free(bad);
}

void bp_six_repair_locked(bp_store *s) {
    repair(s, true);
}

void bp_six_repair(bp_store *s) {
    bool writer = !s->read_only;
    if (writer) pthread_mutex_lock(&s->wmu);
    repair(s, writer);
    if (writer) pthread_mutex_unlock(&s->wmu);
}
