/* Turns: fairness among compare-and-set writers of one entity (store.h, "Optimistic
 * concurrency"; GUIDE, "Optimistic concurrency: the retry loop").
 *
 * A single CAS append (bp_append_options.has_expected_clock, and so bp_commit) that fails
 * with BP_ECONFLICT makes its thread a holder of that entity's turn. While an entity has a
 * live holder, a thread that holds no turn on it waits before it reads the entity's head
 * (bp_entity_head) and before its own CAS append to it; holders go on. A holder gives its
 * turn up with its next successful append to the store (to any entity), or when it
 * conflicts on another entity of the store; a turn no holder acted on (read the head, tried
 * an append) for bp__turn_expire_us lapses, so a writer that gave up after a conflict
 * delays the others by at most that much, once.
 *
 * Why it bounds retries: turns are taken under wmu (the conflict is found there) and a
 * non-holder's CAS append checks them again under wmu before its CAS check, so after thread
 * T's first conflict only holders commit CAS appends to the entity until T does, and each of
 * them at most once (a holder that commits gives its turn up and waits like anyone else).
 * Every retry of T needs a commit by another writer in between: T's append needs at most as
 * many retries as there are other CAS writers on the entity. (Appends without an expected
 * clock take no turns and wait for none.)
 *
 * State: s->turns[0..n_turns) under pmu; n_turns is also loaded without pmu (atomic) so that
 * a store without conflicts pays one load per CAS append or head read. The key is a 64-bit
 * hash of the entity's name: a collision only makes a writer wait for a turn it did not
 * need. A thread's own turn is thread-local, named by the store handle's serial (unique per
 * open in the process) so that a closed handle's address reused by a new one is not
 * mistaken for it.
 */
#include "store/store_impl.h"
#include "bp_testing.h"

#include <stdlib.h>

uint64_t bp__turn_expire_us = 50000;

static uint64_t g_serial; /* atomic: the last serial given to a store handle */

static _Thread_local struct {
    uint64_t serial; /* 0: this thread holds no turn */
    uint64_t key;
} my;

void bp_turns_init(bp_store *s) {
    s->serial = __atomic_add_fetch(&g_serial, 1, __ATOMIC_RELAXED);
}

void bp_turns_free(bp_store *s) {
    free(s->turns);
    s->turns = NULL;
    s->n_turns = s->turns_cap = 0;
}

uint64_t bp_turn_key(const char *entity, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)entity[i]) * 0x100000001b3ull;
    return h;
}

static bool mine(const bp_store *s, uint64_t key) {
    return my.serial == s->serial && my.key == key;
}

/* [pmu] The entry of key, or NULL. An entry whose holders all lapsed is removed. */
static bp_turn *find(bp_store *s, uint64_t key, uint64_t now) {
    for (uint32_t i = 0; i < s->n_turns; i++) {
        bp_turn *t = &s->turns[i];
        if (t->key != key) continue;
        if (now - t->stamp_us < bp__turn_expire_us) return t;
        s->turns[i] = s->turns[s->n_turns - 1]; /* lapsed */
        __atomic_store_n(&s->n_turns, s->n_turns - 1, __ATOMIC_RELEASE);
        return NULL;
    }
    return NULL;
}

/* [pmu] Give up this thread's turn on s (it committed, or moves to another entity). */
static void give_up(bp_store *s) {
    uint64_t key = my.key;
    my.serial = 0;
    for (uint32_t i = 0; i < s->n_turns; i++) {
        bp_turn *t = &s->turns[i];
        if (t->key != key) continue;
        if (--t->holders == 0) {
            s->turns[i] = s->turns[s->n_turns - 1];
            __atomic_store_n(&s->n_turns, s->n_turns - 1, __ATOMIC_RELEASE);
        }
        pthread_cond_broadcast(&s->pcond);
        return;
    }
}

void bp_turn_lost(bp_store *s, uint64_t key) {
    uint64_t now = bp_pf_mono_us();
    pthread_mutex_lock(&s->pmu);
    if (my.serial == s->serial && my.key != key) give_up(s);
    bp_turn *t = find(s, key, now);
    if (!mine(s, key) || !t) {
        if (!t) {
            if (s->n_turns == s->turns_cap) {
                uint32_t cap = s->turns_cap ? 2 * s->turns_cap : 8;
                bp_turn *g = realloc(s->turns, cap * sizeof *g);
                if (!g) { /* no turn: only fairness is lost, never an append */
                    my.serial = 0;
                    pthread_mutex_unlock(&s->pmu);
                    return;
                }
                s->turns = g;
                s->turns_cap = cap;
            }
            t = &s->turns[s->n_turns];
            *t = (bp_turn){key, 0, now};
            __atomic_store_n(&s->n_turns, s->n_turns + 1, __ATOMIC_RELEASE);
        }
        t->holders++;
        my.serial = s->serial;
        my.key = key;
    }
    t->stamp_us = now;
    pthread_mutex_unlock(&s->pmu);
}

void bp_turn_done(bp_store *s) {
    if (my.serial != s->serial) return;
    pthread_mutex_lock(&s->pmu);
    give_up(s);
    pthread_mutex_unlock(&s->pmu);
}

bool bp_turn_blocked(bp_store *s, uint64_t key) {
    if (!__atomic_load_n(&s->n_turns, __ATOMIC_ACQUIRE)) return false;
    pthread_mutex_lock(&s->pmu);
    bp_turn *t = find(s, key, bp_pf_mono_us());
    bool blocked = t && !mine(s, key);
    pthread_mutex_unlock(&s->pmu);
    return blocked;
}

void bp_turn_wait(bp_store *s, uint64_t key) {
    if (!__atomic_load_n(&s->n_turns, __ATOMIC_ACQUIRE)) return;
    bool counted = false; /* as a thread that appends nothing before the holder's sync */
    pthread_mutex_lock(&s->pmu);
    for (;;) {
        uint64_t now = bp_pf_mono_us();
        bp_turn *t = find(s, key, now);
        if (!t) break;
        if (mine(s, key)) { /* a holder acting on its turn keeps it alive */
            t->stamp_us = now;
            break;
        }
        if (!counted && !s->read_only) { /* (wmu is taken before pmu, never after) */
            pthread_mutex_unlock(&s->pmu);
            bp_head_wait_begin(s);
            counted = true;
            pthread_mutex_lock(&s->pmu);
            continue;
        }
        bp_pf_cond_wait_until(&s->pcond, &s->pmu, t->stamp_us + bp__turn_expire_us);
    }
    pthread_mutex_unlock(&s->pmu);
    if (counted) bp_head_wait_end(s);
}
