/* Crypto-shredding: per-entity data keys in DIR/dkeys/, payloads sealed with
 * libsodium's secretbox (XSalsa20-Poly1305), bp_forget destroys an entity's key.
 *
 * The key cache maps an entity to its key, or to "no key" once looked up and absent.
 * Only this handle writes DIR/dkeys (it holds the store lock), so the cache is the truth
 * once an entry is in it.
 * Invariants (under kmu): every entry's state matches DIR/dkeys as of the last change this
 * handle made; a key is durable (file and directory fsynced) before it is in the cache
 * as present, so no event is ever sealed with a key that a crash could lose. */
#include "store/store_impl.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct dk_entry {
    struct dk_entry *next;
    bool present;
    bp_dkey key;
    size_t elen;
    char entity[]; /* NUL-terminated */
} dk_entry;

struct bp_dkeys {
    pthread_mutex_t mu;
    dk_entry **tab;
    size_t cap, n; /* cap is a power of two */
    char dir[];    /* DIR/dkeys */
};

bp_status bp_dkeys_init(bp_store *s) {
    size_t dl = strlen(s->dir) + sizeof "/dkeys";
    bp_dkeys *k = calloc(1, sizeof *k + dl);
    if (!k) return bp_err(BP_ENOMEM, "%s: out of memory", s->dir);
    snprintf(k->dir, dl, "%s/dkeys", s->dir);
    pthread_mutex_init(&k->mu, NULL);
    s->dk = k;
    return BP_OK;
}

void bp_dkeys_free(bp_store *s) {
    bp_dkeys *k = s->dk;
    if (!k) return;
    for (size_t i = 0; i < k->cap; i++)
        for (dk_entry *e = k->tab[i], *next; e; e = next) {
            next = e->next;
            sodium_memzero(&e->key, sizeof e->key);
            free(e);
        }
    free(k->tab);
    pthread_mutex_destroy(&k->mu);
    free(k);
    s->dk = NULL;
}

void bp_dkeys_lock(bp_store *s, bool lock) {
    if (lock)
        pthread_mutex_lock(&s->dk->mu);
    else
        pthread_mutex_unlock(&s->dk->mu);
}

/* [mu] The entry of entity, or NULL. */
static dk_entry *dk_find(bp_dkeys *k, const char *entity, size_t elen) {
    if (!k->cap) return NULL;
    for (dk_entry *e = k->tab[bp_str_hash(entity, elen) & (k->cap - 1)]; e; e = e->next)
        if (e->elen == elen && !memcmp(e->entity, entity, elen)) return e;
    return NULL;
}

/* [mu] A new entry (not present). NULL when out of memory. */
static dk_entry *dk_add(bp_dkeys *k, const char *entity, size_t elen) {
    if (k->n >= k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        dk_entry **tab = calloc(cap, sizeof *tab);
        if (!tab) return NULL;
        for (size_t i = 0; i < k->cap; i++)
            for (dk_entry *e = k->tab[i], *next; e; e = next) {
                next = e->next;
                size_t b = bp_str_hash(e->entity, e->elen) & (cap - 1);
                e->next = tab[b];
                tab[b] = e;
            }
        free(k->tab);
        k->tab = tab;
        k->cap = cap;
    }
    dk_entry *e = calloc(1, sizeof *e + elen + 1);
    if (!e) return NULL;
    memcpy(e->entity, entity, elen);
    e->elen = elen;
    size_t b = bp_str_hash(entity, elen) & (k->cap - 1);
    e->next = k->tab[b];
    k->tab[b] = e;
    k->n++;
    return e;
}

/* [mu] The entry of entity, loaded from DIR/dkeys on first use. */
static bp_status dk_lookup(bp_store *s, const char *entity, size_t elen, dk_entry **out) {
    bp_dkeys *k = s->dk;
    dk_entry *e = dk_find(k, entity, elen);
    if (e) {
        *out = e;
        return BP_OK;
    }
    char name[BP_DKEY_NAME_SIZE], path[4200];
    bp_dkey_file_name(entity, elen, name);
    snprintf(path, sizeof path, "%s/%s", k->dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    int er = bp_pf_read_all(path, &buf, &len);
    bp_dkey key;
    if (er && er != -ENOENT) return bp_err_sys(BP_EIO, er, "%s: cannot read the data key", path);
    if (!er) {
        bp_status rc = bp_dkey_file_decode(buf, len, entity, elen, &key);
        sodium_memzero(buf, len);
        free(buf);
        if (rc) return bp_err(rc, "%s: %s", path, bp_last_error());
    }
    if (!(e = dk_add(k, entity, elen))) {
        sodium_memzero(&key, sizeof key);
        return bp_err(BP_ENOMEM, "%s: out of memory for data keys", s->dir);
    }
    if (!er) {
        e->present = true;
        e->key = key;
        sodium_memzero(&key, sizeof key);
    }
    *out = e;
    return BP_OK;
}

bp_status bp_dkey_get(bp_store *s, const char *entity, size_t elen, bool create, bp_dkey *out,
                      bool *found) {
    bp_dkeys *k = s->dk;
    pthread_mutex_lock(&k->mu);
    dk_entry *e;
    bp_status rc = dk_lookup(s, entity, elen, &e);
    if (!rc && !e->present && create) {
        bp_dkey key;
        uint8_t file[BP_DKEY_FILE_MAX];
        char name[BP_DKEY_NAME_SIZE];
        if ((rc = bp_sodium_ready())) goto out;
        randombytes_buf(key.id, sizeof key.id);
        crypto_secretbox_keygen(key.key);
        size_t n = bp_dkey_file_encode(file, entity, elen, &key);
        bp_dkey_file_name(entity, elen, name);
        /* DIR/dkeys exists: only a sealing store creates keys, and open made it (seal_setup) */
        int er = bp_pf_write_atomic(s->fault, k->dir, name, file, n);
        sodium_memzero(file, sizeof file);
        if (er) {
            sodium_memzero(&key, sizeof key);
            rc = bp_err_sys(BP_EIO, er, "%s/%s: cannot write the data key of '%.*s'", k->dir, name,
                            (int)elen, entity);
            goto out;
        }
        e->key = key;
        e->present = true;
        sodium_memzero(&key, sizeof key);
    }
    if (!rc) {
        *found = e->present;
        if (e->present) *out = e->key;
    }
out:
    pthread_mutex_unlock(&k->mu);
    return rc;
}

bp_status bp_dkeys_turn_on(bp_store *s) {
    pthread_mutex_lock(&s->wmu);
    bp_status rc = BP_OK;
    if (!s->seal) {
        int e = bp_pf_mkdir_private(s->dk->dir);
        if (e == 1) e = bp_pf_fsync_dir(s->fault, s->dir);
        if (e < 0)
            rc = bp_err_sys(BP_EIO, e, "%s: cannot set up the data keys", s->dk->dir);
        else
            s->seal = true;
    }
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

bool bp_store_seals(const bp_store *s) {
    return s && s->seal;
}

bp_status bp_forget(bp_store *s, const char *entity) {
    if (!s || !entity) return bp_err(BP_EINVAL, "bp_forget: NULL argument");
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    size_t elen = strlen(entity);
    if (!elen || elen > BP_COORD_MAX)
        return bp_err(BP_EINVAL, "bp_forget: entity of %zu bytes (1..%d)", elen, BP_COORD_MAX);
    bp_dkeys *k = s->dk;
    pthread_mutex_lock(&k->mu);
    dk_entry *e;
    bp_status rc = dk_lookup(s, entity, elen, &e);
    if (!rc && !e->present)
        rc = bp_err(BP_ENOTFOUND,
                    "entity '%s' has no data key: its payloads were never sealed, or it is "
                    "forgotten already",
                    entity);
    if (!rc) {
        char name[BP_DKEY_NAME_SIZE], path[4200];
        bp_dkey_file_name(entity, elen, name);
        snprintf(path, sizeof path, "%s/%s", k->dir, name);
        int er = bp_pf_unlink(path);
        if (!er || er == -ENOENT) {
            /* gone from the cache even if the directory sync fails: never use it again */
            sodium_memzero(&e->key, sizeof e->key);
            e->present = false;
            er = bp_pf_fsync_dir(s->fault, k->dir);
        }
        if (er) rc = bp_err_sys(BP_EIO, er, "%s: cannot remove the data key of '%s'", path, entity);
    }
    pthread_mutex_unlock(&k->mu);
    /* what the layers above derived from those payloads (projections) goes too */
    if (!rc) rc = bp_store_forget_hooks(s, entity);
    return rc;
}

void bp_wipe(void *p, size_t n) {
    sodium_memzero(p, n);
}

size_t bp_seal(const bp_dkey *k, const uint8_t *plain, size_t len, uint8_t *out) {
    memcpy(out, k->id, BP_DKEY_ID_SIZE);
    uint8_t *nonce = out + BP_DKEY_ID_SIZE;
    randombytes_buf(nonce, BP_DKEY_NONCE_SIZE);
    crypto_secretbox_easy(nonce + BP_DKEY_NONCE_SIZE, plain, len, nonce, k->key);
    return len + BP_SEAL_OVERHEAD;
}

bp_status bp_unseal_event(bp_store *s, bp_event *ev, bp_buf *plain) {
    if (!(ev->flags & BP_EVENT_SEALED) || !ev->payload) return BP_OK;
    char t[37];
    if (ev->payload_len < BP_SEAL_OVERHEAD) {
        bp_id_format(&ev->event_id, t);
        return bp_err(BP_ECORRUPT, "event %s: sealed payload of %zu bytes is too short", t,
                      ev->payload_len);
    }
    bp_dkey key;
    bool found = false;
    bp_status rc = bp_dkey_get(s, ev->entity, strlen(ev->entity), false, &key, &found);
    if (rc) return rc;
    if (!found || memcmp(key.id, ev->payload, BP_DKEY_ID_SIZE) != 0) {
        sodium_memzero(&key, sizeof key);
        ev->payload = NULL; /* the key was destroyed: the payload is gone for good */
        ev->payload_len = 0;
        ev->payload_forgotten = true;
        return BP_OK;
    }
    size_t n = ev->payload_len - BP_SEAL_OVERHEAD;
    plain->len = 0;
    if (bp_buf_reserve(plain, n ? n : 1)) {
        sodium_memzero(&key, sizeof key);
        return bp_err(BP_ENOMEM, "%s: out of memory opening a sealed payload", s->dir);
    }
    const uint8_t *nonce = ev->payload + BP_DKEY_ID_SIZE;
    int bad = crypto_secretbox_open_easy(plain->data, nonce + BP_DKEY_NONCE_SIZE,
                                         ev->payload_len - BP_DKEY_ID_SIZE - BP_DKEY_NONCE_SIZE,
                                         nonce, key.key);
    sodium_memzero(&key, sizeof key);
    if (bad) {
        bp_id_format(&ev->event_id, t);
        return bp_err(BP_ECORRUPT, "event %s of '%s': sealed payload fails its authentication", t,
                      ev->entity);
    }
    plain->len = n;
    ev->payload = plain->data;
    ev->payload_len = n;
    return BP_OK;
}
