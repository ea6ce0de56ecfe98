/*
 * Projections: the fold, the per-store incremental cache (LRU, bounded), and
 * persistent snapshots (DIR/projections/NAME.vVERSION/HASH.snap).
 */
#include "typed/typed_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define STATE_MAX (16u << 20)
#define SNAPSHOT_EVERY_DEFAULT 1024u
#define FOLD_CHUNK 64

/* ------------------------------------------------------------------ cache */

/* One cached state. Invariants: in the hash chain of bucket hash & (tcap-1)
 * and in the LRU list exactly while cached; clock <= the entity's published
 * head; the state is the fold of events 1..clock; snap_clock <= clock is the
 * clock of the newest snapshot written or loaded for it (persist only). */
typedef struct pc_entry {
    struct pc_entry *hnext, *prev, *next;
    uint64_t hash;
    uint32_t version;
    size_t state_size;
    uint64_t clock, checked_us, snap_clock;
    bool persist;
    uint32_t snapshot_every;
    char *name, *entity; /* inside this allocation */
    size_t bytes;        /* the whole allocation */
    uint8_t *state;      /* inside this allocation */
} pc_entry;

struct bp_projcache {
    pthread_mutex_t mu;
    pthread_mutex_t snap_mu; /* serialises snapshot file writes */
    pc_entry **tab;
    size_t tcap, n;
    size_t bytes, limit;
    pc_entry lru; /* sentinel: lru.next is the most recently used */
    bp_projection_cache_stats st;
};

bp_status bp_projcache_new(bp_projcache **out) {
    bp_projcache *c = calloc(1, sizeof *c);
    if (!c) return bp_err(BP_ENOMEM, "projection cache: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->snap_mu, NULL);
    c->lru.next = c->lru.prev = &c->lru;
    c->limit = BP_PROJECTION_CACHE_DEFAULT;
    *out = c;
    return BP_OK;
}

void bp_projcache_free(bp_projcache *c) {
    if (!c) return;
    for (pc_entry *e = c->lru.next, *nx; e != &c->lru; e = nx) {
        nx = e->next;
        free(e);
    }
    free(c->tab);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->snap_mu);
    free(c);
}

static uint64_t key_hash(const char *name, uint32_t version, size_t state_size,
                         const char *entity) {
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    h = (h ^ version) * 1099511628211u;
    h = (h ^ state_size) * 1099511628211u;
    for (const char *p = entity; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    return h;
}

/* [mu] */
static pc_entry *pc_find(bp_projcache *c, uint64_t h, const bp_projection *p, const char *entity) {
    if (!c->tcap) return NULL;
    for (pc_entry *e = c->tab[h & (c->tcap - 1)]; e; e = e->hnext)
        if (e->hash == h && e->version == p->version && e->state_size == p->state_size &&
            strcmp(e->name, p->name) == 0 && strcmp(e->entity, entity) == 0)
            return e;
    return NULL;
}

static void lru_unlink(pc_entry *e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_front(bp_projcache *c, pc_entry *e) {
    e->next = c->lru.next;
    e->prev = &c->lru;
    c->lru.next->prev = e;
    c->lru.next = e;
}

/* [mu] Remove e from the table and the list (not freed). */
static void pc_remove(bp_projcache *c, pc_entry *e) {
    pc_entry **pp = &c->tab[e->hash & (c->tcap - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    c->n--;
    c->bytes -= e->bytes;
}

/* [mu] Evict least recently used entries until bytes <= limit. Returns the evicted list
 * (linked by hnext) so that the caller can snapshot and free them outside the lock. */
static pc_entry *pc_shrink(bp_projcache *c) {
    pc_entry *out = NULL;
    while (c->bytes > c->limit && c->lru.prev != &c->lru) {
        pc_entry *e = c->lru.prev;
        pc_remove(c, e);
        c->st.evictions++;
        e->hnext = out;
        out = e;
    }
    return out;
}

/* [mu] Grow the table to keep load <= 1. false on OOM (the table stays usable). */
static bool pc_grow(bp_projcache *c) {
    if (c->n < c->tcap) return true;
    size_t ncap = c->tcap ? c->tcap * 2 : 64;
    pc_entry **nt = calloc(ncap, sizeof *nt);
    if (!nt) return c->tcap > 0;
    for (size_t i = 0; i < c->tcap; i++)
        for (pc_entry *e = c->tab[i], *nx; e; e = nx) {
            nx = e->hnext;
            e->hnext = nt[e->hash & (ncap - 1)];
            nt[e->hash & (ncap - 1)] = e;
        }
    free(c->tab);
    c->tab = nt;
    c->tcap = ncap;
    return true;
}

/* ------------------------------------------------------------ validation */

bp_status bp_projection_check(const bp_projection *p, const char *entity) {
    if (!p) return bp_err(BP_EINVAL, "projection: NULL");
    BP_SIZE_CHECK("projection", p, bp_projection, BP_PROJECTION_INIT);
    bp_status nrc = bp_name_validate("projection name", p->name);
    if (nrc) return nrc;
    if (p->state_size == 0 || p->state_size > STATE_MAX)
        return bp_err(BP_EINVAL, "projection '%s': state_size %zu out of range 1..%u", p->name,
                      p->state_size, STATE_MAX);
    if (!p->apply) return bp_err(BP_EINVAL, "projection '%s': apply is NULL", p->name);
    if ((p->n_types && !p->types) || (p->n_kinds && !p->kinds))
        return bp_err(BP_EINVAL, "projection '%s': a kind list is NULL", p->name);
    for (size_t i = 0; i < p->n_types; i++) {
        bp_status rc = bp_type_check(p->types[i]);
        if (rc) return rc;
    }
    return bp_coord_validate("entity", entity);
}

/* The type p decodes kind with, or NULL; *wanted says whether p reads kind at all. */
static const bp_type *kind_type(const bp_projection *p, uint16_t kind, bool *wanted) {
    for (size_t i = 0; i < p->n_types; i++)
        if (p->types[i]->kind == kind) {
            *wanted = true;
            return p->types[i];
        }
    *wanted = p->n_types == 0 && p->n_kinds == 0;
    for (size_t i = 0; i < p->n_kinds && !*wanted; i++)
        *wanted = p->kinds[i] == kind;
    return NULL;
}

static void init_state(const bp_projection *p, void *state) {
    memset(state, 0, p->state_size);
    if (p->init) p->init(p->ctx, state);
}

/* ------------------------------------------------------------------ index */

/* The entity's id, published head clock and base (the clock its compacted-away prefix ends
 * at: a fold starts after it); id -1 and clocks 0 when unknown. */
static void entity_head(bp_store *s, const char *entity, int64_t *eid, uint64_t *clock,
                        uint64_t *base) {
    bp_entity_view v;
    bp_store_entity(s, entity, strlen(entity), &v);
    *eid = v.eid;
    *clock = v.clock;
    *base = v.base;
}

/* ------------------------------------------------------------------- fold */

/* Fold the entity's events with clocks from+1..to into state. */
static bp_status fold(bp_store *s, const bp_projection *p, int64_t eid, uint64_t from, uint64_t to,
                      void *state, uint64_t *applied) {
    size_t vsize = 0;
    for (size_t i = 0; i < p->n_types; i++)
        if (p->types[i]->size > vsize) vsize = p->types[i]->size;
    void *val = vsize ? malloc(vsize) : NULL;
    bp_owned_event *oe = malloc(sizeof *oe);
    if ((vsize && !val) || !oe) {
        free(val);
        free(oe);
        return bp_err(BP_ENOMEM, "project '%s': out of memory", p->name);
    }
    oe->frame = (bp_buf){0};
    oe->plain = (bp_buf){0};
    oe->hold = NULL; /* it keeps the frame's bytes while apply reads them */
    bp_status rc = BP_OK;
    uint64_t slots[FOLD_CHUNK];
    uint16_t kinds[FOLD_CHUNK];
    for (uint64_t c = from; c < to && !rc;) {
        size_t k = 0, max = to - c < FOLD_CHUNK ? (size_t)(to - c) : FOLD_CHUNK;
        bool compacted = bp_store_entity_slots(s, eid, c, slots, kinds, max, &k) != BP_OK || !k;
        for (size_t i = 0; i < k && !rc && !compacted; i++) {
            bool wanted;
            const bp_type *t = kind_type(p, kinds[i], &wanted);
            if (!wanted) continue;
            bp_slot sl = {.ev = oe};
            rc = bp_slot_read(s, slots[i], BP_SLOT_EVENT, &sl);
            compacted = rc == BP_ENOTFOUND; /* a hole now */
            if (rc) break;
            if (t && (rc = bp_event_decode_checked(s, &oe->ev, t, val))) break;
            bp_err_clear(); /* what apply says, if it fails, and nothing older */
            rc = p->apply(p->ctx, state, &oe->ev, t ? val : NULL);
            if (rc > 0) rc = BP_EINVAL; /* apply must return BP_OK or an error */
            if (rc) {
                char msg[400];
                snprintf(msg, sizeof msg, "%s", bp_last_error());
                rc = bp_err(rc, "project '%s' on %s: apply failed at clock %llu%s%s", p->name,
                            oe->ev.entity, (unsigned long long)oe->ev.clock, msg[0] ? ": " : "",
                            msg);
                break;
            }
            (*applied)++;
        }
        if (compacted) /* a compaction removed events this fold was about to read */
            rc = bp_err(BP_ECONFLICT,
                        "project '%s': the entity was compacted while it was folded; try again",
                        p->name);
        c += k;
    }
    bp_owned_event_clear(oe);
    free(oe);
    free(val);
    return rc;
}

/* -------------------------------------------------------------- snapshots */

/* The snapshot file name of entity (the same in every projection's folder). */
static void snap_file(const char *entity, char *file, size_t fn) {
    uint8_t h[32];
    bp_blake3(entity, strlen(entity), h);
    char hex[65];
    bp_hex_encode(h, 16, hex);
    snprintf(file, fn, "%s.snap", hex);
}

static void snap_paths(bp_store *s, const char *name, uint32_t version, const char *entity,
                       char *dir, size_t dn, char *file, size_t fn) {
    snprintf(dir, dn, "%s/projections/%s.v%u", bp_store_dir(s), name, version);
    snap_file(entity, file, fn);
}

bp_status bp_projection_forget(bp_store *s, const char *entity) {
    bp_projcache *c = bp_typed_of(s)->pc;
    pc_entry *gone = NULL;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->tcap; i++)
        for (pc_entry *e = c->tab[i], *next; e; e = next) {
            next = e->hnext;
            if (strcmp(e->entity, entity) != 0) continue;
            pc_remove(c, e);
            e->hnext = gone;
            gone = e;
        }
    pthread_mutex_unlock(&c->mu);
    for (pc_entry *e = gone, *next; e; e = next) {
        next = e->hnext;
        bp_wipe(e->state, e->state_size);
        free(e);
    }
    char root[4096], dir[4096], file[64], path[4200];
    snprintf(root, sizeof root, "%s/projections", bp_store_dir(s));
    snap_file(entity, file, sizeof file);
    char **names;
    size_t n;
    int e = bp_pf_list(root, "", &names, &n);
    if (e == -ENOENT) return BP_OK;
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot list the projection snapshots", root);
    bp_status rc = BP_OK;
    pthread_mutex_lock(&c->snap_mu);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!strcmp(names[i], ".") || !strcmp(names[i], "..")) continue;
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        int u = bp_pf_unlink(path);
        if (!u) u = bp_pf_fsync_dir(bp_store_fault(s), dir);
        if (u && u != -ENOENT && u != -ENOTDIR)
            rc = bp_err_sys(BP_EIO, u, "%s: cannot remove the projection snapshot", path);
    }
    pthread_mutex_unlock(&c->snap_mu);
    bp_pf_list_free(names, n);
    return rc;
}

/* Write the snapshot of (name, version, entity) at clock. */
static bp_status snap_write(bp_store *s, const char *name, uint32_t version, const char *entity,
                            uint64_t clock, const void *state, size_t state_size) {
    if (bp_store_read_only(s)) return BP_OK;
    int64_t eid;
    uint64_t head, base;
    entity_head(s, entity, &eid, &head, &base);
    bp_projsnap sn = {name,  strlen(name), version, entity,    strlen(entity),
                      clock, {{0}},        state,   state_size};
    bp_status rc;
    if (clock > 0 && (eid < 0 || (rc = bp_store_entity_hash(s, eid, clock, &sn.head))))
        return bp_err(BP_ENOTFOUND, "snapshot '%s' of %s: no event at clock %llu", name, entity,
                      (unsigned long long)clock);
    char dir[4096], file[64], parent[4096];
    snap_paths(s, name, version, entity, dir, sizeof dir, file, sizeof file);
    snprintf(parent, sizeof parent, "%s/projections", bp_store_dir(s));
    bp_buf b = {0};
    if (bp_projsnap_encode(&b, &sn)) return bp_err(BP_ENOMEM, "snapshot: out of memory");
    int e = bp_pf_mkdir(parent);
    if (!e) e = bp_pf_mkdir(dir);
    pthread_mutex_lock(&bp_typed_of(s)->pc->snap_mu);
    if (!e) e = bp_pf_write_atomic(bp_store_fault(s), dir, file, b.data, b.len);
    pthread_mutex_unlock(&bp_typed_of(s)->pc->snap_mu);
    bp_buf_free(&b);
    if (e) {
        pthread_mutex_lock(&bp_typed_of(s)->pc->mu);
        bp_typed_of(s)->pc->st.snapshots_failed++;
        pthread_mutex_unlock(&bp_typed_of(s)->pc->mu);
        return bp_err_sys(BP_EIO, e, "%s/%s: cannot write the projection snapshot", dir, file);
    }
    pthread_mutex_lock(&bp_typed_of(s)->pc->mu);
    bp_typed_of(s)->pc->st.snapshots_written++;
    pthread_mutex_unlock(&bp_typed_of(s)->pc->mu);
    return BP_OK;
}

/* Load a snapshot into state if one exists and still matches the store: same
 * projection, entity, and the entity's event at its clock has its hash.
 * *clock = its clock; false when there is none usable (rejections are counted). */
static bool snap_load(bp_store *s, const bp_projection *p, const char *entity, int64_t eid,
                      uint64_t head, void *state, uint64_t *clock) {
    char dir[4096], file[64], path[4200];
    snap_paths(s, p->name, p->version, entity, dir, sizeof dir, file, sizeof file);
    snprintf(path, sizeof path, "%s/%s", dir, file);
    uint8_t *buf;
    size_t n;
    if (bp_pf_read_all(path, &buf, &n)) return false; /* none (or unreadable): refold */
    bp_projsnap sn;
    bool ok = bp_projsnap_decode(buf, n, &sn) == BP_OK && sn.version == p->version &&
              sn.name_len == strlen(p->name) && memcmp(sn.name, p->name, sn.name_len) == 0 &&
              sn.entity_len == strlen(entity) && memcmp(sn.entity, entity, sn.entity_len) == 0 &&
              sn.state_size == p->state_size && sn.clock <= head;
    if (ok && sn.clock > 0) {
        bp_hash h;
        ok = eid >= 0 && bp_store_entity_hash(s, eid, sn.clock, &h) == BP_OK &&
             memcmp(h.b, sn.head.b, 32) == 0;
    }
    if (ok) {
        memcpy(state, sn.state, p->state_size);
        *clock = sn.clock;
    }
    free(buf);
    bp_err_clear();
    pthread_mutex_lock(&bp_typed_of(s)->pc->mu);
    if (ok)
        bp_typed_of(s)->pc->st.snapshots_loaded++;
    else
        bp_typed_of(s)->pc->st.snapshots_rejected++;
    pthread_mutex_unlock(&bp_typed_of(s)->pc->mu);
    return ok;
}

/* Snapshot and free a list of evicted entries (linked by hnext). */
static bp_status drop_evicted(bp_store *s, pc_entry *list) {
    bp_status first = BP_OK;
    for (pc_entry *e = list, *nx; e; e = nx) {
        nx = e->hnext;
        if (e->persist && e->clock > e->snap_clock) {
            bp_status rc =
                snap_write(s, e->name, e->version, e->entity, e->clock, e->state, e->state_size);
            if (rc && !first) first = rc;
        }
        free(e);
    }
    return first;
}

/* --------------------------------------------------------------- project */

/* Put (p, entity) at clock with state into the cache unless it holds a newer state.
 * *snap_due: a snapshot should be written now (persist, far enough ahead). */
static void cache_put(bp_store *s, const bp_projection *p, const char *entity, uint64_t h,
                      uint64_t clock, uint64_t snap_clock, const void *state, uint64_t now,
                      bool *snap_due) {
    bp_projcache *c = bp_typed_of(s)->pc;
    uint32_t every = p->snapshot_every ? p->snapshot_every : SNAPSHOT_EVERY_DEFAULT;
    *snap_due = false;
    pthread_mutex_lock(&c->mu);
    pc_entry *e = pc_find(c, h, p, entity);
    if (e) {
        if (e->clock <= clock) {
            memcpy(e->state, state, p->state_size);
            e->clock = clock;
            e->checked_us = now;
            if (snap_clock > e->snap_clock) e->snap_clock = snap_clock;
        }
        lru_unlink(e);
        lru_front(c, e);
    } else if (c->limit) {
        size_t nl = strlen(p->name) + 1, el = strlen(entity) + 1;
        size_t bytes = sizeof *e + p->state_size + nl + el;
        if (bytes <= c->limit && pc_grow(c) && (e = malloc(bytes))) {
            memset(e, 0, sizeof *e);
            e->state = (uint8_t *)(e + 1);
            e->name = (char *)e->state + p->state_size;
            e->entity = e->name + nl;
            memcpy(e->state, state, p->state_size);
            memcpy(e->name, p->name, nl);
            memcpy(e->entity, entity, el);
            e->hash = h;
            e->version = p->version;
            e->state_size = p->state_size;
            e->clock = clock;
            e->checked_us = now;
            e->snap_clock = snap_clock;
            e->persist = p->persist;
            e->snapshot_every = every;
            e->bytes = bytes;
            e->hnext = c->tab[h & (c->tcap - 1)];
            c->tab[h & (c->tcap - 1)] = e;
            lru_front(c, e);
            c->n++;
            c->bytes += bytes;
        }
    }
    if (e && p->persist && e->clock >= e->snap_clock + every) {
        *snap_due = true;
        e->snap_clock = e->clock; /* claimed: one writer per step */
    }
    pc_entry *evicted = pc_shrink(c);
    pthread_mutex_unlock(&c->mu);
    drop_evicted(s, evicted); /* best effort: a failed snapshot only costs a refold */
}

bp_status bp_project(bp_store *s, void *state, bp_project_info *info, const bp_projection *p,
                     const char *entity, uint32_t max_stale_ms) {
    bp_project_info local = BP_PROJECT_INFO_INIT;
    if (!info) info = &local;
    if (!s || !state) return bp_err(BP_EINVAL, "bp_project: NULL argument");
    BP_SIZE_CHECK("bp_project", info, bp_project_info, BP_PROJECT_INFO_INIT);
    BP_OUT_RESET(info, bp_project_info);
    bp_status rc = bp_projection_check(p, entity);
    if (rc) return rc;
    bp_projcache *c = bp_typed_of(s)->pc;
    uint64_t h = key_hash(p->name, p->version, p->state_size, entity);
    uint64_t now = bp_pf_mono_us();
    if (max_stale_ms != BP_CONSISTENT) {
        pthread_mutex_lock(&c->mu);
        pc_entry *e = pc_find(c, h, p, entity);
        if (e && now - e->checked_us <= (uint64_t)max_stale_ms * 1000) {
            memcpy(state, e->state, p->state_size);
            info->clock = e->clock;
            info->from_cache = true;
            c->st.hits++;
            lru_unlink(e);
            lru_front(c, e);
            pthread_mutex_unlock(&c->mu);
            return BP_OK;
        }
        pthread_mutex_unlock(&c->mu);
    }
    int64_t eid;
    uint64_t head, from = 0, snap_clock = 0, base;
    entity_head(s, entity, &eid, &head, &base);
    pthread_mutex_lock(&c->mu);
    pc_entry *e = pc_find(c, h, p, entity);
    if (e) {
        memcpy(state, e->state, p->state_size);
        from = e->clock;
        snap_clock = e->snap_clock;
        info->from_cache = true;
        if (from >= head) { /* > head: another call cached a state published since our look */
            head = from;
            e->checked_us = now;
            c->st.hits++;
        } else {
            c->st.partial++;
        }
        lru_unlink(e);
        lru_front(c, e);
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    if (!info->from_cache) {
        if (p->persist && head > 0 && snap_load(s, p, entity, eid, head, state, &from)) {
            info->from_snapshot = true;
            snap_clock = from;
        } else {
            init_state(p, state);
            from = base; /* what compaction removed is not folded */
        }
    } else if (from == head) {
        info->clock = head;
        return BP_OK;
    }
    if (from < head && (rc = fold(s, p, eid, from, head, state, &info->applied))) return rc;
    info->clock = head;
    bool snap_due;
    cache_put(s, p, entity, h, head, snap_clock, state, now, &snap_due);
    if (snap_due || (p->persist && !c->limit && head >= snap_clock + SNAPSHOT_EVERY_DEFAULT))
        snap_write(s, p->name, p->version, entity, head, state, p->state_size);
    return BP_OK;
}

bp_status bp_project_if_changed(bp_store *s, void *state, uint64_t *clock, const bp_projection *p,
                                const char *entity) {
    if (!s || !clock || !state) return bp_err(BP_EINVAL, "bp_project_if_changed: NULL argument");
    bp_status rc = bp_projection_check(p, entity);
    if (rc) return rc;
    int64_t eid;
    uint64_t head, base;
    entity_head(s, entity, &eid, &head, &base);
    if (head == *clock) return BP_UNCHANGED;
    bp_project_info info = BP_PROJECT_INFO_INIT;
    if ((rc = bp_project(s, state, &info, p, entity, BP_CONSISTENT))) return rc;
    *clock = info.clock;
    return BP_OK;
}

bp_status bp_projection_cache_limit(bp_store *s, size_t bytes) {
    if (!s) return bp_err(BP_EINVAL, "bp_projection_cache_limit: NULL store");
    pthread_mutex_lock(&bp_typed_of(s)->pc->mu);
    bp_typed_of(s)->pc->limit = bytes;
    pc_entry *evicted = pc_shrink(bp_typed_of(s)->pc);
    pthread_mutex_unlock(&bp_typed_of(s)->pc->mu);
    return drop_evicted(s, evicted);
}

bp_status bp_projection_cache_stats_get(bp_store *s, bp_projection_cache_stats *out) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_projection_cache_stats_get: NULL argument");
    BP_SIZE_CHECK("bp_projection_cache_stats_get", out, bp_projection_cache_stats,
                  BP_PROJECTION_CACHE_STATS_INIT);
    pthread_mutex_lock(&bp_typed_of(s)->pc->mu);
    *out = bp_typed_of(s)->pc->st;
    out->struct_size = sizeof *out;
    out->entries = bp_typed_of(s)->pc->n;
    out->bytes = bp_typed_of(s)->pc->bytes;
    out->limit = bp_typed_of(s)->pc->limit;
    pthread_mutex_unlock(&bp_typed_of(s)->pc->mu);
    return BP_OK;
}

bp_status bp_projection_flush(bp_store *s) {
    if (!s) return bp_err(BP_EINVAL, "bp_projection_flush: NULL store");
    if (bp_store_read_only(s))
        return bp_err(BP_EREADONLY, "%s: store was opened read-only", bp_store_dir(s));
    bp_projcache *c = bp_typed_of(s)->pc;
    bp_status first = BP_OK;
    for (;;) { /* one entry at a time: the state is copied out under the lock */
        pthread_mutex_lock(&c->mu);
        pc_entry *e = c->lru.next;
        while (e != &c->lru && !(e->persist && e->clock > e->snap_clock))
            e = e->next;
        if (e == &c->lru) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        pc_entry *copy = malloc(e->bytes);
        if (copy) {
            memcpy(copy, e, e->bytes);
            copy->state = (uint8_t *)(copy + 1);
            copy->name = (char *)copy->state + e->state_size;
            copy->entity = copy->name + strlen(e->name) + 1;
        }
        e->snap_clock = e->clock;
        pthread_mutex_unlock(&c->mu);
        if (!copy) return bp_err(BP_ENOMEM, "bp_projection_flush: out of memory");
        bp_status rc = snap_write(s, copy->name, copy->version, copy->entity, copy->clock,
                                  copy->state, copy->state_size);
        if (rc && !first) first = rc;
        free(copy);
    }
    return first;
}

/* ----------------------------------------------------------------- replay */

typedef struct replay_ctx {
    bp_replay_fn fn;
    void *ctx;
} replay_ctx;

bp_status bp_replay(bp_store *s, const bp_region *region, bp_lane lane, bp_replay_fn fn,
                    void *ctx) {
    if (!s || !region || !fn) return bp_err(BP_EINVAL, "bp_replay: NULL argument");
    if (lane != BP_LANE_RAW && lane != BP_LANE_JSON)
        return bp_err(BP_EINVAL, "bp_replay: unknown lane %d", (int)lane);
    bp_iter *it;
    bp_status rc = bp_query(s, &it, region, BP_READ_FULL);
    if (rc) return rc;
    const bp_event *ev;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
        char *json = NULL;
        if (lane == BP_LANE_JSON && (rc = bp_event_json(s, &json, ev))) break;
        rc = fn(ctx, ev, json, json ? strlen(json) : 0);
        bp_free(json);
        if (rc) break;
    }
    bp_iter_free(it);
    return rc == BP_DONE ? BP_OK : rc;
}
