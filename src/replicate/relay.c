/*
 * The relay (replicate.h): a batch cursor worker, pipelined one batch deep (deliver_impl.h):
 * its handler publishes each batch of committed events to JetStream asynchronously and
 * returns once the server has acknowledged every event of the batch before it, so the next
 * batch is read and published while the acks of the last one come in; the worker moves
 * (and persists) its position past a batch only then. When a window is not fully
 * acknowledged in time (or a publish fails), everything in flight is forgotten and
 * published again from the position: Nats-Msg-Id = event id lets the server drop what it
 * stored already.
 */
#include "replicate/nats_util.h"

#include <stdio.h>
#include <stdlib.h>

#define RECONNECT_MS 100
#define RELAY_BATCH 1024       /* events published per window (two windows in flight) */
#define RELAY_CKPT_EVERY 16384 /* the checkpoint follows the acks at least this often */

/* A window: one batch handed over. seqs[0..n) are its global_seqs, increasing; acked[i]
 * marks those the server acknowledged (1: stored, 2: it had it already); acked_n of them,
 * dups of those duplicates. n == 0: free. */
typedef struct relay_win {
    uint64_t *seqs;
    uint8_t *acked;
    size_t n, acked_n, dups;
} relay_win;

/* Invariants: at most two windows are in flight: win[next] is free when the handler is
 * called (the worker thread alone reads and toggles next), win[!next] holds the batch
 * handed over last until it is vouched for. old[] are the windows in flight at the last
 * failure: an event they saw acknowledged is not published again (it is stored), and
 * counts once. The worker thread alone changes the windows' n and buffers (under mu).
 * mu guards the windows, failed, the counters and
 * last_error, which the ack callback (a libnats thread) writes too; cv is signalled when a
 * window completes or a publish fails. */
struct bp_relay {
    bp_store *s;
    bp_worker *w;
    natsConnection *nc;
    jsCtx *js;
    char stream[BP_STREAM_NAME_MAX + 1];
    char prefix[BP_SUBJECT_PREFIX_MAX + 1];
    char store_id[37];
    uint32_t ack_timeout_ms;
    bool stream_ready; /* the worker thread alone */
    bool async_sent;   /* the worker thread alone: a js_PublishMsgAsync was made */
    bp_buf body;       /* the worker thread alone */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    relay_win win[2], old[2];
    unsigned next;
    bool failed;
    uint64_t published, duplicates;
    char last_error[256];
    uint64_t anchors_sent; /* the worker thread alone: upto of the anchors this relay published */
};

static void set_error(bp_relay *r, const char *msg) {
    pthread_mutex_lock(&r->mu);
    snprintf(r->last_error, sizeof r->last_error, "%s", msg);
    pthread_mutex_unlock(&r->mu);
}

/* The index of seq in window w, or -1. [mu] */
static ptrdiff_t win_index(const relay_win *w, uint64_t seq) {
    if (!w->n || seq < w->seqs[0] || seq > w->seqs[w->n - 1]) return -1;
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->seqs[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->n && w->seqs[lo] == seq ? (ptrdiff_t)lo : -1;
}

/* Mark event i of window w acknowledged. [mu] */
static void win_ack(bp_relay *r, relay_win *w, size_t i, bool duplicate) {
    if (w->acked[i]) return;
    w->acked[i] = duplicate ? 2 : 1;
    w->dups += duplicate;
    if (++w->acked_n == w->n) pthread_cond_broadcast(&r->cv);
}

/* libnats calls this for every async publish: its ack, or its error. An ack or error of a
 * message no window holds (an attempt forgotten since) changes nothing. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    bp_relay *r = closure;
    const char *seqtext = NULL;
    if (msg && natsMsgHeader_Get(msg, BP_HDR_SEQ, &seqtext) == NATS_OK && seqtext) {
        uint64_t seq = strtoull(seqtext, NULL, 10);
        pthread_mutex_lock(&r->mu);
        for (int k = 0; k < 4; k++) {
            relay_win *w = k < 2 ? &r->win[k] : &r->old[k - 2];
            ptrdiff_t i = win_index(w, seq);
            if (i < 0) continue;
            if (pa) {
                win_ack(r, w, (size_t)i, pa->Duplicate);
            } else if (pae && k < 2) { /* the wait ends now: the worker publishes again */
                snprintf(r->last_error, sizeof r->last_error, "publish of global_seq %llu: %s%s%s",
                         (unsigned long long)seq, natsStatus_GetText(pae->Err),
                         pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
                r->failed = true;
                pthread_cond_broadcast(&r->cv);
            }
            break;
        }
        pthread_mutex_unlock(&r->mu);
    }
    natsMsg_Destroy(msg);
}

/* The stream exists (made with the subjects PREFIX.> when it did not). */
static bp_status ensure_stream(bp_relay *r) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, r->js, r->stream, NULL, &jerr);
    if (ns == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return BP_OK;
    }
    if (ns != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
        return bp_nats_err(BP_EIO, ns, jerr, "stream info");
    char subject[BP_SUBJECT_PREFIX_MAX + 3];
    snprintf(subject, sizeof subject, "%s.>", r->prefix);
    const char *subjects[] = {subject};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = r->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jerr = 0;
    ns = js_AddStream(&si, r->js, &sc, NULL, &jerr);
    if (ns != NATS_OK) return bp_nats_err(BP_EIO, ns, jerr, "create stream");
    jsStreamInfo_Destroy(si);
    return BP_OK;
}

/* One message for ev: the frame body, the subject PREFIX.KKKK and the headers. */
static bp_status make_msg(bp_relay *r, const bp_event *ev, natsMsg **out) {
    *out = NULL;
    bp_status rc = bp_read_body(r->s, ev->global_seq, &r->body);
    if (rc) return rc;
    char subject[BP_SUBJECT_PREFIX_MAX + 8];
    snprintf(subject, sizeof subject, "%s.%04x", r->prefix, ev->kind);
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subject, NULL, (const char *)r->body.data, (int)r->body.len);
    char id[37], hash[65], num[24], kind[8];
    char ent[3 * BP_COORD_MAX + 1], scope[3 * BP_COORD_MAX + 1];
    bp_id_format(&ev->event_id, id);
    bp_hash_format(&ev->event_hash, hash);
    snprintf(kind, sizeof kind, "0x%04x", ev->kind);
    bp_nats_hdr_encode(ev->entity, strlen(ev->entity), ent, sizeof ent);
    bp_nats_hdr_encode(ev->scope, strlen(ev->scope), scope, sizeof scope);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_MSG_ID, id);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_STORE, r->store_id);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_EVENT_ID, id);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_ENTITY, ent);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_SCOPE, scope);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_KIND, kind);
    snprintf(num, sizeof num, "%llu", (unsigned long long)ev->global_seq);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_SEQ, num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)ev->clock);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_CLOCK, num);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_HASH, hash);
    if (ns != NATS_OK) {
        natsMsg_Destroy(m);
        return bp_nats_err(BP_ENOMEM, ns, 0, "message");
    }
    *out = m;
    return BP_OK;
}

/* A batch from first_seq on that starts within the source's compacted range, or right after
 * it: the anchors record goes first (doc/FORMAT.md "Replication"), once per relay and range,
 * published and acknowledged before the batch (a follower starting there needs it). */
static bp_status publish_anchors(bp_relay *r, uint64_t first_seq) {
    bp_buf body = {0};
    uint64_t upto = 0;
    bp_status rc = bp_anchors_record(r->s, &body, &upto);
    if (rc == BP_DONE || (!rc && (first_seq > upto + 1 || upto == r->anchors_sent))) {
        bp_buf_free(&body);
        return BP_OK;
    }
    char subject[BP_SUBJECT_PREFIX_MAX + 16], id[96], num[24];
    snprintf(subject, sizeof subject, "%s.anchors", r->prefix);
    snprintf(id, sizeof id, "anchors-%s-%llu", r->store_id, (unsigned long long)upto);
    snprintf(num, sizeof num, "%llu", (unsigned long long)upto);
    natsMsg *m = NULL;
    natsStatus ns =
        rc ? NATS_OK : natsMsg_Create(&m, subject, NULL, (const char *)body.data, (int)body.len);
    if (!rc && ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_MSG_ID, id);
    if (!rc && ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_STORE, r->store_id);
    if (!rc && ns == NATS_OK) ns = natsMsgHeader_Set(m, BP_HDR_ANCHORS, num);
    if (!rc && ns != NATS_OK) rc = bp_nats_err(BP_ENOMEM, ns, 0, "anchors message");
    if (!rc) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = r->ack_timeout_ms;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        ns = js_PublishMsg(&pa, r->js, m, &po, &jerr);
        jsPubAck_Destroy(pa);
        if (ns != NATS_OK) rc = bp_nats_err(BP_EIO, ns, jerr, "publish of the anchors");
    }
    natsMsg_Destroy(m);
    bp_buf_free(&body);
    if (!rc) r->anchors_sent = upto;
    return rc;
}

/* Forget what is in flight (the worker hands it over again): drop what libnats still waits
 * for, and keep the windows as old[] (what they saw acknowledged is not published again). */
static void forget_pending(bp_relay *r) {
    natsMsgList pending; /* (libnats 3.4 crashes there before the first async publish) */
    if (r->async_sent && js_PublishAsyncGetPendingList(&pending, r->js) == NATS_OK)
        natsMsgList_Destroy(&pending);
    pthread_mutex_lock(&r->mu);
    for (int k = 0; k < 2; k++) {
        relay_win t = r->old[k];
        r->old[k] = r->win[k];
        r->win[k] = t;
        r->win[k].n = 0;
    }
    r->failed = false;
    pthread_mutex_unlock(&r->mu);
}

/* Did the windows of the last failure see seq acknowledged? 0: no, 1: stored, 2: it was
 * there already. [the worker thread] */
static uint8_t old_acked(bp_relay *r, uint64_t seq) {
    if (!r->old[0].n && !r->old[1].n) return 0; /* the worker thread alone changes n */
    uint8_t a = 0;
    pthread_mutex_lock(&r->mu);
    for (int k = 0; k < 2 && !a; k++) {
        ptrdiff_t i = win_index(&r->old[k], seq);
        if (i >= 0) a = r->old[k].acked[i];
    }
    pthread_mutex_unlock(&r->mu);
    return a;
}

/* Wait (up to ack_timeout_ms) until every event of window w is acknowledged, then count it
 * published and free it. BP_EIO when a publish failed or the time ran out. */
static bp_status win_wait(bp_relay *r, relay_win *w) {
    uint64_t deadline = bp_pf_mono_us() + (uint64_t)r->ack_timeout_ms * 1000;
    bp_status rc = BP_OK;
    pthread_mutex_lock(&r->mu);
    while (w->acked_n < w->n && !r->failed && bp_pf_mono_us() < deadline)
        bp_pf_cond_wait_until(&r->cv, &r->mu, deadline);
    if (r->failed)
        rc = bp_err(BP_EIO, "%s", r->last_error);
    else if (w->acked_n < w->n)
        rc = bp_err(BP_EIO, "%zu of %zu events acknowledged within %u ms", w->acked_n, w->n,
                    r->ack_timeout_ms);
    else {
        r->published += w->n;
        r->duplicates += w->dups;
        w->n = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Publish evs[0..n) (the worker's batch, possibly none): async, except within the compacted
 * range (one at a time, each stored before the next is sent: a follower takes the range's
 * seqs in stream order, a gap is a hole there). */
static bp_status publish(bp_relay *r, relay_win *w, const bp_event **evs, size_t n) {
    pthread_mutex_lock(&r->mu);
    for (int k = 0; k < 2; k++) /* the events after a failure are handed over again in order: */
        if (r->old[k].n && evs[0]->global_seq > r->old[k].seqs[r->old[k].n - 1])
            r->old[k].n = 0; /* one that is passed is done with */
    for (size_t i = 0; i < n; i++)
        w->seqs[i] = evs[i]->global_seq;
    memset(w->acked, 0, n);
    w->acked_n = w->dups = 0;
    w->n = n;
    pthread_mutex_unlock(&r->mu);
    uint64_t upto = bp_store_compacted_upto(r->s);
    bp_status rc = BP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t before = old_acked(r, evs[i]->global_seq);
        if (before) { /* acknowledged in an earlier attempt */
            pthread_mutex_lock(&r->mu);
            win_ack(r, w, i, before == 2);
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        natsMsg *m;
        if ((rc = make_msg(r, evs[i], &m))) break;
        if (evs[i]->global_seq <= upto) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = r->ack_timeout_ms;
            jsPubAck *pa = NULL;
            jsErrCode jerr = 0;
            natsStatus ns = js_PublishMsg(&pa, r->js, m, &po, &jerr);
            if (ns == NATS_OK) {
                pthread_mutex_lock(&r->mu);
                win_ack(r, w, i, pa && pa->Duplicate);
                pthread_mutex_unlock(&r->mu);
            }
            jsPubAck_Destroy(pa);
            natsMsg_Destroy(m);
            if (ns != NATS_OK) rc = bp_nats_err(BP_EIO, ns, jerr, "publish");
            continue;
        }
        r->async_sent = true;
        natsStatus ns = js_PublishMsgAsync(r->js, &m, NULL);
        natsMsg_Destroy(m); /* NULL when the library took it */
        if (ns != NATS_OK) rc = bp_nats_err(BP_EIO, ns, 0, "publish");
    }
    return rc;
}

/* The batch worker's handler: publish evs[0..n) (n == 0: none), then wait for every ack of
 * the batch handed over before (n == 0: of everything in flight). */
static bp_status publish_batch(void *ctx, const bp_event **evs, size_t n, uint32_t attempt) {
    bp_relay *r = ctx;
    (void)attempt; /* a failure forgot everything in flight: the batch is new to the windows */
    bp_status rc = BP_OK;
    relay_win *cur = &r->win[r->next], *prev = &r->win[!r->next];
    if (n) {
        if (natsConnection_Status(r->nc) != NATS_CONN_STATUS_CONNECTED) {
            rc = bp_err(BP_EIO, "not connected to a NATS server (retrying)");
            goto out; /* no API call that would sit out its timeout: a stop stays quick */
        }
        if (!r->stream_ready) {
            if ((rc = ensure_stream(r))) goto out;
            r->stream_ready = true;
        }
        if ((rc = publish_anchors(r, evs[0]->global_seq))) goto out;
        if ((rc = publish(r, cur, evs, n))) goto out;
    }
    if ((rc = win_wait(r, prev))) goto out;
    if (n)
        r->next = !r->next; /* cur is in flight now, prev free */
    else
        rc = win_wait(r, cur); /* free already: nothing to wait for */
out:
    if (rc) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        forget_pending(r);
        set_error(r, msg);
        r->stream_ready = r->stream_ready && rc != BP_EIO; /* ask again after a failure */
    }
    return rc;
}

static void relay_free(bp_relay *r) {
    if (!r) return;
    bp_nats_close(r->nc, r->js);
    bp_buf_free(&r->body);
    for (int k = 0; k < 2; k++) {
        free(r->win[k].acked);
        free(r->win[k].seqs);
        free(r->old[k].acked);
        free(r->old[k].seqs);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

bp_status bp_relay_start(bp_store *s, bp_relay **out, const bp_relay_config *cfg) {
    if (!out) return bp_err(BP_EINVAL, "bp_relay_start: out is NULL");
    *out = NULL;
    if (!s || !cfg) return bp_err(BP_EINVAL, "bp_relay_start: NULL argument");
    BP_SIZE_CHECK("bp_relay_start", cfg, bp_relay_config, BP_RELAY_CONFIG_INIT);
    bp_status rc = bp_nats_check_stream("stream", cfg->stream);
    if (rc) return rc;
    if (!cfg->url || !*cfg->url) return bp_err(BP_EINVAL, "url: missing (nats://HOST:PORT)");
    if (cfg->batch > 4096) return bp_err(BP_EINVAL, "batch: %u above 4096", cfg->batch);
    if (cfg->subject_prefix && (rc = bp_nats_check_prefix(cfg->subject_prefix))) return rc;
    if (bp_store_read_only(s))
        return bp_err(BP_EREADONLY, "%s: a relay keeps a checkpoint: open the store writable",
                      bp_store_dir(s));
    bp_relay *r = calloc(1, sizeof *r);
    if (!r) return bp_err(BP_ENOMEM, "bp_relay_start: out of memory");
    int ce = bp_pf_cond_init(&r->cv); /* waits with monotonic deadlines (win_wait) */
    if (ce) {
        free(r);
        return bp_err_sys(BP_ENOMEM, ce, "bp_relay_start: cannot create a condition variable");
    }
    pthread_mutex_init(&r->mu, NULL);
    r->s = s;
    snprintf(r->stream, sizeof r->stream, "%s", cfg->stream);
    if (cfg->subject_prefix)
        snprintf(r->prefix, sizeof r->prefix, "%s", cfg->subject_prefix);
    else
        snprintf(r->prefix, sizeof r->prefix, "batpak.%s", cfg->stream);
    r->ack_timeout_ms = cfg->ack_timeout_ms ? cfg->ack_timeout_ms : 5000;
    bp_id sid;
    bp_store_uuid(s, sid.b);
    bp_id_format(&sid, r->store_id);
    bp_worker_config wc = BP_WORKER_CONFIG_INIT;
    char ckid[80];
    if (cfg->checkpoint_id)
        snprintf(ckid, sizeof ckid, "%s", cfg->checkpoint_id);
    else
        snprintf(ckid, sizeof ckid, "relay.%s", cfg->stream);
    wc.checkpoint_id = ckid;
    wc.batch = cfg->batch ? cfg->batch : RELAY_BATCH;
    wc.checkpoint_every = RELAY_CKPT_EVERY;
    wc.backoff_ms = 50;
    wc.backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 2000;
    bool mem = true;
    for (int k = 0; k < 4; k++) {
        relay_win *w = k < 2 ? &r->win[k] : &r->old[k - 2];
        w->acked = calloc(wc.batch, 1);
        w->seqs = calloc(wc.batch, sizeof *w->seqs);
        mem = mem && w->acked && w->seqs;
    }
    if (!mem) {
        relay_free(r);
        return bp_err(BP_ENOMEM, "bp_relay_start: out of memory");
    }
    rc = bp_nats_connect(cfg->url, RECONNECT_MS, &r->nc, &r->js);
    if (!rc) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = r->ack_timeout_ms;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = r;
        jo.PublishAsync.MaxPending = 2 * (int64_t)wc.batch; /* two windows in flight */
        jsCtx_Destroy(r->js); /* again, with the async publish options */
        r->js = NULL;
        natsStatus ns = natsConnection_JetStream(&r->js, r->nc, &jo);
        if (ns != NATS_OK) rc = bp_nats_err(BP_EIO, ns, 0, "JetStream");
    }
    bp_region all = BP_REGION_INIT;
    if (!rc)
        rc = bp_worker_start_batch(s, cfg->region ? cfg->region : &all, publish_batch, r, NULL, &wc,
                                   &r->w);
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        relay_free(r);
        return bp_err(rc, "relay: %s", msg);
    }
    *out = r;
    return BP_OK;
}

bp_status bp_relay_stats_get(bp_relay *r, bp_relay_stats *out) {
    if (out) BP_SIZE_CHECK("bp_relay_stats_get", out, bp_relay_stats, BP_RELAY_STATS_INIT);
    if (out) BP_OUT_RESET(out, bp_relay_stats);
    if (!r || !out) return bp_err(BP_EINVAL, "bp_relay_stats_get: NULL argument");
    bp_worker_stats ws = BP_WORKER_STATS_INIT;
    if (r->w) bp_worker_stats_get(r->w, &ws);
    out->position = ws.position;
    out->lag_events = ws.lag_events;
    out->retries = ws.retries;
    out->running = ws.running;
    out->connected = natsConnection_Status(r->nc) == NATS_CONN_STATUS_CONNECTED;
    pthread_mutex_lock(&r->mu);
    out->published = r->published;
    out->duplicates = r->duplicates;
    snprintf(out->last_error, sizeof out->last_error, "%s", r->last_error);
    pthread_mutex_unlock(&r->mu);
    return BP_OK;
}

bp_status bp_relay_wait(bp_relay *r, uint64_t seq, uint32_t timeout_ms) {
    if (!r) return bp_err(BP_EINVAL, "bp_relay_wait: NULL relay");
    uint64_t deadline = bp_pf_mono_us() + (uint64_t)timeout_ms * 1000;
    for (;;) {
        bp_worker_stats ws = BP_WORKER_STATS_INIT;
        bp_worker_stats_get(r->w, &ws);
        if (ws.passed >= seq) return BP_OK;
        if (!ws.running) {
            bp_relay_stats st = BP_RELAY_STATS_INIT;
            bp_relay_stats_get(r, &st);
            return bp_err(BP_EIO, "relay stopped at global_seq %llu: %s",
                          (unsigned long long)ws.position, st.last_error);
        }
        if (bp_pf_mono_us() >= deadline) {
            bp_relay_stats st = BP_RELAY_STATS_INIT;
            bp_relay_stats_get(r, &st);
            return bp_err(BP_ETIMEDOUT, "relay at global_seq %llu after %u ms, short of %llu%s%s",
                          (unsigned long long)ws.position, timeout_ms, (unsigned long long)seq,
                          st.last_error[0] ? "; last error: " : "", st.last_error);
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

bp_status bp_relay_stop(bp_relay *r) {
    if (!r) return BP_OK;
    bp_status rc = bp_worker_stop(r->w);
    char msg[600];
    snprintf(msg, sizeof msg, "%s", bp_last_error());
    relay_free(r);
    return rc ? bp_err(rc, "%s", msg) : BP_OK;
}
