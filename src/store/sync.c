/* Durability: the group commit (one fdatasync for the appends waiting, led by one of them),
 * the flusher of BP_DURABLE_EVERY, publishing, and fail-stop (doc/GUIDE.md "Durability").
 * write.c writes the frames. */
#include "store/store_impl.h"
#include "store/piece.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void sync_done(bp_store *s);

uint64_t bp__group_wait_us = BP_GROUP_WAIT_US;

void bp__store_group(bp_store *s, uint32_t group_prev, bool *gathering, uint64_t *timeouts) {
    pthread_mutex_lock(&s->wmu);
    if (group_prev) s->group_prev = group_prev;
    if (gathering) *gathering = s->gathering;
    if (timeouts) *timeouts = s->gather_timeouts;
    pthread_mutex_unlock(&s->wmu);
}

bp_status bp_store_fail(bp_store *s, int status, int neg_errno, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char eb[BP_ERRNO_TEXT_MAX];
    if (!s->failed) {
        __atomic_store_n(&s->failed, status, __ATOMIC_RELEASE); /* head readers load it */
        snprintf(s->failed_msg, sizeof s->failed_msg, "%s%s%s", msg, neg_errno ? ": " : "",
                 neg_errno ? bp_errno_text(-neg_errno, eb) : "");
        sync_done(s);             /* durability waiters see the failure */
        bp_live_figures(s, true); /* and readers in other processes */
        bp_wake_waiters(s);       /* and head readers waiting for a publish (bp_entity_head) */
    }
    return bp_err(status, "%s", s->failed_msg);
}

const char *bp_failed_detail(const bp_store *s) {
    size_t n = strlen(s->dir);
    return strncmp(s->failed_msg, s->dir, n) == 0 && s->failed_msg[n] == ':' &&
                   s->failed_msg[n + 1] == ' '
               ? s->failed_msg + n + 2
               : s->failed_msg;
}

bp_status bp_failed_error(bp_store *s) {
    return bp_err(s->failed, "%s: store is fail-stopped after an earlier error (%s); reopen it",
                  s->dir, bp_failed_detail(s));
}

/* [w] Unsynced events start now (none were before): note the time the
 * EVERY ms bound counts from, and wake the flusher that keeps it. */
void bp_unsynced_start(bp_store *s) {
    s->unsynced_since_us = bp_pf_mono_us();
    if (s->flusher_running) pthread_cond_signal(&s->fcond);
}

/* [w] Publish everything up to seq (monotonic). */
void bp_publish(bp_store *s, uint64_t seq) {
    pthread_rwlock_wrlock(&s->ilock);
    uint64_t old = s->published;
    bool moved = seq > old;
    if (moved) __atomic_store_n(&s->published, seq, __ATOMIC_SEQ_CST);
    pthread_rwlock_unlock(&s->ilock);
    if (!moved) return;
    bp_live_publish(s, seq);
    if (s->publish_fn) s->publish_fn(s->publish_ctx, s, old + 1, seq);
    bp_publish_notify(s);
    bp_piece_maybe(s, false); /* (after the wake-ups: what readers open with next) */
}

/* [w] What may be published now: everything written, unless an append that
 * waits for durability is not yet synced. */
void bp_publish_ready(bp_store *s) {
    if (s->need_sync_upto <= s->synced_seq)
        bp_publish(s, s->written_seq);
    else
        bp_publish(s, s->synced_seq);
}

/* [w] held. A sync finished or the store failed: wake the waiters (they sleep on the
 * word sync_gen, not on wmu). The increment and the waiters' count of sleepers are both
 * sequentially consistent: a waiter that counted itself before this increment is seen
 * here, and one that counted itself after it sees the new value and does not sleep. */
static void sync_done(bp_store *s) {
    __atomic_fetch_add(&s->sync_gen, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&s->sync_sleepers, __ATOMIC_SEQ_CST)) bp_pf_word_wake_all(&s->sync_gen);
}

bp_status bp_flush_pending(bp_store *s) {
    if (s->failed) return bp_failed_error(s); /* its queue may have been dropped */
    if (!s->pending.len) return BP_OK;
    bp_segment *seg = &s->segs[s->n_segs - 1];
    size_t len = s->pending.len;
    s->pending.len = 0;
    int w = bp_pf_pwrite(&seg->f, s->pending.data, len, s->pending_off);
    if (w)
        return bp_store_fail(s, BP_EIO, w,
                             "%s: write of %zu bytes to segment %06u at offset %llu failed", s->dir,
                             len, seg->segno, (unsigned long long)s->pending_off);
    return BP_OK;
}

/* [w] The group a leader gathers is complete: as many appends as the previous fdatasync
 * covered (the threads that waited then are likely to append again), and none still
 * inside commit() about to write. A thread waiting for this group's sync before it can
 * append (a head read or a turn on an entity whose append is in the group) counts as one
 * of them: waiting for it would only delay the sync it waits for, to the deadline. */
static bool group_complete(const bp_store *s) {
    uint32_t waiting = __atomic_load_n(&s->head_waiting, __ATOMIC_ACQUIRE);
    return s->writes_total - s->writes_at_sync + waiting >= s->group_prev &&
           !__atomic_load_n(&s->arriving, __ATOMIC_ACQUIRE);
}

/* [w] An appender that counted itself arriving has written, or gives up: the leader stops
 * waiting for it, and one whose group is now complete is woken when wmu is released
 * (wmu_unlock), so that it does not wake only to wait for wmu. */
void bp_arrived(bp_store *s) {
    __atomic_fetch_sub(&s->arriving, 1, __ATOMIC_RELEASE);
    if (s->gathering && group_complete(s)) s->gather_wake = true;
}

void bp_head_wait_begin(bp_store *s) {
    pthread_mutex_lock(&s->wmu);
    __atomic_fetch_add(&s->head_waiting, 1, __ATOMIC_RELEASE);
    if (s->gathering && group_complete(s)) s->gather_wake = true;
    bp_wmu_unlock(s);
}

void bp_head_wait_end(bp_store *s) {
    __atomic_fetch_sub(&s->head_waiting, 1, __ATOMIC_RELEASE);
}

/* Release wmu, then wake the gathering leader if an appender completed its group. The leader
 * checks the group again under wmu, so a wake after the release is never lost. */
void bp_wmu_unlock(bp_store *s) {
    bool wake = s->gather_wake;
    s->gather_wake = false;
    pthread_mutex_unlock(&s->wmu);
    if (wake) pthread_cond_signal(&s->gcond);
}

/* [w] held on entry, NOT held on return. Wait until every event <= target is synced,
 * leading a group commit when no other thread is syncing. A waiter sleeps on sync_gen
 * without wmu and, when the sync covered its events, returns without taking wmu back:
 * a woken group does not queue behind the writers of the next one. */
bp_status bp_wait_durable_release(bp_store *s, uint64_t target) {
    if (target > s->need_sync_upto) s->need_sync_upto = target;
    while (s->synced_seq < target && !s->failed) {
        if (s->syncing) {
            /* the sync in flight bumps sync_gen when done (a leader bumps it only with wmu,
             * which is held here, so this is the value before it) */
            uint32_t gen = __atomic_load_n(&s->sync_gen, __ATOMIC_SEQ_CST);
            bp_wmu_unlock(s);
            __atomic_fetch_add(&s->sync_sleepers, 1, __ATOMIC_SEQ_CST);
            while (__atomic_load_n(&s->sync_gen, __ATOMIC_SEQ_CST) == gen)
                bp_pf_word_wait(&s->sync_gen, gen);
            __atomic_fetch_sub(&s->sync_sleepers, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&s->synced_seq, __ATOMIC_ACQUIRE) >= target) return BP_OK;
            pthread_mutex_lock(&s->wmu); /* not covered (written after that sync began) */
            continue;
        }
        s->syncing = true;
        /* Gather a group: as many appends as the previous fdatasync covered (the threads
         * that waited then are likely to append again), and every appender already inside
         * commit(), for at most BP_GROUP_WAIT_US. A lone appender never waits here. */
        uint64_t until = bp_pf_mono_us() + bp__group_wait_us;
        s->gathering = true;
        while (!group_complete(s) && bp_pf_mono_us() < until)
            bp_pf_cond_wait_until(&s->gcond, &s->wmu, until);
        s->gathering = false;
        s->gather_wake = false;
        if (!group_complete(s)) s->gather_timeouts++;
        uint32_t group = (uint32_t)(s->writes_total - s->writes_at_sync);
        s->writes_at_sync = s->writes_total;
        /* wmu was released while gathering: the store may have failed meanwhile (and a
         * failed flush empties the queue), so nothing below may count as synced; the flush
         * refuses on a failed store */
        if (bp_flush_pending(s)) { /* fail-stopped (and the waiters woken) */
            s->syncing = false;
            break;
        }
        uint64_t upto = s->written_seq;
        bp_segment *act = &s->segs[s->n_segs - 1];
        uint64_t group_bytes =
            act->size - (act->segno == s->sync_from_segno ? s->sync_from : BP_SEG_HEADER_SIZE);
        s->sync_from = act->size;
        s->sync_from_segno = act->segno;
        if (group_bytes <= BP_ZERO_GROUP_MAX) bp_segment_zero_ahead(s);
        bp_file f = act->f; /* a copy: segs[] may move while unlocked */
        pthread_mutex_unlock(&s->wmu);
        int rc = bp_pf_datasync(&f);
        pthread_mutex_lock(&s->wmu);
        s->syncing = false;
        bp_close_later_flush(s); /* descriptors of segments sealed during that sync */
        s->fsyncs++;
        s->group_prev = group;
        if (rc) {
            bp_store_fail(s, BP_EIO, rc, "%s: fdatasync of segment %06u failed", s->dir,
                          s->segs[s->n_segs - 1].segno); /* wakes the waiters */
            break;
        }
        if (upto > s->synced_seq) __atomic_store_n(&s->synced_seq, upto, __ATOMIC_RELEASE);
        s->unsynced = (uint32_t)(s->written_seq - s->synced_seq); /* written during the sync */
        if (s->unsynced) bp_unsynced_start(s);
        bp_publish_ready(s);
        sync_done(s);
    }
    bp_status rc = s->synced_seq >= target ? BP_OK
                                           : bp_err(BP_EIO, "%s: event not made durable: %s",
                                                    s->dir, bp_failed_detail(s));
    bp_wmu_unlock(s);
    return rc;
}

bp_status bp_sync_locked(bp_store *s) {
    if (s->failed) return bp_failed_error(s);
    bp_status rc = bp_wait_durable_release(s, s->written_seq);
    pthread_mutex_lock(&s->wmu);
    return rc;
}

/* The flusher: keeps the ms bound of BP_DURABLE_EVERY when appends stop. */
static void *flusher_main(void *arg) {
    bp_store *s = arg;
    pthread_mutex_lock(&s->wmu);
    while (!s->flusher_stop) {
        if (s->failed || !s->unsynced) {
            pthread_cond_wait(&s->fcond, &s->wmu); /* an append signals the first unsynced */
            continue;
        }
        uint64_t due = s->unsynced_since_us + (uint64_t)s->flush_ms * 1000u;
        if (bp_pf_mono_us() >= due) {
            (void)bp_sync_locked(s); /* a failure fail-stops the store: appends report it */
            continue;
        }
        bp_pf_cond_wait_until(&s->fcond, &s->wmu, due);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* [w] Make sure the flusher runs with a bound of at most ms. */
bp_status bp_flusher_want(bp_store *s, uint32_t ms) {
    if (s->flusher_running) {
        if (ms < s->flush_ms) {
            s->flush_ms = ms;
            pthread_cond_signal(&s->fcond);
        }
        return BP_OK;
    }
    s->flush_ms = ms;
    s->flusher_stop = false;
    int e = pthread_create(&s->flusher, NULL, flusher_main, s);
    if (e) return bp_err_sys(BP_ENOMEM, -e, "%s: cannot start the background sync thread", s->dir);
    s->flusher_running = true;
    return BP_OK;
}

void bp_flusher_stop(bp_store *s) {
    pthread_mutex_lock(&s->wmu);
    bool running = s->flusher_running;
    s->flusher_stop = true;
    s->flusher_running = false;
    pthread_cond_signal(&s->fcond);
    pthread_mutex_unlock(&s->wmu);
    if (running) pthread_join(s->flusher, NULL);
}

bp_status bp_store_sync(bp_store *s) {
    if (!s) return bp_err(BP_EINVAL, "bp_store_sync: NULL store");
    if (s->read_only) return BP_OK;
    pthread_mutex_lock(&s->wmu);
    bp_status rc = bp_sync_locked(s);
    if (!rc) bp_piece_maybe(s, true); /* (a writer about to rest leaves readers little to scan) */
    pthread_mutex_unlock(&s->wmu);
    return rc;
}
