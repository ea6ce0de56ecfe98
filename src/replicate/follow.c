/*
 * The follower (replicate.h): an ordered JetStream consumer whose messages (frame bodies)
 * go through the importer into a replica store, with the replica's own checkpoint of the
 * stream sequence it has applied (REPLICA/follow/STREAM.ckpt, the cursor checkpoint
 * encoding of doc/FORMAT.md with position = stream sequence).
 *
 * Order: a relay that publishes a batch again after a lost ack can leave an event in the
 * stream after later ones (and duplicates of earlier ones). Events ahead of the replica
 * wait in a reorder window until the ones before them arrive; duplicates are skipped by the
 * importer. A gap that the window cannot bridge is an error.
 */
#include "replicate/nats_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define RECONNECT_MS 100
#define REORDER_MAX 16384 /* events held ahead of the replica, at most */
#define APPLY_EVERY 4096  /* end the import (sync + checkpoint) at least this often */
#define HOLD_OPEN_MS 1000 /* close the replica at least this often, so readers get in */
#define WAIT_SLICE_MS 100 /* the longest single wait for a message */

/* An event that arrived ahead of the replica. */
typedef struct ahead {
    uint64_t seq, sseq; /* its global_seq and stream sequence */
    uint8_t *body;
    size_t len;
} ahead;

/* Invariants: s is open iff imp != NULL; applied_sseq is the stream sequence up to which
 * every message is in the replica and synced (what the checkpoint says, or will say);
 * next_seq is the replica's next global_seq once the importer's group is written; win
 * holds n_win events with seq > next_seq in no particular order. */
typedef struct follower {
    const char *dir;
    const bp_follow_config *cfg;
    char ckdir[4200];
    char ckname[80];
    bp_store *s;
    bp_importer *imp;
    uint64_t opened_at_us;
    uint64_t applied_sseq, last_sseq; /* last_sseq: the newest message taken in */
    uint64_t next_seq;
    bp_id last_id;
    ahead *win;
    size_t n_win;
    bp_follow_report *rep;
    uint64_t imported_before, skipped_before; /* the counts of importers already ended */
} follower;

static bool stopped(const follower *f) {
    return f->cfg->stop && *f->cfg->stop;
}

/* ------------------------------------------------------------- the checkpoint */

static bp_status read_ckpt(follower *f) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", f->ckdir, f->ckname);
    bool found; /* without one: from the start, what the replica holds is skipped */
    bp_status rc = bp_cursorck_load(path, &f->applied_sseq, &f->last_id, &found);
    if (rc && rc != BP_EIO) rc = bp_err(BP_ECORRUPT, "%s", bp_last_error());
    return rc;
}

static bp_status write_ckpt(follower *f) {
    return bp_cursorck_save(NULL, f->ckdir, f->ckname, f->applied_sseq, &f->last_id);
}

/* ------------------------------------------------------------- the replica */

static bp_status open_replica(follower *f) {
    if (f->s) return BP_OK;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true; /* a replica holds the source's events and nothing else */
    bp_status rc;
    /* a reader (batpak get, query...) may hold the replica for a moment: wait for it */
    for (int tries = 0;; tries++) {
        rc = bp_store_open(&f->s, f->dir, &o);
        if (rc != BP_ELOCKED || tries >= 1000 || stopped(f)) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (!rc && (rc = bp_import_begin(f->s, &f->imp))) {
        bp_store_close(f->s);
        f->s = NULL;
    }
    if (rc) return rc;
    bp_store_diagnostics d;
    d.struct_size = sizeof d;
    rc = bp_store_diagnostics_get(f->s, &d);
    f->next_seq = d.published_seq + 1;
    f->opened_at_us = bp_pf_mono_us();
    return rc;
}

/* End the import (commit and sync what is held), then write the checkpoint. Not while a
 * batch is half in (the importer would refuse it): then nothing is done. */
static bp_status settle(follower *f, bool reopen) {
    if (!f->imp || bp_import_in_batch(f->imp)) return BP_OK;
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    bp_status rc = bp_import_end(f->imp, &rep);
    f->imp = NULL;
    f->imported_before += rep.imported;
    f->skipped_before += rep.skipped;
    /* every message up to safe is in the replica: those in the window came after it */
    uint64_t safe = f->last_sseq;
    for (size_t i = 0; i < f->n_win; i++)
        if (f->win[i].sseq <= safe) safe = f->win[i].sseq - 1;
    if (!rc && safe > f->applied_sseq) {
        f->applied_sseq = safe;
        bp_store_last_id(f->s, &f->last_id); /* the replica's newest event, for the checkpoint */
        rc = write_ckpt(f);
    }
    if (!rc && reopen) rc = bp_import_begin(f->s, &f->imp);
    return rc;
}

static bp_status close_replica(follower *f) {
    if (!f->s) return BP_OK;
    bp_status rc = settle(f, false);
    if (f->imp) { /* a batch half in: it comes again from the checkpoint next time */
        bp_import_report rep = BP_IMPORT_REPORT_INIT;
        bp_import_end(f->imp, &rep);
        f->imp = NULL;
        f->imported_before += rep.imported;
        f->skipped_before += rep.skipped;
    }
    bp_status crc = bp_store_close(f->s);
    f->s = NULL;
    return rc ? rc : crc;
}

/* ------------------------------------------------------------- applying */

static bp_status import_one(follower *f, const uint8_t *body, size_t len, uint64_t seq,
                            uint64_t sseq) {
    bp_status rc = bp_import_frame(f->imp, body, len, sseq);
    if (rc == BP_EINVAL) /* a batch out of shape: in a stream that is damage, not bad input */
        rc = bp_err(BP_ECORRUPT, "%s", bp_last_error());
    if (rc) return rc;
    if (seq >= f->next_seq) f->next_seq = seq + 1; /* above: a compacted range's holes */
    return BP_OK;
}

/* Is seq next in line: the replica's next, a resend before it, or (while the replica fills a
 * compacted range from its anchors) any seq up to just past the range, the seqs between being
 * holes. The replica is open. */
static bool in_line(follower *f, uint64_t seq) {
    if (seq <= f->next_seq) return true;
    return seq <= bp_store_compacted_upto(f->s) + 1;
}

/* An anchors message: the source is compacted; an empty replica starts from its anchors, one
 * that holds events already (it followed before the compaction) keeps them and ignores it. */
static bp_status take_anchors(follower *f, natsMsg *m, uint64_t sseq) {
    f->rep->messages++;
    f->last_sseq = sseq;
    bool installed;
    return bp_import_anchors(f->imp, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), sseq,
                             false, &installed);
}

/* Apply what the window holds that is next in line. */
static bp_status drain_window(follower *f) {
    for (bool moved = true; moved && f->n_win;) {
        moved = false;
        for (size_t i = 0; i < f->n_win; i++) {
            if (!in_line(f, f->win[i].seq)) continue;
            ahead a = f->win[i];
            f->win[i] = f->win[--f->n_win];
            bp_status rc = import_one(f, a.body, a.len, a.seq, a.sseq);
            free(a.body);
            if (rc) return rc;
            moved = true;
            break;
        }
    }
    return BP_OK;
}

/* global_seq of a frame body, from its decoded fields (the importer checks the rest). */
static bp_status body_seq(const uint8_t *body, size_t len, uint64_t sseq, uint64_t *seq) {
    bp_frame fr;
    if (bp_frame_decode(body, len, &fr))
        return bp_err(BP_ECORRUPT, "stream sequence %llu: not an event frame: %s",
                      (unsigned long long)sseq, bp_last_error());
    *seq = fr.f.global_seq;
    return BP_OK;
}

static bp_status take(follower *f, natsMsg *m, uint64_t sseq) {
    const uint8_t *body = (const uint8_t *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    uint64_t seq = 0;
    bp_status rc = body_seq(body, len, sseq, &seq);
    if (rc) return rc;
    f->rep->messages++;
    f->last_sseq = sseq;
    if (in_line(f, seq)) { /* next in line, or a resend the importer compares and skips */
        if ((rc = import_one(f, body, len, seq, sseq))) return rc;
        return drain_window(f);
    }
    if (f->n_win == REORDER_MAX)
        return bp_err(BP_ECORRUPT,
                      "stream sequence %llu: global_seq %llu is more than %d events ahead of the "
                      "replica (next %llu): the stream misses events (a filtered relay, or "
                      "events compacted away before they were relayed)",
                      (unsigned long long)sseq, (unsigned long long)seq, REORDER_MAX,
                      (unsigned long long)f->next_seq);
    ahead a = {seq, sseq, malloc(len ? len : 1), len};
    if (!a.body) return bp_err(BP_ENOMEM, "follow: out of memory");
    memcpy(a.body, body, len);
    f->win[f->n_win++] = a;
    return BP_OK;
}

/* ------------------------------------------------------------- the stream */

/* The stream's one subject filter and its last sequence. */
static bp_status stream_info(jsCtx *js, const char *stream, char *subject, size_t cap,
                             uint64_t *last) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return bp_err(BP_ENOTFOUND, "stream '%s': no such stream (start a relay first)", stream);
    if (ns != NATS_OK) return bp_nats_err(BP_EIO, ns, jerr, "stream info");
    bp_status rc = BP_OK;
    if (subject) {
        if (si->Config->SubjectsLen != 1)
            rc = bp_err(BP_EINVAL, "stream '%s' has %d subjects; a relay's stream has one", stream,
                        si->Config->SubjectsLen);
        else
            snprintf(subject, cap, "%s", si->Config->Subjects[0]);
    }
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return rc;
}

static bp_status subscribe(follower *f, jsCtx *js, const char *subject, natsSubscription **sub) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = f->cfg->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = f->applied_sseq + 1;
    jsErrCode jerr = 0;
    natsStatus ns = js_SubscribeSync(sub, js, subject, NULL, &so, &jerr);
    if (ns != NATS_OK) return bp_nats_err(BP_EIO, ns, jerr, "subscribe");
    return BP_OK;
}

static bp_status check_config(const bp_follow_config *cfg) {
    if (!cfg) return bp_err(BP_EINVAL, "bp_follow: cfg is NULL");
    BP_SIZE_CHECK("bp_follow", cfg, bp_follow_config, BP_FOLLOW_CONFIG_INIT);
    if (!cfg->url || !*cfg->url) return bp_err(BP_EINVAL, "url: missing (nats://HOST:PORT)");
    if (cfg->batch > 4096) return bp_err(BP_EINVAL, "batch: %u above 4096", cfg->batch);
    return bp_nats_check_stream("stream", cfg->stream);
}

/* The loop: messages in, settled now and then, the replica closed when idle. */
static bp_status run(follower *f, natsConnection *nc, jsCtx *js) {
    char subject[BP_SUBJECT_PREFIX_MAX + 8];
    uint64_t last = 0;
    bp_status rc;
    /* no server yet (it may be starting, or away): try again, with backoff, until stopped */
    uint32_t wait_ms = 50, max_ms = f->cfg->backoff_max_ms ? f->cfg->backoff_max_ms : 2000;
    for (;;) {
        rc = natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED
                 ? stream_info(js, f->cfg->stream, subject, sizeof subject, &last)
                 : bp_err(BP_EIO, "not connected to a NATS server (retrying)");
        if (rc != BP_EIO || stopped(f)) break;
        for (uint32_t slept = 0; slept < wait_ms && !stopped(f); slept += 10) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        wait_ms = wait_ms > max_ms / 2 ? max_ms : wait_ms * 2;
    }
    if (rc == BP_EIO && stopped(f)) rc = BP_OK; /* stopped before it could begin */
    if (stopped(f)) return rc;
    natsSubscription *sub = NULL;
    if (!rc) rc = subscribe(f, js, subject, &sub);
    uint32_t idle_ms = f->cfg->idle_close_ms ? f->cfg->idle_close_ms : 200;
    uint64_t idle_since = bp_pf_mono_us(), since_settle = 0;
    while (!rc && !stopped(f)) {
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, sub, WAIT_SLICE_MS);
        if (ns == NATS_OK) {
            jsMsgMetaData *md = NULL;
            ns = natsMsg_GetMetaData(&md, m);
            if (ns != NATS_OK) {
                natsMsg_Destroy(m);
                rc = bp_nats_err(BP_EIO, ns, 0, "message metadata");
                break;
            }
            uint64_t sseq = md->Sequence.Stream, pending = md->NumPending;
            jsMsgMetaData_Destroy(md);
            const char *anchors = NULL;
            if (!(rc = open_replica(f)))
                rc = natsMsgHeader_Get(m, BP_HDR_ANCHORS, &anchors) == NATS_OK && anchors
                         ? take_anchors(f, m, sseq)
                         : take(f, m, sseq);
            natsMsg_Destroy(m);
            idle_since = bp_pf_mono_us();
            if (!rc && ++since_settle >= APPLY_EVERY && !(rc = settle(f, true))) since_settle = 0;
            if (!rc && f->s && !bp_import_in_batch(f->imp) &&
                bp_pf_mono_us() - f->opened_at_us > HOLD_OPEN_MS * 1000u) {
                rc = close_replica(f); /* let readers in for a moment */
                struct timespec ts = {0, 20000000};
                nanosleep(&ts, NULL);
            }
            if (!rc && pending == 0 && f->cfg->until_caught_up && !f->n_win) break;
            continue;
        }
        if (ns != NATS_TIMEOUT) { /* the ordered consumer resets itself; give it a moment */
            if (ns == NATS_CONNECTION_CLOSED || ns == NATS_INVALID_SUBSCRIPTION) {
                rc = bp_nats_err(BP_EIO, ns, 0, "next message");
                break;
            }
        }
        if (f->s && !bp_import_in_batch(f->imp) &&
            bp_pf_mono_us() - idle_since >= (uint64_t)idle_ms * 1000) {
            rc = close_replica(f);
            since_settle = 0;
        }
        if (!rc && f->cfg->until_caught_up) {
            uint64_t newest;
            if (!stream_info(js, f->cfg->stream, NULL, 0, &newest) &&
                newest <= (f->last_sseq > f->applied_sseq ? f->last_sseq : f->applied_sseq))
                break; /* every message the stream holds is taken in */
        }
    }
    if (!rc && f->n_win)
        rc = bp_err(BP_ECORRUPT,
                    "the stream ends with a gap: the replica's next global_seq is %llu but %zu "
                    "later event(s) came (first at stream sequence %llu)",
                    (unsigned long long)f->next_seq, f->n_win, (unsigned long long)f->win[0].sseq);
    if (sub) { /* unsubscribing asks the server: not while it is away (it would wait 5 s) */
        if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
            natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    return rc;
}

bp_status bp_follow(bp_follow_report *out, const char *replica_dir, const bp_follow_config *cfg) {
    uint64_t t0 = bp_pf_mono_us();
    bp_follow_report rep = BP_FOLLOW_REPORT_INIT;
    if (out) {
        BP_SIZE_CHECK("bp_follow", out, bp_follow_report, BP_FOLLOW_REPORT_INIT);
        *out = rep;
    }
    if (!replica_dir || !*replica_dir) return bp_err(BP_EINVAL, "bp_follow: replica_dir is empty");
    bp_status rc = check_config(cfg);
    if (rc) return rc;
    follower f;
    memset(&f, 0, sizeof f);
    f.dir = replica_dir;
    f.cfg = cfg;
    f.rep = &rep;
    snprintf(f.ckdir, sizeof f.ckdir, "%s/follow", replica_dir);
    snprintf(f.ckname, sizeof f.ckname, "%s.ckpt", cfg->stream);
    f.win = malloc(REORDER_MAX * sizeof *f.win);
    if (!f.win) return bp_err(BP_ENOMEM, "bp_follow: out of memory");
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    rc = open_replica(&f); /* creates it, and takes its lock: one follower at a time */
    if (!rc) rc = read_ckpt(&f);
    if (!rc) rc = close_replica(&f);
    if (!rc) rc = bp_nats_connect(cfg->url, RECONNECT_MS, &nc, &js);
    if (!rc) rc = run(&f, nc, js);
    char msg[700] = "";
    if (rc) snprintf(msg, sizeof msg, "%s", bp_last_error());
    bp_status crc = close_replica(&f); /* what came before an error is kept */
    if (!rc) rc = crc;
    bp_nats_close(nc, js);
    for (size_t i = 0; i < f.n_win; i++)
        free(f.win[i].body);
    free(f.win);
    rep.applied = f.imported_before;
    rep.skipped = f.skipped_before;
    rep.stream_seq = f.applied_sseq;
    rep.global_seq = f.next_seq ? f.next_seq - 1 : 0;
    rep.duration_us = bp_pf_mono_us() - t0;
    if (out) *out = rep;
    if (msg[0]) return bp_err(rc, "follow %s: %s", replica_dir, msg);
    return rc;
}
