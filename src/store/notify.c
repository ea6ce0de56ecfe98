/* Publish notifications: waiters (watchers, cursors, subscriptions) sleep on the store's
 * pcond until their condition holds; publish() wakes them only when some are waiting.
 * Dekker-style: a waiter increments pwaiters (seq_cst) and then tests its condition; a
 * publisher changes the state (seq_cst) and then reads pwaiters. One of them sees the other. */
#include "store/store_impl.h"

void bp_publish_notify(bp_store *s) {
    if (!__atomic_load_n(&s->pwaiters, __ATOMIC_SEQ_CST)) return;
    pthread_mutex_lock(&s->pmu);
    pthread_cond_broadcast(&s->pcond);
    pthread_mutex_unlock(&s->pmu);
}

bool bp_wait_until(bp_store *s, bool (*ready)(void *arg), void *arg, uint64_t deadline_us) {
    bp_follow_start(s); /* a read-only handle follows its writer from now on (live.c) */
    pthread_mutex_lock(&s->pmu);
    __atomic_fetch_add(&s->pwaiters, 1, __ATOMIC_SEQ_CST);
    bool ok;
    while (!(ok = ready(arg)) && bp_pf_mono_us() < deadline_us)
        bp_pf_cond_wait_until(&s->pcond, &s->pmu, deadline_us);
    __atomic_fetch_sub(&s->pwaiters, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&s->pmu);
    return ok;
}

void bp_wake_waiters(bp_store *s) {
    pthread_mutex_lock(&s->pmu);
    pthread_cond_broadcast(&s->pcond);
    pthread_mutex_unlock(&s->pmu);
}
