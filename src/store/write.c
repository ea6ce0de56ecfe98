/* The commit path: validation, CAS, idempotency, encoding, rotation, write, index insert,
 * publish; the group-committed fdatasync that makes appends durable is in sync.c. */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------ helpers */

static void next_random(bp_store *s, uint8_t out[10]) {
    if (s->rnd_pos + 10 > sizeof s->rnd) {
        if (bp_pf_random(s->rnd, sizeof s->rnd) != 0) {
            /* getrandom cannot fail for small requests after boot; fall back to
             * time-mixed bytes rather than failing the append */
            uint64_t t = bp_pf_mono_us() * 0x9E3779B97F4A7C15ull;
            for (size_t i = 0; i < sizeof s->rnd; i++)
                s->rnd[i] ^= (uint8_t)(t >> ((i % 8) * 8)) + (uint8_t)i;
        }
        s->rnd_pos = 0;
    }
    memcpy(out, s->rnd + s->rnd_pos, 10);
    s->rnd_pos += 10;
}

static void record_latency(bp_store *s, uint64_t us) {
    /* log-linear buckets: 8 per power of two */
    unsigned b;
    if (us < 8) {
        b = (unsigned)us;
    } else {
        unsigned lg = 63u - (unsigned)__builtin_clzll(us);
        b = (lg - 2) * 8 + (unsigned)((us >> (lg - 3)) & 7);
    }
    if (b >= BP_LAT_BUCKETS) b = BP_LAT_BUCKETS - 1;
    __atomic_fetch_add(&s->lat[b], 1, __ATOMIC_RELAXED); /* without wmu: see commit() */
    __atomic_fetch_add(&s->lat_sum_us, us, __ATOMIC_RELAXED);
}

/* [w] The heads of the entities a batch writes, while its frames are built: an
 * open-addressing table (s->bheads, at least 2n slots) of frame index + 1, keyed by entity
 * name, each the latest frame of its entity among frames[0..i). Scratch kept by the store:
 * no allocation per commit once it is large enough. */
static bp_status batch_heads_reset(bp_store *s, size_t n) {
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > s->bheads_cap) {
        uint32_t *t = realloc(s->bheads, cap * sizeof *t);
        if (!t) return bp_err(BP_ENOMEM, "batch: out of memory");
        s->bheads = t;
        s->bheads_cap = cap;
    }
    memset(s->bheads, 0, cap * sizeof *s->bheads);
    if (n > s->bdeps_cap) {
        uint32_t *d = realloc(s->bdeps, n * sizeof *d);
        if (!d) return bp_err(BP_ENOMEM, "batch: out of memory");
        s->bdeps = d;
        s->bdeps_cap = n;
    }
    return BP_OK;
}

/* [w] The event hashes of a batch's n frames, whose fields are set but for the prev_hash of
 * an event that follows another of its entity in the batch (s->bdeps[i]: that event + 1, or
 * 0). Hashed side by side (bp_event_hash_many) in runs that hold no such pair. */
static void hash_batch(bp_store *s, bp_frame *frames, size_t n) {
    enum { RUN = 64 };
    const bp_event_fields *f[RUN];
    bp_hash *out[RUN];
    size_t k = 0;
    for (size_t i = 0; i <= n; i++) {
        uint32_t d = i < n ? s->bdeps[i] : 0;
        if (k && (i == n || k == RUN || (d && d - 1 >= i - k))) { /* (its previous is in the run) */
            bp_event_hash_many(f, out, k);
            k = 0;
        }
        if (i == n) break;
        if (d) frames[i].f.prev_hash = frames[d - 1].event_hash;
        f[k] = &frames[i].f;
        out[k++] = &frames[i].event_hash;
    }
}

/* [w] The table slot of entity e: its latest frame in the batch (+1), or 0 where it goes. */
static uint32_t *batch_heads_slot(bp_store *s, const bp_frame *frames, size_t n, const char *e,
                                  size_t elen) {
    size_t mask = 63;
    while (mask + 1 < 2 * n)
        mask = mask * 2 + 1;
    for (size_t i = (size_t)bp_str_hash(e, elen) & mask;; i = (i + 1) & mask) {
        uint32_t v = s->bheads[i];
        if (!v) return &s->bheads[i];
        const bp_event_fields *f = &frames[v - 1].f;
        if (f->entity_len == elen && memcmp(f->entity, e, elen) == 0) return &s->bheads[i];
    }
}

/* [w] Current head (clock, hash) of entity e, including the earlier frames of the batch
 * (bslot: its batch_heads_slot, NULL for a single append). BP_OK, or BP_ENOMEM when the
 * entity could not be looked up (an entity checkpoint's, interned on the way). */
static bp_status entity_head(bp_store *s, const bp_frame *frames, const uint32_t *bslot,
                             const char *e, size_t elen, uint64_t *clock, bp_hash *hash) {
    if (bslot && *bslot) {
        *clock = frames[*bslot - 1].f.clock;
        *hash = frames[*bslot - 1].event_hash;
        return BP_OK;
    }
    int64_t id = bp_index_entity(&s->idx, e, elen);
    if (id < -1) return bp_err(BP_ENOMEM, "entity '%.*s': out of memory", (int)elen, e);
    if (id < 0) {
        *clock = 0;
        memset(hash, 0, sizeof *hash);
    } else {
        *clock = bp_index_head_clock(&s->idx, id);
        *hash = s->idx.entities[id].head;
    }
    return BP_OK;
}

/* [w] Room for n frames in s->frames. */
static bp_status frames_reserve(bp_store *s, size_t n) {
    if (n <= s->frames_cap) return BP_OK;
    size_t cap = s->frames_cap ? s->frames_cap : 16;
    while (cap < n)
        cap *= 2;
    bp_frame *f = realloc(s->frames, cap * sizeof *f);
    if (!f) return bp_err(BP_ENOMEM, "append: out of memory");
    s->frames = f;
    s->frames_cap = cap;
    return BP_OK;
}

bp_status bp_validate_item(const bp_store *s, const bp_batch_item *it, bool system, size_t i,
                           bool batch) {
    const char *where = batch ? "batch item" : "append";
    bp_status rc = bp_coord_validate_sys(it->entity, it->scope, system);
    if (!rc && !system) rc = bp_validate_app_kind(it->kind);
    if (rc) {
        if (batch) { /* say which item */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", bp_last_error());
            return bp_err(rc, "%s %zu: %s", where, i, msg);
        }
        return rc;
    }
    if (it->len && !it->payload) return bp_err(BP_EINVAL, "%s %zu: payload is NULL", where, i);
    if (it->len > s->opts.max_payload)
        return bp_err(BP_ETOOBIG, "%s %zu: payload of %zu bytes exceeds the limit of %u bytes",
                      where, i, it->len, s->opts.max_payload);
    const bp_append_options *o = it->opts;
    if (o) {
        if (!BP_SIZE_OK(o, bp_append_options)) {
            char fn[64];
            snprintf(fn, sizeof fn, "%s %zu", where, i);
            return bp_err_size(fn, "bp_append_options", "BP_APPEND_OPTIONS_INIT", o->struct_size,
                               sizeof *o);
        }
        if (o->idempotency_key) {
            size_t kl = strnlen(o->idempotency_key, BP_IDEMPOTENCY_KEY_MAX + 1);
            if (kl == 0 || kl > BP_IDEMPOTENCY_KEY_MAX)
                return bp_err(BP_EINVAL, "%s %zu: idempotency key must be 1..%d bytes", where, i,
                              BP_IDEMPOTENCY_KEY_MAX);
        }
        if (o->durability.mode > BP_DUR_NONE)
            return bp_err(BP_EINVAL, "%s %zu: unknown durability mode %d", where, i,
                          (int)o->durability.mode);
    }
    return BP_OK;
}

/* [w] Fill r (but its durability) for the event whose fields are f, of entity and scope (each
 * at most 255 bytes, NUL-terminated). */
static void fill_receipt(const bp_store *s, const bp_event_fields *f, const bp_hash *hash,
                         const char *entity, size_t elen, const char *scope, size_t slen,
                         bp_receipt *r) {
    BP_OUT_RESET(r, bp_receipt); /* (the names' ends are NUL: their lengths are <= BP_COORD_MAX) */
    r->event_id = f->event_id;
    r->global_seq = f->global_seq;
    r->clock = f->clock;
    r->hlc = f->hlc;
    r->event_hash = *hash;
    memcpy(r->entity, entity, elen < sizeof r->entity ? elen : sizeof r->entity - 1);
    memcpy(r->scope, scope, slen < sizeof r->scope ? slen : sizeof r->scope - 1);
    r->kind = f->kind;
    r->prev_hash = f->prev_hash;
    memcpy(r->store_id, s->ident.uuid, 16);
}

/* [w] Fill a receipt for an already committed slot (idempotent replay); the slot may be
 * above the watermark (its append waits for a sync). */
static bp_status replay_receipt(bp_store *s, uint32_t slot, bp_receipt *r) {
    bp_status rc = bp_flush_pending(s); /* the slot's frame may still be queued */
    if (rc) return rc;
    bp_owned_event o;
    o.frame = o.plain = (bp_buf){0};
    o.hold = NULL;
    bp_slot sl = {.ev = &o};
    rc = bp_slot_read(s, slot, BP_SLOT_EVENT | BP_SLOT_SEALED | BP_SLOT_UNPUBLISHED, &sl);
    if (!rc) {
        const bp_event *ev = &o.ev;
        bp_event_fields f = {.event_id = ev->event_id,
                             .global_seq = ev->global_seq,
                             .clock = ev->clock,
                             .hlc = ev->hlc,
                             .kind = ev->kind,
                             .prev_hash = ev->prev_hash};
        fill_receipt(s, &f, &ev->event_hash, ev->entity, strlen(ev->entity), ev->scope,
                     strlen(ev->scope), r);
        r->replayed = true;
        r->durability = r->global_seq <= s->synced_seq ? BP_DUR_SYNC : BP_DUR_NONE;
    }
    bp_owned_event_clear(&o);
    return rc;
}

/* [w] The slot committed under an idempotency key, or -1 (bp_store_find_idem; a segment
 * index file that could not answer is repaired at once). */
static bp_status find_idem(bp_store *s, const char *key, size_t len, int64_t *slot) {
    bool repair = false;
    bp_status rc = bp_store_find_idem(s, key, len, slot, &repair);
    if (repair) bp_six_repair_locked(s);
    return rc;
}

/* [w] Idempotency: BP_OK to proceed, BP_DONE when all items replayed. */
static bp_status check_idempotency(bp_store *s, const bp_batch_item *items, size_t n,
                                   bp_receipt *receipts) {
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].opts ? items[i].opts->idempotency_key : NULL;
        if (!k) continue;
        size_t kl = strlen(k);
        for (size_t j = 0; j < i; j++) {
            const char *k2 = items[j].opts ? items[j].opts->idempotency_key : NULL;
            if (k2 && strcmp(k, k2) == 0)
                return bp_err(BP_EINVAL,
                              "batch items %zu and %zu carry the same idempotency key '%s'", j, i,
                              k);
        }
        int64_t slot;
        bp_status frc = find_idem(s, k, kl, &slot);
        if (frc) return frc;
        if (slot < 0) continue;
        found++;
        bp_irec rec;
        if (bp_store_rec(s, (uint64_t)slot, &rec, BP_REC_IDS) <= 0)
            return bp_err(BP_ECORRUPT, "idempotency key '%s': its event cannot be read: %s", k,
                          bp_last_error());
        const char *ent = s->idx.entity_names.s[rec.entity];
        if (strcmp(ent, items[i].entity) != 0)
            return bp_err(BP_ECONFLICT,
                          "idempotency key '%s' was already used for entity '%s', not '%s'", k, ent,
                          items[i].entity);
    }
    if (!found) return BP_OK;
    if (found != n) /* replay only when every item carries an already committed key */
        return bp_err(BP_ECONFLICT,
                      "batch: %zu of %zu items carry idempotency keys that were already committed; "
                      "a batch is replayed only when all of its keys were",
                      found, n);
    for (size_t i = 0; i < n; i++) {
        const char *k = items[i].opts->idempotency_key;
        int64_t slot;
        bp_status frc = find_idem(s, k, strlen(k), &slot);
        if (frc) return frc;
        bp_receipt tmp = BP_RECEIPT_INIT;
        bp_status rc = replay_receipt(s, (uint32_t)slot, receipts ? &receipts[i] : &tmp);
        if (rc) return rc;
    }
    return BP_DONE;
}

uint64_t bp__seg_end_max = BP_SEG_END_MAX;

/* BP_ETOOBIG for n events whose `bytes` of `what` ("frames", "payload") no segment holds. */
static bp_status too_big(const bp_store *s, size_t n, const char *what, uint64_t bytes) {
    char items[64] = "append";
    if (n > 1) snprintf(items, sizeof items, "batch of %zu events", n);
    return bp_err(BP_ETOOBIG,
                  "%s: %s carries %llu bytes of %s, more than the %llu bytes a segment holds "
                  "(frame offsets are 32-bit); nothing was written%s",
                  s->dir, items, (unsigned long long)bytes, what,
                  (unsigned long long)(bp__seg_end_max - BP_SEG_HEADER_SIZE),
                  n > 1 ? ": split it into smaller batches" : "");
}

/* [w] Make room for `need` more bytes (n frames), starting with global_seq first_seq, in the
 * active segment: rotate when they do not fit (past segment_size, unless the segment is empty;
 * never past bp__seg_end_max, the 32-bit frame offsets of the index), refuse when not even an
 * empty segment holds them. An active segment within the compacted range (an import of a
 * compacted store's export: bp_anchors_install) takes only seqs up to upto: the first one
 * above gets a new segment, past the holes that end the range; one that fills up while the
 * range goes on is followed by another compacted one (DIR/ANCHORS first). */
static bp_status ensure_room(bp_store *s, size_t need, size_t n, uint64_t first_seq) {
    if (need > bp__seg_end_max - BP_SEG_HEADER_SIZE) return too_big(s, n, "frames", need);
    bp_segment *seg = &s->segs[s->n_segs - 1];
    bool compacted = seg->segno <= s->anchors.last_segno;
    bool leave = compacted && first_seq > s->anchors.upto;
    if (!seg->sealed && !leave &&
        (seg->size == BP_SEG_HEADER_SIZE || seg->size + need <= s->opts.segment_size) &&
        seg->size + need <= bp__seg_end_max)
        return BP_OK;
    bp_status rc = BP_OK;
    if (!seg->sealed) rc = bp_segment_seal(s);
    uint32_t next = s->segs[s->n_segs - 1].segno + 1;
    if (!rc && compacted && !leave) rc = bp_anchors_extend(s, next);
    if (!rc && leave && s->idx.n < s->anchors.upto) { /* the range ends with holes */
        pthread_rwlock_wrlock(&s->ilock);
        int e = bp_index_holes(&s->idx, s->anchors.upto, s->anchors.last_segno);
        pthread_rwlock_unlock(&s->ilock);
        if (e) return bp_store_fail(s, BP_ENOMEM, 0, "%s: out of memory", s->dir);
        s->written_seq = s->anchors.upto; /* sealed: everything before is durable */
        __atomic_store_n(&s->synced_seq, s->written_seq, __ATOMIC_RELEASE);
        bp_publish(s, s->written_seq);
    }
    if (!rc) rc = bp_segment_create(s, next);
    return rc;
}

/* [w] Write the n frames encoded in s->enc (their fields in frames[], the next seqs),
 * queued for the next group-commit leader when queue (durable: not published before
 * their sync) or written now, and insert them into the index. Nothing is changed when it
 * fails before the write; after that a failure fail-stops the store. */
static bp_status write_frames(bp_store *s, const bp_frame *frames, size_t n, bool queue) {
    bp_status rc = ensure_room(s, s->enc.len, n, frames[0].f.global_seq);
    if (rc) return rc;
    bp_segment *seg = &s->segs[s->n_segs - 1];
    uint64_t off = seg->size;
    if (queue) {
        /* Durable: queue the frames; the group-commit leader writes every queued frame with
         * one pwrite just before its fdatasync. Not published (so not read) before then. */
        if (!s->pending.len) s->pending_off = off;
        if (bp_buf_append(&s->pending, s->enc.data, s->enc.len)) {
            return bp_err(BP_ENOMEM, "append: out of memory queueing a frame");
        }
    } else {
        if ((rc = bp_flush_pending(s))) return rc; /* the file keeps the order of the seqs */
        int w = bp_pf_pwrite(&seg->f, s->enc.data, s->enc.len, off);
        if (w) {
            return bp_store_fail(s, BP_EIO, w,
                                 "%s: write of %zu bytes to segment %06u at offset %llu failed",
                                 s->dir, s->enc.len, seg->segno, (unsigned long long)off);
        }
    }
    seg->size += s->enc.len;
    if (!queue && seg->size - seg->wb_from >= BP_WRITEBACK_CHUNK) {
        bp_pf_writeback(&seg->f, seg->wb_from, seg->size - seg->wb_from);
        seg->wb_from = seg->size;
    }
    pthread_rwlock_wrlock(&s->ilock);
    uint64_t pos = off;
    for (size_t i = 0; i < n && !rc; i++) {
        const bp_event_fields *f = &frames[i].f;
        if (i + 8 < n) bp_index_prefetch_id(&s->idx, &frames[i + 8].f.event_id);
        uint32_t flen = BP_FRAME_PREFIX + bp_get_be32(s->enc.data + (pos - off));
        bp_irec r = {f->event_id, f->hlc, seg->segno, (uint32_t)pos, flen, 0, 0, f->kind, f->flags};
        /* holes of the compacted range an import fills (bp_commit_imported checked them) */
        if (bp_index_holes(&s->idx, f->global_seq - 1, seg->segno) ||
            bp_index_insert(&s->idx, &r, f->entity, f->entity_len, f->scope, f->scope_len,
                            &frames[i].event_hash, f->idem_key, f->idem_len))
            rc = BP_ENOMEM;
        pos += flen;
    }
    pthread_rwlock_unlock(&s->ilock);
    if (rc)
        return bp_store_fail(s, BP_ENOMEM, 0, "%s: out of memory inserting into the index", s->dir);
    s->written_seq = frames[n - 1].f.global_seq;
    s->appends += n;
    if (!s->unsynced) bp_unsynced_start(s);
    s->unsynced += (uint32_t)n;
    return BP_OK;
}

/* [w] Encode, write, index and (per durability) sync n items. */
static bp_status commit_locked(bp_store *s, const bp_batch_item *items, size_t n,
                               bp_receipt *receipts, bool system, bp_durability dur, bool *arriving,
                               uint64_t *wait_for) {
    for (size_t i = 0; i < n; i++) {
        bp_status rc = bp_validate_item(s, &items[i], system, i, n > 1);
        if (rc) return rc;
    }
    /* the payloads alone too large for a segment: refused before encoding (ensure_room checks
     * the frames exactly) */
    uint64_t payloads = 0;
    for (size_t i = 0; i < n; i++)
        payloads += items[i].len;
    if (payloads > bp__seg_end_max - BP_SEG_HEADER_SIZE) return too_big(s, n, "payload", payloads);
    bp_status rc = check_idempotency(s, items, n, receipts);
    if (rc == BP_DONE) return BP_OK;
    if (rc) return rc;
    if (dur.mode == BP_DUR_EVERY && dur.every_ms && (rc = bp_flusher_want(s, dur.every_ms)))
        return rc;

    uint64_t first_seq = s->written_seq + 1;
    /* an import left a compacted range open (bp_anchors_install): new events go past it */
    if (s->segs[s->n_segs - 1].segno <= s->anchors.last_segno && first_seq <= s->anchors.upto)
        first_seq = s->anchors.upto + 1;
    uint64_t wall = bp_pf_wall_ms();
    s->enc.len = 0;
    if ((rc = frames_reserve(s, n)) || (n > 1 && (rc = batch_heads_reset(s, n)))) return rc;
    bp_frame *frames = s->frames;
    /* a batch's hashes are taken together after its fields (a sealed payload is in sealbuf
     * only until the next event's: hashed and encoded at once) */
    bool defer = n > 1 && !s->seal;
    uint64_t hlc = s->last_hlc;
    bp_idgen idgen = s->idgen;
    for (size_t i = 0; i < n; i++) {
        const bp_batch_item *it = &items[i];
        const bp_append_options *o = it->opts;
        bp_frame *fr = &frames[i];
        memset(fr, 0, sizeof *fr);
        size_t elen = strlen(it->entity), slen = strlen(it->scope);
        size_t ilen = o && o->idempotency_key ? strlen(o->idempotency_key) : 0;
        uint32_t *bslot = n > 1 ? batch_heads_slot(s, frames, n, it->entity, elen) : NULL;
        uint64_t clock;
        if (defer) s->bdeps[i] = *bslot; /* (its prev_hash is set by hash_batch) */
        if ((rc = entity_head(s, frames, bslot, it->entity, elen, &clock, &fr->f.prev_hash)))
            goto out;
        if (o && o->has_expected_clock && o->expected_clock != clock) {
            char where[32] = "";
            if (n > 1) snprintf(where, sizeof where, "batch item %zu: ", i);
            if (n == 1 && !system) bp_turn_lost(s, bp_turn_key(it->entity, elen));
            rc = bp_err(BP_ECONFLICT,
                        "%sentity '%s': expected clock %llu but the head is at %llu; nothing was "
                        "written",
                        where, it->entity, (unsigned long long)o->expected_clock,
                        (unsigned long long)clock);
            goto out;
        }
        bp_event_fields *f = &fr->f;
        uint8_t rnd[10];
        next_random(s, rnd);
        hlc = bp_hlc_next(hlc, wall);
        bp_idgen_next(&idgen, BP_HLC_WALL_MS(hlc), rnd, &f->event_id);
        f->correlation_id = o && o->correlation_id ? *o->correlation_id : f->event_id;
        if (o && o->causation_id) {
            f->causation_id = *o->causation_id;
            f->has_causation = true;
        }
        f->global_seq = first_seq + i;
        f->clock = clock + 1;
        f->hlc = hlc;
        f->kind = it->kind;
        f->flags = bp_opts_schema(o);
        if (n > 1) {
            f->batch_id = first_seq;
            f->batch_index = (uint32_t)i;
            f->batch_count = (uint32_t)n;
        }
        f->entity = it->entity;
        f->entity_len = elen;
        f->scope = it->scope;
        f->scope_len = slen;
        f->idem_key = ilen ? o->idempotency_key : NULL;
        f->idem_len = ilen;
        f->payload = it->payload;
        f->payload_len = it->len;
        if (s->seal && !system) { /* the hash covers the sealed bytes: chains outlive the key */
            bp_dkey key;
            bool found;
            if ((rc = bp_dkey_get(s, it->entity, elen, true, &key, &found))) return rc;
            s->sealbuf.len = 0;
            if (bp_buf_reserve(&s->sealbuf, it->len + BP_SEAL_OVERHEAD))
                return bp_err(BP_ENOMEM, "append: out of memory sealing a payload");
            f->payload_len = bp_seal(&key, it->payload, it->len, s->sealbuf.data);
            f->payload = s->sealbuf.data;
            f->flags |= BP_EVENT_SEALED;
            bp_wipe(&key, sizeof key);
        }
        if (bslot) *bslot = (uint32_t)i + 1;
        if (defer) continue;
        bp_event_hash(f, &fr->event_hash);
        if (bp_frame_encode(&s->enc, fr))
            return bp_err(BP_ENOMEM, "append: out of memory encoding a frame");
    }
    if (defer) {
        hash_batch(s, frames, n);
        for (size_t i = 0; i < n; i++)
            if (bp_frame_encode(&s->enc, &frames[i]))
                return bp_err(BP_ENOMEM, "append: out of memory encoding a frame");
    }

    if ((rc = write_frames(s, frames, n, dur.mode == BP_DUR_SYNC))) return rc;
    s->last_hlc = hlc;
    s->idgen = idgen;

    /* durability: a batch's as a single append's (recovery keeps a batch whole or cuts it by
     * its markers, synced or not) */
    bp_durability_mode mode = dur.mode;
    if (mode == BP_DUR_EVERY) {
        bool due =
            (dur.every_events && s->unsynced >= dur.every_events) ||
            (dur.every_ms && bp_pf_mono_us() - s->unsynced_since_us >= dur.every_ms * 1000ull);
        if (due) mode = BP_DUR_SYNC;
    }
    bp_durability_mode granted = dur.mode == BP_DUR_EVERY ? BP_DUR_EVERY : BP_DUR_NONE;
    s->writes_total++;
    *arriving = false;
    bp_arrived(s); /* written */
    if (mode == BP_DUR_SYNC) {
        *wait_for = s->written_seq; /* commit() waits, after the receipts are filled */
        granted = BP_DUR_SYNC;
    } else {
        bp_publish_ready(s);
    }
    for (size_t i = 0; receipts && i < n; i++) {
        bp_receipt *r = &receipts[i];
        const bp_irec *rec = &BP_XREC(&s->idx, first_seq - 1 + i); /* (new: in memory) */
        const bp_strtab *en = &s->idx.entity_names, *sn = &s->idx.scope_names;
        fill_receipt(s, &frames[i].f, &frames[i].event_hash, en->s[rec->entity],
                     en->len[rec->entity], sn->s[rec->scope], sn->len[rec->scope], r);
        r->durability = granted;
    }
out:
    return rc;
}

static bp_durability resolve(const bp_store *s, const bp_append_options *o) {
    if (o && o->durability.mode != BP_DUR_DEFAULT) return o->durability;
    return s->opts.durability;
}

/* Make the data keys of the items' entities before taking the write lock: creating one
 * syncs a file and a directory. (commit_locked makes one too if bp_forget ran between.) */
static bp_status make_keys(bp_store *s, const bp_batch_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        bp_dkey key;
        bool found;
        if (!items[i].entity) continue; /* validation reports it */
        size_t el = strnlen(items[i].entity, BP_COORD_MAX + 1);
        if (!el || el > BP_COORD_MAX) continue;
        bp_status rc = bp_dkey_get(s, items[i].entity, el, true, &key, &found);
        bp_wipe(&key, sizeof key);
        if (rc) return rc;
    }
    return BP_OK;
}

static bp_status commit(bp_store *s, const bp_batch_item *items, size_t n, bp_receipt *receipts,
                        bool system, bp_durability dur) {
    if (receipts && !BP_SIZE_OK(receipts, bp_receipt)) /* element 0's size is the stride */
        return bp_err_size("append", "bp_receipt", "BP_RECEIPT_INIT", receipts->struct_size,
                           sizeof *receipts);
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    if (s->seal && !system) {
        bp_status krc = make_keys(s, items, n);
        if (krc) return krc;
    }
    uint64_t t0 = bp_pf_mono_us();
    /* A single CAS append waits while another writer holds the entity's turn (it lost a race
     * on it: turns.c), and checks again under wmu, where turns are taken. */
    const bp_append_options *o1 = n == 1 ? items[0].opts : NULL;
    bool cas = !system && o1 && o1->has_expected_clock && items[0].entity;
    uint64_t key =
        cas ? bp_turn_key(items[0].entity, strnlen(items[0].entity, BP_COORD_MAX + 1)) : 0;
    bool arriving = true;
    for (;;) {
        if (cas) bp_turn_wait(s, key);
        __atomic_fetch_add(&s->arriving, 1, __ATOMIC_RELEASE);
        pthread_mutex_lock(&s->wmu);
        if (!cas || !bp_turn_blocked(s, key)) break;
        bp_arrived(s);
        bp_wmu_unlock(s);
    }
    bp_status rc;
    uint64_t wait_for = 0;
    if (s->failed)
        rc = bp_failed_error(s);
    else
        rc = commit_locked(s, items, n, receipts, system, dur, &arriving, &wait_for);
    if (arriving) bp_arrived(s);
    if (s->tier_check) s->tier_check = bp_tier_extend(s); /* (a segment sealed: published?) */
    if (!rc && wait_for)
        rc = bp_wait_durable_release(s, wait_for); /* unlocks wmu */
    else
        bp_wmu_unlock(s);
    if (!rc) record_latency(s, bp_pf_mono_us() - t0);
    if (!rc && !system) bp_turn_done(s); /* a turn this thread held on s is used up */
    for (size_t i = 0; !rc && s->sign_fn && receipts && i < n; i++) /* outside the write lock */
        s->sign_fn(s->sign_ctx, &receipts[i]);
    return rc;
}

bp_status bp_append_ex(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                       uint16_t kind, const void *payload, size_t len,
                       const bp_append_options *opts) {
    if (!s) return bp_err(BP_EINVAL, "append: NULL store");
    bp_batch_item it = {entity, scope, kind, payload, len, opts};
    return commit(s, &it, 1, receipt, false, resolve(s, opts));
}

bp_status bp_append(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                    uint16_t kind, const void *payload, size_t len) {
    return bp_append_ex(s, receipt, entity, scope, kind, payload, len, NULL);
}

bp_status bp_append_batch_ex(bp_store *s, bp_receipt *receipts, const bp_batch_item *items,
                             size_t n, const bp_batch_options *opts) {
    if (!s) return bp_err(BP_EINVAL, "append_batch: NULL store");
    bp_durability dur = BP_DURABLE; /* no options: as bp_append_batch */
    if (opts) {
        BP_SIZE_CHECK("append_batch", opts, bp_batch_options, BP_BATCH_OPTIONS_INIT);
        if (opts->durability.mode > BP_DUR_NONE)
            return bp_err(BP_EINVAL, "append_batch: unknown durability mode %d",
                          (int)opts->durability.mode);
        dur = opts->durability.mode == BP_DUR_DEFAULT ? s->opts.durability : opts->durability;
    }
    if (n == 0) return BP_OK;
    if (!items) return bp_err(BP_EINVAL, "append_batch: items is NULL");
    if (n > BP_BATCH_MAX)
        return bp_err(BP_ETOOBIG, "append_batch: %zu items exceed the limit of %u", n,
                      BP_BATCH_MAX);
    return commit(s, items, n, receipts, false, dur);
}

bp_status bp_append_batch(bp_store *s, bp_receipt *receipts, const bp_batch_item *items, size_t n) {
    return bp_append_batch_ex(s, receipts, items, n, NULL);
}

bp_status bp_append_system(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope,
                           uint16_t kind, const void *payload, size_t len, bp_durability dur) {
    bp_append_options o = BP_APPEND_OPTIONS_INIT;
    o.durability = dur;
    bp_batch_item it = {entity, scope, kind, payload, len, &o};
    return commit(s, &it, 1, receipt, true, resolve(s, &o));
}

bp_status bp_tombstone(bp_store *s, bp_receipt *receipt, const char *entity, const char *scope) {
    if (!s) return bp_err(BP_EINVAL, "bp_tombstone: store is NULL");
    bp_status rc = bp_coord_validate_sys(entity, scope, false);
    if (rc) return rc;
    return bp_append_system(s, receipt, entity, scope, BP_KIND_SYSTEM_TOMBSTONE, NULL, 0,
                            s->opts.durability);
}

bp_status bp_commit_each(bp_store *s, const bp_batch_item *items, size_t n, bp_receipt *receipts,
                         bp_status *rcs, char (*msgs)[BP_TICKET_MSG]) {
    uint64_t wait_for = 0;
    if (s->seal) (void)make_keys(s, items, n); /* a failure shows again, per item, below */
    pthread_mutex_lock(&s->wmu);
    for (size_t i = 0; i < n; i++) {
        bool arriving = true;
        uint64_t w = 0;
        __atomic_fetch_add(&s->arriving, 1, __ATOMIC_RELEASE);
        if (s->failed)
            rcs[i] = bp_failed_error(s);
        else
            rcs[i] = commit_locked(s, &items[i], 1, &receipts[i], false, resolve(s, items[i].opts),
                                   &arriving, &w);
        if (arriving) bp_arrived(s);
        if (rcs[i]) {
            snprintf(msgs[i], BP_TICKET_MSG, "%s", bp_last_error());
            continue;
        }
        if (w) {
            /* a later item of this group must not publish this one before its sync */
            if (w > s->need_sync_upto) s->need_sync_upto = w;
            wait_for = w;
        }
    }
    bp_status rc = BP_OK;
    if (wait_for) {
        rc = bp_wait_durable_release(s, wait_for); /* unlocks wmu */
        if (rc) {
            char msg[BP_TICKET_MSG];
            snprintf(msg, sizeof msg, "%s", bp_last_error());
            for (size_t i = 0; i < n; i++)
                if (!rcs[i] && receipts[i].durability == BP_DUR_SYNC && !receipts[i].replayed) {
                    rcs[i] = rc;
                    memcpy(msgs[i], msg, sizeof msg);
                }
        }
    } else {
        bp_wmu_unlock(s);
    }
    for (size_t i = 0; s->sign_fn && i < n; i++) /* outside the write lock */
        if (!rcs[i]) s->sign_fn(s->sign_ctx, &receipts[i]);
    return rc;
}

bp_status bp_commit_imported(bp_store *s, bp_frame *frames, size_t n, bool sync, size_t *bad) {
    *bad = 0;
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    if (!n) return BP_OK;
    pthread_mutex_lock(&s->wmu);
    bp_status rc = s->failed ? bp_failed_error(s) : BP_OK;
    if (!rc) rc = batch_heads_reset(s, n);
    uint64_t hlc = s->last_hlc;
    s->enc.len = 0;
    /* within the compacted range of an import (the active segment is a compacted one), seqs
     * may skip holes, up to upto; the frames are all in it, or all above it */
    bool compacted = s->segs[s->n_segs - 1].segno <= s->anchors.last_segno;
    bool in_range = compacted && frames[0].f.global_seq <= s->anchors.upto;
    uint64_t next = s->written_seq + 1;
    if (compacted && !in_range && next <= s->anchors.upto) /* the range ends with holes */
        next = s->anchors.upto + 1;
    for (size_t i = 0; i < n && !rc; i++) {
        const bp_event_fields *f = &frames[i].f;
        *bad = i;
        if (f->global_seq != next &&
            !(in_range && f->global_seq > next && f->global_seq <= s->anchors.upto)) {
            if (in_range && f->global_seq > next)
                rc = bp_err(BP_ECONFLICT,
                            "global_seq %llu above the compacted range (up to %llu) in the "
                            "same write as events within it",
                            (unsigned long long)f->global_seq, (unsigned long long)s->anchors.upto);
            else if (s->anchors.upto >= next && f->global_seq > next &&
                     f->global_seq <= s->anchors.upto)
                rc = bp_err(BP_ECONFLICT,
                            "global_seq %llu, but the store's next is %llu: seqs may skip "
                            "compacted holes only while an import fills the compacted range of "
                            "an empty store",
                            (unsigned long long)f->global_seq, (unsigned long long)next);
            else
                rc = bp_err(BP_ECONFLICT, "global_seq %llu, but the store's next is %llu",
                            (unsigned long long)f->global_seq, (unsigned long long)next);
            break;
        }
        next = f->global_seq + 1;
        uint64_t clock;
        bp_hash head;
        uint32_t *bslot = batch_heads_slot(s, frames, n, f->entity, f->entity_len);
        if ((rc = entity_head(s, frames, bslot, f->entity, f->entity_len, &clock, &head))) break;
        if (f->clock != clock + 1) {
            rc = bp_err(BP_ECONFLICT, "entity '%.*s': clock %llu, but its head is at %llu",
                        (int)f->entity_len, f->entity, (unsigned long long)f->clock,
                        (unsigned long long)clock);
            break;
        }
        if (memcmp(f->prev_hash.b, head.b, 32) != 0) {
            rc = bp_err(BP_ECONFLICT,
                        "entity '%.*s' clock %llu: prev_hash is not the hash of its previous event",
                        (int)f->entity_len, f->entity, (unsigned long long)f->clock);
            break;
        }
        int64_t islot = -1;
        if (f->idem_len && (rc = find_idem(s, f->idem_key, f->idem_len, &islot))) break;
        if (islot >= 0) {
            rc = bp_err(BP_ECONFLICT, "idempotency key '%.*s' is already used", (int)f->idem_len,
                        f->idem_key);
            break;
        }
        *bslot = (uint32_t)i + 1;
        if (f->hlc > hlc) hlc = f->hlc;
        if (bp_frame_encode(&s->enc, &frames[i]))
            rc = bp_err(BP_ENOMEM, "import: out of memory encoding a frame");
    }
    if (!rc) rc = write_frames(s, frames, n, sync);
    if (rc) {
        bp_wmu_unlock(s);
        return rc;
    }
    s->last_hlc = hlc;
    for (size_t i = 0; i < n; i++)
        bp_idgen_observe(&s->idgen, &frames[i].f.event_id);
    if (sync) return bp_wait_durable_release(s, s->written_seq); /* publishes; unlocks wmu */
    bp_publish_ready(s);
    bp_wmu_unlock(s);
    return BP_OK;
}
