/* Non-blocking appends (bp_submit): a bounded queue of tickets and one thread
 * that commits them in order, group-committing the durable ones it takes together. */
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Invariants:
 *  - a ticket is referenced by its caller until bp_ticket_free and by the queue from
 *    submit until it is decided; refs counts both, the last release frees it.
 *  - done goes false -> true once (release store), after rc, msg and receipt are final;
 *    nothing of the ticket but refs changes after that. */
struct bp_ticket {
    struct bp_ticket *next; /* [q->mu] the queue */
    struct bp_submitq *q;   /* its store's queue: it outlives every undecided ticket */
    uint32_t refs;          /* atomic */
    bool done;              /* atomic */
    bp_status rc;
    char msg[BP_TICKET_MSG];
    bp_receipt receipt;
    bp_owned_item own; /* the append */
};

/* Most tickets the thread commits under one hold of the write lock. */
#define GROUP_MAX 256

/* Invariants: n tickets queued from head to tail (n <= cap), each not done, in submission
 * order; the thread runs from the first submit until stop is set and the queue is drained. */
typedef struct bp_submitq {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* [mu] the queue is not empty, or stop */
    pthread_cond_t space; /* [mu] the queue has room, or stop */
    pthread_cond_t done;  /* [mu] tickets were decided */
    bp_ticket *head, *tail;
    uint32_t n, cap;
    bool stop;
    pthread_t thread;
    /* the thread's scratch for one group */
    bp_ticket *group[GROUP_MAX];
    bp_batch_item items[GROUP_MAX];
    bp_receipt receipts[GROUP_MAX];
    bp_status rcs[GROUP_MAX];
    char msgs[GROUP_MAX][BP_TICKET_MSG];
} bp_submitq;

static void ticket_release(bp_ticket *t) {
    if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL)) return;
    bp_owned_item_free(&t->own);
    free(t);
}

static void *submit_main(void *arg) {
    bp_store *s = arg;
    bp_submitq *q = s->sq;
    bp_ticket **group = q->group;
    bp_batch_item *items = q->items;
    bp_receipt *receipts = q->receipts;
    bp_status *rcs = q->rcs;
    char(*msgs)[BP_TICKET_MSG] = q->msgs;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->n && !q->stop)
            pthread_cond_wait(&q->work, &q->mu);
        if (!q->n) break; /* stopping, and drained */
        size_t n = 0;
        while (q->head && n < GROUP_MAX) {
            group[n] = q->head;
            q->head = q->head->next;
            items[n] = group[n]->own.item;
            n++;
        }
        if (!q->head) q->tail = NULL;
        q->n -= (uint32_t)n;
        pthread_cond_broadcast(&q->space);
        pthread_mutex_unlock(&q->mu);

        bp_commit_each(s, items, n, receipts, rcs, msgs);

        for (size_t i = 0; i < n; i++) {
            bp_ticket *t = group[i];
            t->rc = rcs[i];
            if (rcs[i])
                memcpy(t->msg, msgs[i], BP_TICKET_MSG);
            else
                t->receipt = receipts[i];
        }
        pthread_mutex_lock(&q->mu);
        for (size_t i = 0; i < n; i++)
            __atomic_store_n(&group[i]->done, true, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&q->done);
        pthread_mutex_unlock(&q->mu);
        for (size_t i = 0; i < n; i++)
            ticket_release(group[i]);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* The store's queue, started on first use. */
static bp_status submitq_get(bp_store *s, bp_submitq **out) {
    bp_submitq *q = __atomic_load_n(&s->sq, __ATOMIC_ACQUIRE);
    if (q) {
        *out = q;
        return BP_OK;
    }
    bp_status rc = BP_OK;
    pthread_mutex_lock(&s->wmu);
    if (!(q = s->sq)) {
        q = calloc(1, sizeof *q);
        if (!q) {
            rc = bp_err(BP_ENOMEM, "submit: out of memory");
            goto out;
        }
        pthread_mutex_init(&q->mu, NULL);
        pthread_cond_init(&q->work, NULL);
        pthread_cond_init(&q->space, NULL);
        if (bp_pf_cond_init(&q->done)) pthread_cond_init(&q->done, NULL);
        q->cap = s->opts.submit_queue ? s->opts.submit_queue : BP_SUBMIT_QUEUE_DEFAULT;
        __atomic_store_n(&s->sq, q, __ATOMIC_RELEASE);
        int e = pthread_create(&q->thread, NULL, submit_main, s);
        if (e) {
            __atomic_store_n(&s->sq, NULL, __ATOMIC_RELEASE);
            pthread_mutex_destroy(&q->mu);
            pthread_cond_destroy(&q->work);
            pthread_cond_destroy(&q->space);
            pthread_cond_destroy(&q->done);
            free(q);
            q = NULL;
            rc = bp_err_sys(BP_ENOMEM, -e, "%s: cannot start the submit thread", s->dir);
        }
    }
out:
    pthread_mutex_unlock(&s->wmu);
    *out = q;
    return rc;
}

void bp_submit_stop(bp_store *s) {
    bp_submitq *q = s->sq;
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    pthread_cond_broadcast(&q->work);
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->space);
    pthread_cond_destroy(&q->done);
    free(q);
    s->sq = NULL;
}

/* A ticket holding its own copy of the append. */
static bp_status ticket_new(bp_store *s, const bp_batch_item *it, bp_ticket **out) {
    bp_ticket *t = calloc(1, sizeof *t);
    if (!t || bp_owned_item_init(&t->own, it)) {
        free(t);
        return bp_err(BP_ENOMEM, "%s: submit: out of memory for a ticket", s->dir);
    }
    t->refs = 2; /* the caller and the queue */
    *out = t;
    return BP_OK;
}

static bp_status submit(bp_store *s, bp_ticket **out, bool wait, const char *entity,
                        const char *scope, uint16_t kind, const void *payload, size_t len,
                        const bp_append_options *opts) {
    const char *fn = wait ? "bp_submit" : "bp_try_submit";
    if (!out) return bp_err(BP_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!s) return bp_err(BP_EINVAL, "%s: NULL store", fn);
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    bp_batch_item it = {entity, scope, kind, payload, len, opts};
    bp_status rc = bp_validate_item(s, &it, false, 0, false);
    if (rc) return rc;
    bp_submitq *q;
    if ((rc = submitq_get(s, &q))) return rc;
    bp_ticket *t = NULL;
    if ((rc = ticket_new(s, &it, &t))) return rc;
    pthread_mutex_lock(&q->mu);
    while (q->n >= q->cap && wait && !q->stop)
        pthread_cond_wait(&q->space, &q->mu);
    if (q->n >= q->cap || q->stop) {
        bool stop = q->stop;
        pthread_mutex_unlock(&q->mu);
        bp_owned_item_free(&t->own);
        free(t);
        if (stop) return bp_err(BP_EINVAL, "%s: %s: the store is closing", fn, s->dir);
        return bp_err(BP_EBUSY, "%s: %s: the submit queue is full (%u appends waiting)", fn, s->dir,
                      q->cap);
    }
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->n++;
    t->q = q;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    *out = t;
    return BP_OK;
}

bp_status bp_submit(bp_store *s, bp_ticket **out, const char *entity, const char *scope,
                    uint16_t kind, const void *payload, size_t len, const bp_append_options *opts) {
    return submit(s, out, true, entity, scope, kind, payload, len, opts);
}

bp_status bp_try_submit(bp_store *s, bp_ticket **out, const char *entity, const char *scope,
                        uint16_t kind, const void *payload, size_t len,
                        const bp_append_options *opts) {
    return submit(s, out, false, entity, scope, kind, payload, len, opts);
}

bool bp_ticket_poll(const bp_ticket *t) {
    return t && __atomic_load_n(&t->done, __ATOMIC_ACQUIRE);
}

static bp_status ticket_result(bp_ticket *t, bp_receipt *receipt) {
    if (t->rc) return bp_err(t->rc, "%s", t->msg);
    if (receipt) *receipt = t->receipt;
    return BP_OK;
}

bp_status bp_ticket_wait(bp_ticket *t, bp_receipt *receipt, uint32_t timeout_ms) {
    if (!t) return bp_err(BP_EINVAL, "bp_ticket_wait: NULL ticket");
    if (receipt) BP_SIZE_CHECK("bp_ticket_wait", receipt, bp_receipt, BP_RECEIPT_INIT);
    if (bp_ticket_poll(t)) return ticket_result(t, receipt);
    if (!timeout_ms) return bp_err(BP_ETIMEDOUT, "bp_ticket_wait: the append is still queued");
    bp_submitq *q = t->q;
    uint64_t deadline =
        timeout_ms == BP_WAIT_FOREVER ? UINT64_MAX : bp_pf_mono_us() + timeout_ms * 1000ull;
    pthread_mutex_lock(&q->mu);
    while (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE)) {
        if (deadline == UINT64_MAX) {
            pthread_cond_wait(&q->done, &q->mu);
        } else {
            if (bp_pf_mono_us() >= deadline) break;
            bp_pf_cond_wait_until(&q->done, &q->mu, deadline);
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (!bp_ticket_poll(t))
        return bp_err(BP_ETIMEDOUT, "bp_ticket_wait: the append is still queued after %u ms",
                      timeout_ms);
    return ticket_result(t, receipt);
}

void bp_ticket_free(bp_ticket *t) {
    if (t) ticket_release(t);
}

void bp_submit_depth(bp_store *s, uint32_t *queued, uint32_t *capacity) {
    bp_submitq *q = __atomic_load_n(&s->sq, __ATOMIC_ACQUIRE);
    *queued = 0;
    *capacity = s->opts.submit_queue ? s->opts.submit_queue : BP_SUBMIT_QUEUE_DEFAULT;
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    *queued = q->n;
    pthread_mutex_unlock(&q->mu);
}

/* ------------------------------------------------------ visibility fences */

/* Invariants (under mu): while open, tickets[0..n) are the staged appends in order, each
 * validated, not done, referenced by the fence; once closed, n == 0 and nothing is staged
 * again. s is NULL after the store closed (it cancelled the fence). The fence is on
 * s->fences [s->pmu] while s is set. */
struct bp_fence {
    pthread_mutex_t mu;
    bp_store *s;
    bp_submitq *q; /* the tickets' wait queue */
    bool open;
    bp_ticket **tickets;
    size_t n, cap;
    struct bp_fence *next; /* [s->pmu] */
};

bp_status bp_fence_begin(bp_store *s, bp_fence **out) {
    if (!out) return bp_err(BP_EINVAL, "bp_fence_begin: out is NULL");
    *out = NULL;
    if (!s) return bp_err(BP_EINVAL, "bp_fence_begin: NULL store");
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    bp_submitq *q;
    bp_status rc = submitq_get(s, &q);
    if (rc) return rc;
    bp_fence *f = calloc(1, sizeof *f);
    if (!f) return bp_err(BP_ENOMEM, "%s: bp_fence_begin: out of memory", s->dir);
    pthread_mutex_init(&f->mu, NULL);
    f->s = s;
    f->q = q;
    f->open = true;
    pthread_mutex_lock(&s->pmu);
    f->next = s->fences;
    s->fences = f;
    pthread_mutex_unlock(&s->pmu);
    *out = f;
    return BP_OK;
}

/* [f->mu] The error of a call on a fence that is closed. */
static bp_status fence_closed(const bp_fence *f, const char *fn) {
    return bp_err(BP_EINVAL, "%s: the fence is already %s", fn,
                  f->s ? "committed or cancelled" : "cancelled (the store was closed)");
}

bp_status bp_fence_append(bp_fence *f, bp_ticket **out, const char *entity, const char *scope,
                          uint16_t kind, const void *payload, size_t len,
                          const bp_append_options *opts) {
    if (!out) return bp_err(BP_EINVAL, "bp_fence_append: out is NULL");
    *out = NULL;
    if (!f) return bp_err(BP_EINVAL, "bp_fence_append: NULL fence");
    bp_status rc = BP_OK;
    pthread_mutex_lock(&f->mu);
    if (!f->open) {
        rc = fence_closed(f, "bp_fence_append");
        goto out;
    }
    if (f->n >= BP_BATCH_MAX) {
        rc = bp_err(BP_ETOOBIG, "%s: fence: %zu appends staged already, the limit of a batch",
                    f->s->dir, f->n);
        goto out;
    }
    bp_batch_item it = {entity, scope, kind, payload, len, opts};
    if ((rc = bp_validate_item(f->s, &it, false, f->n, true))) goto out;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        bp_ticket **t = realloc(f->tickets, cap * sizeof *t);
        if (!t) {
            rc = bp_err(BP_ENOMEM, "%s: fence: out of memory", f->s->dir);
            goto out;
        }
        f->tickets = t;
        f->cap = cap;
    }
    bp_ticket *t;
    if ((rc = ticket_new(f->s, &it, &t))) goto out;
    t->q = f->q;
    f->tickets[f->n++] = t; /* refs: the caller and the fence */
    *out = t;
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

size_t bp_fence_len(const bp_fence *f) {
    if (!f) return 0;
    bp_fence *m = (bp_fence *)f; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* [f->mu] Decide every staged ticket (receipts[i] on success, else rc with msg) and close
 * the fence. */
static void fence_decide(bp_fence *f, bp_status rc, const char *msg, const bp_receipt *receipts) {
    for (size_t i = 0; i < f->n; i++) {
        bp_ticket *t = f->tickets[i];
        t->rc = rc;
        if (rc)
            snprintf(t->msg, BP_TICKET_MSG, "%s", msg);
        else
            t->receipt = receipts[i];
    }
    pthread_mutex_lock(&f->q->mu);
    for (size_t i = 0; i < f->n; i++)
        __atomic_store_n(&f->tickets[i]->done, true, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&f->q->done);
    pthread_mutex_unlock(&f->q->mu);
    for (size_t i = 0; i < f->n; i++)
        ticket_release(f->tickets[i]);
    f->n = 0;
    f->open = false;
}

/* [f->mu] Cancel the open fence: its tickets fail with BP_ECANCELED saying why. */
static void fence_cancel(bp_fence *f, const char *why) {
    char msg[BP_TICKET_MSG];
    snprintf(msg, sizeof msg, "%s: the visibility fence %s", f->s->dir, why);
    fence_decide(f, BP_ECANCELED, msg, NULL);
}

bp_status bp_fence_commit(bp_fence *f) {
    if (!f) return bp_err(BP_EINVAL, "bp_fence_commit: NULL fence");
    pthread_mutex_lock(&f->mu);
    bp_status rc = BP_OK;
    if (!f->open) {
        rc = fence_closed(f, "bp_fence_commit");
        goto out;
    }
    bp_batch_item *items = malloc((f->n ? f->n : 1) * sizeof *items);
    bp_receipt *receipts = malloc((f->n ? f->n : 1) * sizeof *receipts);
    if (!items || !receipts) {
        free(items);
        free(receipts);
        rc = bp_err(BP_ENOMEM, "%s: fence: out of memory committing %zu appends", f->s->dir, f->n);
        goto out; /* still open: commit again or cancel */
    }
    for (size_t i = 0; i < f->n; i++)
        items[i] = f->tickets[i]->own.item;
    receipts[0].struct_size = sizeof *receipts; /* the stride */
    rc = bp_append_batch(f->s, receipts, items, f->n);
    if (rc) {
        char msg[BP_TICKET_MSG];
        snprintf(msg, sizeof msg, "fence commit failed: %s", bp_last_error());
        fence_decide(f, rc, msg, NULL);
        rc = bp_err(rc, "%s", msg);
    } else {
        fence_decide(f, BP_OK, NULL, receipts);
    }
    free(items);
    free(receipts);
out:
    pthread_mutex_unlock(&f->mu);
    return rc;
}

bp_status bp_fence_cancel(bp_fence *f) {
    if (!f) return bp_err(BP_EINVAL, "bp_fence_cancel: NULL fence");
    pthread_mutex_lock(&f->mu);
    bp_status rc = BP_OK;
    if (f->open) {
        fence_cancel(f, "was cancelled");
    } else {
        rc = fence_closed(f, "bp_fence_cancel");
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void bp_fence_cancel_all(bp_store *s) {
    /* take the list first: a fence's lock is taken before pmu elsewhere (commit -> publish) */
    pthread_mutex_lock(&s->pmu);
    bp_fence *list = s->fences;
    s->fences = NULL;
    pthread_mutex_unlock(&s->pmu);
    for (bp_fence *f = list, *next; f; f = next) {
        next = f->next;
        pthread_mutex_lock(&f->mu);
        if (f->open) fence_cancel(f, "was open when the store was closed");
        f->s = NULL;
        f->q = NULL;
        f->next = NULL;
        pthread_mutex_unlock(&f->mu);
    }
}

void bp_fence_free(bp_fence *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    if (f->open) fence_cancel(f, "was freed uncommitted");
    bp_store *s = f->s;
    pthread_mutex_unlock(&f->mu);
    if (s) { /* the store is open: take the fence off its list */
        pthread_mutex_lock(&s->pmu);
        for (bp_fence **p = &s->fences; *p; p = &(*p)->next)
            if (*p == f) {
                *p = f->next;
                break;
            }
        pthread_mutex_unlock(&s->pmu);
    }
    pthread_mutex_destroy(&f->mu);
    free(f->tickets);
    free(f);
}
