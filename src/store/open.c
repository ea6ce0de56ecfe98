/* Open, close and the lifecycle surface. */
#include "store/piece.h"
#include "store/recover.h"
#include "bp_testing.h"

#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static bp_status check_options(const bp_open_options *o) {
    BP_SIZE_CHECK("bp_store_open", o, bp_open_options, BP_OPEN_OPTIONS_INIT);
    if (o->submit_queue > BP_SUBMIT_QUEUE_MAX)
        return bp_err(BP_EINVAL, "submit_queue %u out of range (0..%u)", o->submit_queue,
                      BP_SUBMIT_QUEUE_MAX);
    if (o->segment_size < 4096 || o->segment_size > (1u << 31))
        return bp_err(BP_EINVAL, "segment_size %u out of range (4096..2147483648)",
                      o->segment_size);
    if (o->max_payload == 0 || o->max_payload > BP_MAX_PAYLOAD)
        return bp_err(BP_EINVAL, "max_payload %u out of range (1..%u)", o->max_payload,
                      BP_MAX_PAYLOAD);
    if (o->durability.mode < BP_DUR_SYNC || o->durability.mode > BP_DUR_NONE)
        return bp_err(BP_EINVAL, "store durability mode %d invalid (SYNC, EVERY or NONE)",
                      (int)o->durability.mode);
    if (o->durability.mode == BP_DUR_EVERY && !o->durability.every_events &&
        !o->durability.every_ms)
        return bp_err(BP_EINVAL, "BP_DURABLE_EVERY needs a number of events or milliseconds");
    return BP_OK;
}

/* Sealing is the store's: on when DIR/dkeys exists; seal_payloads creates it. A store
 * with sealed events and no DIR/dkeys lost every data key (not a bp_forget, which removes
 * one file): refused, or with accept_loss recorded and DIR/dkeys made anew, so that the
 * store goes on sealing. */
static bp_status seal_setup(bp_store *s, bool turn_on) {
    char path[4096];
    snprintf(path, sizeof path, "%s/dkeys", s->dir);
    int e = bp_pf_exists(path);
    if (e < 0) return bp_err_sys(BP_EIO, e, "%s: cannot look for the data keys", path);
    if (e == 0) {
        uint64_t sealed = 0; /* (the six tier's segments: their index files' flag says) */
        for (uint32_t i = 0; i < s->n_six; i++)
            sealed += (s->segs[i].six->x.flags & BP_SIX_SEALED) != 0;
        for (uint64_t i = s->idx.rbase; i < s->idx.n; i++)
            sealed += (BP_XREC(&s->idx, i).flags & BP_EVENT_SEALED) != 0;
        if (sealed && !s->opts.accept_loss)
            return bp_err(BP_ECORRUPT,
                          "%s: acknowledged data lost: the directory is missing, but %llu "
                          "events have sealed payloads: their data keys are gone (and the store "
                          "would stop sealing). Restore it from a backup, or open with "
                          "accept_loss (batpak --accept-loss) to accept the loss (nothing is "
                          "written)",
                          path, (unsigned long long)sealed);
        if (sealed && !s->loss_accepted) /* (a loss of segments accepted too keeps its note) */
            snprintf(s->report.loss_note, sizeof s->report.loss_note,
                     "DIR/dkeys is missing: the payloads of %llu sealed events are unreadable",
                     (unsigned long long)sealed);
        if (sealed) { /* recorded, and the store goes on sealing, whatever else was lost */
            s->loss_accepted = true;
            turn_on = true;
        }
    }
    if (s->read_only) return BP_OK;
    if (turn_on) return bp_dkeys_turn_on(s);
    s->seal = e == 1;
    return BP_OK;
}

/* Stop the modules' threads, the last given first (on_stop may run twice). */
static void stop_modules(bp_store *s) {
    for (uint32_t i = s->n_mods; i-- > 0;)
        if (s->mstate[i] && s->mods[i]->on_stop) s->mods[i]->on_stop(s, s->mstate[i]);
}

bp_status bp_store_forget_hooks(bp_store *s, const char *entity) {
    bp_status rc = BP_OK;
    for (uint32_t i = 0; i < s->n_mods; i++)
        if (s->mstate[i] && s->mods[i]->on_forget) {
            bp_status r = s->mods[i]->on_forget(s, s->mstate[i], entity);
            if (!rc) rc = r;
        }
    return rc;
}

/* Run the modules' on_open (in their order), after recovery. */
static bp_status open_modules(bp_store *s, const bp_open_options *opts) {
    for (uint32_t i = 0; i < s->n_mods; i++) {
        bp_status rc = s->mods[i]->on_open ? s->mods[i]->on_open(s, opts, &s->mstate[i]) : BP_OK;
        if (rc) return rc;
    }
    return BP_OK;
}

static void store_free(bp_store *s) {
    if (!s) return;
    bp_fence_cancel_all(s);
    bp_submit_stop(s);
    stop_modules(s);
    bp_flusher_stop(s);
    bp_live_close(s);
    for (uint32_t i = 0; i < s->n_segs; i++) {
        bp_segfile_unref(s->segs[i].rd); /* events still held keep theirs (their leak) */
        bp_pf_close(&s->segs[i].f);
        bp_six_detach(&s->segs[i]);
    }
    free(s->segs);
    bp_close_later_flush(s);
    free(s->close_later);
    bp_index_free(&s->idx);
    bp_pf_view_release(&s->cold_view); /* (after the index: its cold directory reads it) */
    for (uint32_t i = 0; i < s->n_graves; i++)
        bp_strtab_free(&s->graves[i]);
    free(s->graves);
    free(s->sorted);
    pthread_mutex_destroy(&s->emu);
    bp_anchors_free(&s->anchors);
    pthread_mutex_destroy(&s->cmu);
    for (uint32_t i = s->n_mods; i-- > 0;)
        if (s->mstate[i] && s->mods[i]->on_free) s->mods[i]->on_free(s->mstate[i]);
    bp_buf_free(&s->enc);
    bp_buf_free(&s->sealbuf);
    free(s->frames);
    free(s->bheads);
    free(s->bdeps);
    bp_dkeys_free(s);
    bp_buf_free(&s->pending);
    bp_pf_unlock(&s->lock);
    bp_pf_unlock(&s->rdslot);
    pthread_rwlock_destroy(&s->ilock);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->fcond);
    pthread_cond_destroy(&s->gcond);
    bp_turns_free(s);
    pthread_mutex_destroy(&s->pmu);
    pthread_cond_destroy(&s->pcond);
    free(s->dir);
    free(s->segdir);
    free(s->cv_compact);
    free(s);
}

static bp_status read_or_create_ident(bp_store *s, bool *created) {
    char path[4096];
    snprintf(path, sizeof path, "%s/STORE", s->dir);
    uint8_t *buf;
    size_t len;
    int e = bp_pf_read_all(path, &buf, &len);
    if (e == 0) {
        bp_status rc = bp_store_ident_decode(&s->ident, buf, len, path);
        free(buf);
        return rc;
    }
    if (e != -ENOENT) return bp_err_sys(BP_EIO, e, "%s: cannot read", path);
    char segdir_probe[4096];
    snprintf(segdir_probe, sizeof segdir_probe, "%s/segments", s->dir);
    char **names;
    size_t n = 0;
    if (bp_pf_list(segdir_probe, ".fbat", &names, &n) == 0) {
        bp_pf_list_free(names, n);
        if (n)
            return bp_err(BP_ECORRUPT,
                          "%s: missing, but %zu segment files exist: the store's identity is "
                          "lost. Restore STORE from a backup of this store (a loss of STORE "
                          "cannot be accepted: nothing is written)",
                          path, n);
    }
    if (!s->opts.create || s->read_only)
        return bp_err(BP_ENOTFOUND, "%s: no batpak store here (STORE file missing)", s->dir);
    s->ident.version = BP_FORMAT_VERSION;
    s->ident.created_ms = bp_pf_wall_ms();
    if ((e = bp_pf_random(s->ident.uuid, 16)))
        return bp_err_sys(BP_EIO, e, "%s: cannot get random bytes for the store id", s->dir);
    s->ident.uuid[6] = (uint8_t)((s->ident.uuid[6] & 0x0F) | 0x40); /* UUIDv4 */
    s->ident.uuid[8] = (uint8_t)((s->ident.uuid[8] & 0x3F) | 0x80);
    uint8_t out[BP_STORE_FILE_SIZE];
    bp_store_ident_encode(&s->ident, out);
    if ((e = bp_pf_mkdir(s->segdir)) ||
        (e = bp_pf_write_atomic(s->fault, s->dir, "STORE", out, sizeof out)))
        return bp_err_sys(BP_EIO, e, "%s: cannot create the store", s->dir);
    *created = true;
    return BP_OK;
}

static void encode_report(const bp_store_open_report *r, bp_buf *b) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer p;
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    bool lost = r->loss_note[0] != '\0';
    msgpack_pack_map(&p, lost ? 13 : 9);
#define KV(k, v)                                                                                   \
    msgpack_pack_str_with_body(&p, k, strlen(k));                                                  \
    msgpack_pack_uint64(&p, (uint64_t)(v))
    KV("segments", r->segments);
    KV("footers_used", r->footers_used);
    KV("frames_scanned", r->frames_scanned);
    KV("bytes_scanned", r->bytes_scanned);
    KV("bytes_cut", r->bytes_cut);
    KV("frames_cut", r->frames_cut);
    KV("events", r->events);
    KV("duration_us", r->duration_us);
    if (lost) { /* an accepted loss (bp_open_options.accept_loss) */
        KV("segments_lost", r->segments_lost);
        KV("events_lost", r->events_lost);
        KV("first_lost_seq", r->first_lost_seq);
    }
#undef KV
    msgpack_pack_str_with_body(&p, "checkpoint", 10);
    msgpack_pack_str_with_body(&p, r->checkpoint_note, strlen(r->checkpoint_note));
    if (lost) {
        msgpack_pack_str_with_body(&p, "loss", 4);
        msgpack_pack_str_with_body(&p, r->loss_note, strlen(r->loss_note));
    }
    bp_buf_append(b, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* The store's directory: made when missing and opts may create, else BP_ENOTFOUND (a file
 * is no store either). */
static bp_status dir_ready(const char *dir, const bp_open_options *opts) {
    int e = bp_pf_exists(dir);
    if (e == 0 && (!opts->create || opts->read_only))
        return bp_err(BP_ENOTFOUND, "%s: no such directory", dir);
    if (e == 1) { /* a file is no store (and a read of DIR/STORE says only "not a directory") */
        char probe[4100];
        snprintf(probe, sizeof probe, "%s/.", dir);
        if (bp_pf_exists(probe) == -ENOTDIR)
            return bp_err(BP_ENOTFOUND, "%s: is a file, not a directory (a store is a directory)",
                          dir);
    }
    if (e == 0) e = bp_pf_mkdir(dir);
    if (e == -ENOTDIR || e == -ENOENT) /* (a parent missing, or a file) */
        return bp_err_sys(BP_ENOTFOUND, e, "%s: cannot create directory", dir);
    if (e < 0) return bp_err_sys(BP_EIO, e, "%s: cannot create directory", dir);
    return BP_OK;
}

static bp_status open_once(bp_store **out, const char *dir, const bp_open_options *opts,
                           bp_fault *fault, const bp_store_module *const *mods, size_t n_mods) {
    uint64_t t0 = bp_pf_mono_us();
    if (!out) return bp_err(BP_EINVAL, "bp_store_open: out is NULL");
    *out = NULL;
    if (n_mods > BP_STORE_MODULES_MAX)
        return bp_err(BP_EINVAL, "bp_store_open: %zu modules (at most %d)", n_mods,
                      BP_STORE_MODULES_MAX);
    if (!dir || !*dir) return bp_err(BP_EINVAL, "bp_store_open: directory is NULL or empty");
    bp_open_options defaults = BP_OPEN_OPTIONS_INIT;
    if (!opts) opts = &defaults;
    bp_status rc = check_options(opts);
    if (rc) return rc;
    bp_store *s = calloc(1, sizeof *s);
    if (!s) return bp_err(BP_ENOMEM, "bp_store_open: out of memory");
    s->lock = s->rdslot = s->ffile = (bp_file)BP_FILE_INIT;
    pthread_rwlock_init(&s->ilock, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_mutex_init(&s->emu, NULL);
    bp_segfile_limits(s);
    pthread_mutex_init(&s->pmu, NULL);
    int ce = bp_pf_cond_init(&s->fcond);
    if (!ce && (ce = bp_pf_cond_init(&s->pcond))) pthread_cond_init(&s->pcond, NULL);
    if (!ce && (ce = bp_pf_cond_init(&s->gcond))) pthread_cond_init(&s->gcond, NULL);
    if (ce) {
        pthread_cond_init(&s->fcond, NULL); /* so that store_free can destroy them */
        pthread_cond_init(&s->pcond, NULL);
        pthread_cond_init(&s->gcond, NULL);
        store_free(s);
        return bp_err_sys(BP_ENOMEM, ce, "bp_store_open: cannot create a condition variable");
    }
    s->opts = *opts;
    s->opts.signing_key = NULL; /* the signing module copies it; the caller's may go away */
    s->fault = fault;
    for (size_t i = 0; i < n_mods; i++)
        s->mods[i] = mods[i];
    s->n_mods = (uint32_t)n_mods;
    s->read_only = opts->read_only;
    s->rnd_pos = sizeof s->rnd;
    bp_turns_init(s);
    size_t dl = strlen(dir);
    s->dir = strdup(dir);
    s->segdir = malloc(dl + 10);
    if (!s->dir || !s->segdir || bp_index_init(&s->idx)) {
        store_free(s);
        return bp_err(BP_ENOMEM, "bp_store_open: out of memory");
    }
    snprintf(s->segdir, dl + 10, "%s/segments", dir);
    bp_status drc = dir_ready(dir, opts);
    if (drc) {
        store_free(s);
        return drc;
    }
    int e;
    char lockpath[4096];
    snprintf(lockpath, sizeof lockpath, "%s/STORE", dir);
    /* an open that may not create leaves no LOCK file in a directory without a
     * store (with segments but no STORE, recovery reports the damage) */
    if ((opts->read_only || !opts->create) && bp_pf_exists(lockpath) == 0 &&
        bp_pf_exists(s->segdir) == 0) {
        store_free(s);
        return bp_err(BP_ENOTFOUND, "%s: no batpak store here (STORE file missing)", dir);
    }
    snprintf(lockpath, sizeof lockpath, "%s/LOCK", dir);
    long holder = 0;
    /* one writer: a read-only handle takes no writer lock and writes nothing (it reads what
     * the files hold beside a live writer, or on a read-only medium); it is counted by a byte
     * lock of LOCK when the file is there and opens for writing (bp_store_stats' readers),
     * else it reads uncounted */
    if (opts->read_only) (void)bp_pf_lock_slot(&s->rdslot, lockpath, 1, BP_READER_SLOTS);
    if (!opts->read_only && (e = bp_pf_lock(&s->lock, lockpath, &holder))) {
        store_free(s);
        if (e == -EWOULDBLOCK)
            return bp_err(BP_ELOCKED, "store locked: %s is open by another handle (pid %ld)", dir,
                          holder);
        return bp_err_sys(BP_EIO, e, "%s: cannot take the lock", lockpath);
    }
    bool created = false;
    if ((rc = read_or_create_ident(s, &created)) || (rc = bp_store_recover(s)) ||
        (rc = open_modules(s, opts)) || (rc = bp_dkeys_init(s)) ||
        (rc = seal_setup(s, opts->seal_payloads))) {
        store_free(s);
        return rc;
    }
    s->report.struct_size = sizeof s->report;
    s->report.created = created;
    if (!s->read_only && (s->n_segs == 0 || s->segs[s->n_segs - 1].sealed)) {
        uint32_t next = s->n_segs ? s->segs[s->n_segs - 1].segno + 1 : 1;
        if ((rc = bp_segment_create(s, next))) {
            store_free(s);
            return rc;
        }
    }
    bp_six_open_pass(s); /* index files of sealed segments that lack a current one */
    bp_piece_clean(s);   /* a writer's: pieces of the frames before it are not its to trust */
    s->written_seq = s->synced_seq = s->published = s->idx.n;
    if (s->read_only) {
        if ((rc = bp_live_pin(s))) { /* (its sealed files, kept: a compaction replaces them) */
            store_free(s);
            return rc;
        }
        (void)bp_live_clamp(s, &s->published); /* a live writer's unpublished frames wait */
    }
    bp_entckpt_open_pass(s); /* the entity checkpoint of the tier's end (reads published frames) */
    bp_tier_open(s);         /* sealed segments in memory (no index file then): the tier, later */
    if (s->idx.n > s->idx.rbase) {
        const bp_irec *last = &BP_XREC(&s->idx, s->idx.n - 1);
        if (last->hlc > s->last_hlc) s->last_hlc = last->hlc;
        bp_idgen_observe(&s->idgen, &last->id);
    } else if (s->n_six) { /* every event is in the tier: its newest file has the bounds */
        const bp_six *x = &s->segs[s->n_six - 1].six->x;
        if (x->max_hlc > s->last_hlc) s->last_hlc = x->max_hlc;
        bp_idgen_observe(&s->idgen, &x->max_id);
    }
    s->report.events = s->idx.n - s->idx.holes;
    s->report.duration_us = bp_pf_mono_us() - t0;
    if (!s->read_only) bp_live_open(s); /* (its report is complete) */
    /* an accepted loss is always recorded, no_open_event or not */
    if (!s->read_only && (!opts->no_open_event || s->loss_accepted)) {
        bp_buf b = {0};
        encode_report(&s->report, &b);
        rc = bp_append_system(s, NULL, "batpak:store", "batpak:lifecycle",
                              BP_KIND_SYSTEM_OPEN_COMPLETED, b.data, b.len, BP_NO_SYNC);
        bp_buf_free(&b);
        if (rc) {
            store_free(s);
            return rc;
        }
    }
    if (!s->read_only && s->loss_accepted) {
        /* the loss is recorded: only now a checkpoint of what is left replaces the one that
         * was its evidence (a crash before this refuses the loss again) */
        pthread_mutex_lock(&s->wmu);
        rc = bp_sync_locked(s);
        if (!rc && s->anchors_lost) rc = bp_anchors_write(s, &s->anchors);
        if (!rc) rc = bp_store_checkpoint(s);
        pthread_mutex_unlock(&s->wmu);
        if (rc) {
            store_free(s);
            return rc;
        }
    }
    *out = s;
    if (opts->on_open) opts->on_open(opts->on_open_ctx, s, &s->report);
    return BP_OK;
}

/* A read-only open beside a live writer can meet what the writer is in the middle of: a
 * frame of the newest segment half copied into the page cache while a later one is whole
 * (ECORRUPT, "followed by valid frames"), a compaction's manifest between its commit and
 * its renames (EREADONLY), or a segment file listed a moment before the writer's recovery
 * set it aside (EIO, no such file). Each lasts microseconds to milliseconds: while a writer
 * holds the store, the open is tried again, READ_TRIES times over about 60 ms, before it
 * reports what it found. Without a writer nothing moves, but the one that moved the files
 * may have died a moment before (killed in the middle of its compaction's renames, or of
 * its recovery): the open is tried once more, then what it finds is the answer. */
enum { READ_TRIES = 6 };

bp_status bp_store_open_with(bp_store **out, const char *dir, const bp_open_options *opts,
                             bp_fault *fault, const bp_store_module *const *mods, size_t n_mods) {
    bp_status rc = open_once(out, dir, opts, fault, mods, n_mods);
    char lockpath[4200];
    if (dir) snprintf(lockpath, sizeof lockpath, "%s/LOCK", dir);
    for (int k = 1; k < READ_TRIES && opts && opts->read_only &&
                    (rc == BP_ECORRUPT || rc == BP_EREADONLY || rc == BP_EIO) &&
                    (k == 1 || bp_pf_lock_writer(lockpath) != 0);
         k++) {
        bp_pf_sleep_us(1000u << k); /* 2, 4, ... 32 ms */
        rc = open_once(out, dir, opts, fault, mods, n_mods);
    }
    return rc;
}

/* [w] At close: the active segment's file ends at its last frame again, durably (the zeros
 * written ahead of it are for appends; a crash leaves them, and recovery cuts them). */
static bp_status trim_active(bp_store *s) {
    bp_segment *seg = s->n_segs ? &s->segs[s->n_segs - 1] : NULL;
    if (!seg || seg->sealed || seg->f.fd < 0 || seg->zero_end <= seg->size) return BP_OK;
    int e = bp_segment_trim(s);
    if (!e) e = bp_pf_datasync(&seg->f);
    if (!e) s->fsyncs++;
    if (e)
        return bp_err_sys(BP_EIO, e, "%s: segment %06u: cannot cut the zeros written ahead", s->dir,
                          seg->segno);
    return BP_OK;
}

/* [w] A clean close seals an active segment whose frames fill at least BP_CLOSE_SEAL_MIN and
 * 1/16 of segment_size (not one of a compacted range an import fills: ensure_room extends
 * that range) and starts the next one: the next open reads the sealed one by its index file,
 * so at most that much of the newest segment goes into memory there. */
static bp_status seal_at_close(bp_store *s) {
    const bp_segment *seg = &s->segs[s->n_segs - 1];
    uint32_t segno = seg->segno;
    uint64_t frames = seg->size - BP_SEG_HEADER_SIZE;
    if (seg->sealed || segno <= s->anchors.last_segno || frames < BP_CLOSE_SEAL_MIN ||
        frames < s->opts.segment_size / 16)
        return BP_OK;
    bp_status rc = bp_segment_seal(s);
    if (!rc) rc = bp_segment_create(s, segno + 1);
    return rc;
}

bp_status bp_store_close(bp_store *s) {
    if (!s) return BP_OK;
    bp_status rc = BP_OK;
    bp_fence_cancel_all(s); /* a fence not committed was not accepted */
    bp_submit_stop(s);      /* commits what is queued: those appends were accepted */
    stop_modules(s);        /* workers persist their positions */
    for (uint32_t i = 0; !s->read_only && !s->failed && i < s->n_mods; i++)
        if (s->mstate[i] && s->mods[i]->on_flush) s->mods[i]->on_flush(s, s->mstate[i]);
    bp_flusher_stop(s);
    if (!s->read_only) {
        pthread_mutex_lock(&s->wmu);
        if (!s->failed) {
            bp_status src = bp_sync_locked(s);
            if (!src) src = trim_active(s);
            if (!src) src = seal_at_close(s);
            if (!src) src = bp_store_checkpoint(s);
            if (src) rc = src;
        } else {
            rc = bp_err(s->failed, "%s: closed a fail-stopped store (%s)", s->dir,
                        bp_failed_detail(s));
        }
        pthread_mutex_unlock(&s->wmu);
    }
    store_free(s);
    return rc;
}

void bp__store_crash(bp_store *s) {
    store_free(s);
}

bp_status bp_store_open_report_get(const bp_store *s, bp_store_open_report *out) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_store_open_report_get: NULL argument");
    BP_SIZE_CHECK("bp_store_open_report_get", out, bp_store_open_report, BP_STORE_OPEN_REPORT_INIT);
    *out = s->report;
    out->struct_size = sizeof *out;
    return BP_OK;
}

void bp_store_uuid(const bp_store *s, uint8_t out[16]) {
    if (s && out) memcpy(out, s->ident.uuid, 16);
}

const char *bp_store_dir(const bp_store *s) {
    return s ? s->dir : NULL;
}

static uint64_t percentile(const uint64_t *lat, uint64_t total, double q) {
    if (!total) return 0;
    uint64_t want = (uint64_t)((double)total * q), acc = 0;
    if (want >= total) want = total - 1;
    for (unsigned b = 0; b < BP_LAT_BUCKETS; b++) {
        acc += lat[b];
        if (acc > want) return bp_lat_bucket_upper(b);
    }
    return 0;
}

/* The bytes of the segment index files and entities.ckpt. [w] and [i] shared held. */
static uint64_t index_file_bytes(bp_store *s) {
    uint64_t b = 0, sz;
    char path[4200];
    for (uint32_t i = 0; i < s->n_segs; i++) {
        const bp_segment *g = &s->segs[i];
        if (g->six) {
            b += g->six->len;
            continue;
        }
        bp_six_path(s, g->segno, path, sizeof path);
        if (g->sealed && bp_pf_path_size(path, &sz) == 0) b += sz;
    }
    snprintf(path, sizeof path, "%s/entities.ckpt", s->dir);
    if (bp_pf_path_size(path, &sz) == 0) b += sz;
    return b;
}

/* bp_store_stats as 1.0 knew it: up to read_only (index_file_bytes came in 1.1); as 1.1 knew
 * it: up to index_file_bytes (writer_pid and readers came in 1.2). */
#define STATS_SIZE_1_0 offsetof(bp_store_stats, index_file_bytes)
#define STATS_SIZE_1_1 offsetof(bp_store_stats, writer_pid)

bp_status bp_store_stats_get(bp_store *s, bp_store_stats *caller) {
    if (!s || !caller) return bp_err(BP_EINVAL, "bp_store_stats_get: NULL argument");
    uint32_t size = caller->struct_size;
    if (size != STATS_SIZE_1_0 && size != STATS_SIZE_1_1)
        BP_SIZE_CHECK("bp_store_stats_get", caller, bp_store_stats, BP_STORE_STATS_INIT);
    /* filled whole here, then as much of it as the caller's version has */
    bp_store_stats full = BP_STORE_STATS_INIT, *out = &full;
    /* a reader beside a live writer shows the writer's figures (DIR/LIVE) */
    bp_live_figs *wf = s->read_only ? malloc(sizeof *wf) : NULL;
    bool writer_figs = wf && bp_live_writer_figures(s, wf);
    pthread_mutex_lock(&s->wmu);
    out->fsyncs = writer_figs ? wf->fsyncs : s->fsyncs;
    out->appends = writer_figs ? wf->appends : s->appends;
    uint64_t total = 0, lat[BP_LAT_BUCKETS], sum_us; /* appenders add to s->lat without wmu */
    if (writer_figs)
        memcpy(lat, wf->lat, sizeof lat);
    else
        bp_store_latency(s, lat, &sum_us);
    for (unsigned b = 0; b < BP_LAT_BUCKETS; b++)
        total += lat[b];
    out->write_p50_us = percentile(lat, total, 0.50);
    out->write_p99_us = percentile(lat, total, 0.99);
    for (int b = BP_LAT_BUCKETS - 1; b >= 0 && total; b--)
        if (lat[b]) {
            out->write_max_us = percentile(lat, total, 1.0);
            break;
        }
    out->failed = writer_figs ? wf->failed != 0 : s->failed != 0;
    free(wf);
    out->read_only = s->read_only;
    pthread_rwlock_rdlock(&s->ilock);
    /* holes are below published, but for those an import of a compacted range has written
     * and not yet published (a few, above published) */
    uint64_t holes = s->idx.holes;
    for (uint64_t q = s->published; q < s->idx.n; q++) /* (above published: in memory) */
        holes -= BP_IREC_HOLE(&BP_XREC(&s->idx, q));
    out->events = s->published - holes;
    out->entities = bp_index_entity_count(&s->idx);
    out->scopes = s->idx.scope_names.n;
    out->segments = s->n_segs;
    for (uint32_t i = 0; i < s->n_segs; i++) {
        bp_segment *g = &s->segs[i];
        uint64_t sz = g->size; /* a sealed segment's, the file's size */
        char path[4200];
        bp_segment_path(s, g->segno, "", path, sizeof path);
        if (!g->sealed && (g->f.fd >= 0 ? bp_pf_size(&g->f, &sz) : bp_pf_path_size(path, &sz)))
            sz = 0;
        out->bytes_on_disk += sz;
    }
    out->index_bytes = bp_index_bytes(&s->idx);
    out->index_file_bytes = index_file_bytes(s);
    pthread_rwlock_unlock(&s->ilock);
    pthread_mutex_unlock(&s->wmu);
    char lockpath[4200];
    snprintf(lockpath, sizeof lockpath, "%s/LOCK", s->dir);
    long writer = s->read_only ? bp_pf_lock_writer(lockpath) : bp_pf_getpid();
    out->writer_pid = writer > 0 ? (uint32_t)writer : 0;
    out->readers =
        bp_pf_lock_count(s->read_only ? &s->rdslot : &s->lock, lockpath, 1, BP_READER_SLOTS) +
        (s->rdslot.fd >= 0);
    char path[4096];
    const char *extra[] = {"STORE", "index.ckpt"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", s->dir, extra[i]);
        bp_file f;
        if (bp_pf_open(&f, NULL, path, BP_O_READ) == 0) {
            uint64_t sz;
            if (bp_pf_size(&f, &sz) == 0) out->bytes_on_disk += sz;
            bp_pf_close(&f);
        }
    }
    memcpy(caller, &full, size);
    caller->struct_size = size;
    return BP_OK;
}
