/*
 * sign.c — Ed25519 receipt signatures (libsodium), key files, key registries.
 *
 * The canonical encodings a signature covers are written here and nowhere
 * else; doc/FORMAT.md "Signed receipts" gives them byte by byte and
 * tests/test_guard.c pins them with vectors.
 */
#include "guard/guard_impl.h"
#include "platform/platform.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#define SECRET_HEADER "batpak-ed25519-secret-key-v1\n"
#define PUBLIC_HEADER "batpak-ed25519-public-key-v1\n"
#define APPEND_DOMAIN "batpak/append-receipt/v1"
#define DENIAL_DOMAIN "batpak/denial-receipt/v1"

void bp_key_id(uint8_t key_id[32], const uint8_t public_key[32]) {
    bp_blake3(public_key, 32, key_id);
}

bp_status bp_keygen(bp_signing_key *out) {
    if (!out) return bp_err(BP_EINVAL, "keygen: out is NULL");
    bp_status rc = bp_sodium_ready();
    if (rc) return rc;
    crypto_sign_keypair(out->public_key, out->secret_key);
    return BP_OK;
}

void bp_signing_key_wipe(bp_signing_key *k) {
    if (k) sodium_memzero(k, sizeof *k);
}

/* ------------------------------------------------------------ key files */

/* "<header><64 hex>\n" */
static void key_text(const char *header, const uint8_t key[32], char out[128]) {
    size_t h = strlen(header);
    memcpy(out, header, h);
    bp_hex_encode(key, 32, out + h);
    out[h + 64] = '\n';
    out[h + 65] = '\0';
}

/* Parse key text: the header, 64 hex digits, optional trailing newline. */
static bp_status key_parse(bool secret, const char *path, const uint8_t *buf, size_t len,
                           uint8_t key[32]) {
    const char *what = secret ? "secret" : "public";
    const char *header = secret ? SECRET_HEADER : PUBLIC_HEADER;
    const char *other = secret ? PUBLIC_HEADER : SECRET_HEADER;
    size_t h = strlen(header);
    if (len >= strlen(other) && memcmp(buf, other, strlen(other)) == 0)
        return bp_err(BP_EINVAL, "%s: this is a %s key file, not a %s key file", path,
                      secret ? "public" : "secret", what);
    if (len < h || memcmp(buf, header, h) != 0)
        return bp_err(BP_EINVAL, "%s: not a batpak %s key file (the first line must be '%.*s')",
                      path, what, (int)h - 1, header);
    size_t n = len - h;
    while (n && (buf[h + n - 1] == '\n' || buf[h + n - 1] == '\r'))
        n--;
    if (!bp_hex_decode((const char *)buf + h, n, key, 32))
        return bp_err(BP_EINVAL, "%s: the second line must be exactly 64 hex digits", path);
    return BP_OK;
}

bp_status bp_signing_key_save(const bp_signing_key *k, const char *secret_path,
                              const char *public_path) {
    if (!k) return bp_err(BP_EINVAL, "save key: key is NULL");
    char text[128];
    if (secret_path) {
        key_text(SECRET_HEADER, k->secret_key, text); /* the seed: the first 32 bytes */
        int e = bp_pf_write_new(secret_path, text, strlen(text), 0600);
        sodium_memzero(text, sizeof text);
        if (e == -EEXIST)
            return bp_err(BP_EEXIST, "%s: already exists; a key file is never overwritten",
                          secret_path);
        if (e) return bp_err_sys(BP_EIO, e, "%s: cannot write the secret key", secret_path);
    }
    if (public_path) {
        key_text(PUBLIC_HEADER, k->public_key, text);
        int e = bp_pf_write_new(public_path, text, strlen(text), 0644);
        if (e == -EEXIST)
            return bp_err(BP_EEXIST, "%s: already exists; a key file is never overwritten",
                          public_path);
        if (e) return bp_err_sys(BP_EIO, e, "%s: cannot write the public key", public_path);
    }
    return BP_OK;
}

static bp_status read_key_file(bool secret, const char *path, uint8_t key[32]) {
    const char *what = secret ? "secret" : "public";
    uint8_t *buf;
    size_t len;
    int e = bp_pf_read_all(path, &buf, &len);
    if (e == -ENOENT) return bp_err(BP_ENOTFOUND, "%s: no such %s key file", path, what);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot read the %s key file", path, what);
    bp_status rc =
        len > 256 ? bp_err(BP_EINVAL, "%s: too long for a %s key file (%zu bytes)", path, what, len)
                  : key_parse(secret, path, buf, len, key);
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

bp_status bp_signing_key_load(bp_signing_key *out, const char *secret_path) {
    if (!out || !secret_path) return bp_err(BP_EINVAL, "load key: NULL argument");
    bp_status rc = bp_sodium_ready();
    if (rc) return rc;
    unsigned mode;
    int e = bp_pf_mode(secret_path, &mode);
    if (e == -ENOENT) return bp_err(BP_ENOTFOUND, "%s: no such secret key file", secret_path);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot stat the secret key file", secret_path);
    uint8_t seed[32];
    if ((rc = read_key_file(true, secret_path, seed))) return rc;
    if (mode & 077) {
        sodium_memzero(seed, sizeof seed);
        return bp_err(BP_EINVAL,
                      "%s: the secret key file has mode %04o; it must not be readable or writable "
                      "by group or others (chmod 600 %s)",
                      secret_path, mode, secret_path);
    }
    crypto_sign_seed_keypair(out->public_key, out->secret_key, seed);
    sodium_memzero(seed, sizeof seed);
    return BP_OK;
}

bp_status bp_public_key_load(uint8_t public_key[32], const char *public_path) {
    if (!public_key || !public_path) return bp_err(BP_EINVAL, "load public key: NULL argument");
    return read_key_file(false, public_path, public_key);
}

/* --------------------------------------------------------------- keyring */

typedef struct ring_key {
    uint8_t key_id[32];
    uint8_t pk[32];
} ring_key;

struct bp_keyring {
    pthread_mutex_t mu;
    ring_key *keys;
    size_t n, cap;
};

bp_status bp_keyring_new(bp_keyring **out) {
    if (!out) return bp_err(BP_EINVAL, "keyring: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return bp_err(BP_ENOMEM, "keyring: out of memory");
    pthread_mutex_init(&(*out)->mu, NULL);
    return BP_OK;
}

void bp_keyring_free(bp_keyring *kr) {
    if (!kr) return;
    pthread_mutex_destroy(&kr->mu);
    free(kr->keys);
    free(kr);
}

size_t bp_keyring_count(const bp_keyring *kr) {
    if (!kr) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&kr->mu);
    size_t n = kr->n;
    pthread_mutex_unlock((pthread_mutex_t *)&kr->mu);
    return n;
}

/* 1 added, 0 present, or BP_ENOMEM. */
static int ring_add(bp_keyring *kr, const uint8_t pk[32]) {
    uint8_t id[32];
    bp_key_id(id, pk);
    int rc = 1;
    pthread_mutex_lock(&kr->mu);
    for (size_t i = 0; i < kr->n; i++)
        if (memcmp(kr->keys[i].key_id, id, 32) == 0) rc = 0;
    if (rc == 1 && kr->n == kr->cap) {
        size_t cap = kr->cap ? kr->cap * 2 : 4;
        ring_key *k = realloc(kr->keys, cap * sizeof *k);
        if (!k)
            rc = BP_ENOMEM;
        else {
            kr->keys = k;
            kr->cap = cap;
        }
    }
    if (rc == 1) {
        memcpy(kr->keys[kr->n].key_id, id, 32);
        memcpy(kr->keys[kr->n].pk, pk, 32);
        kr->n++;
    }
    pthread_mutex_unlock(&kr->mu);
    if (rc == BP_ENOMEM) return bp_err(BP_ENOMEM, "keyring: out of memory");
    return rc;
}

static bool ring_find(const bp_keyring *kr, const uint8_t key_id[32], uint8_t pk[32]) {
    bool found = false;
    pthread_mutex_lock((pthread_mutex_t *)&kr->mu);
    for (size_t i = 0; i < kr->n && !found; i++)
        if (memcmp(kr->keys[i].key_id, key_id, 32) == 0) {
            memcpy(pk, kr->keys[i].pk, 32);
            found = true;
        }
    pthread_mutex_unlock((pthread_mutex_t *)&kr->mu);
    return found;
}

bp_status bp_keyring_add(bp_keyring *kr, const uint8_t public_key[32]) {
    if (!kr || !public_key) return bp_err(BP_EINVAL, "keyring add: NULL argument");
    int rc = ring_add(kr, public_key);
    return rc < 0 ? rc : BP_OK;
}

bp_status bp_keyring_add_file(bp_keyring *kr, const char *public_path) {
    if (!kr) return bp_err(BP_EINVAL, "keyring add: keyring is NULL");
    uint8_t pk[32];
    bp_status rc = bp_public_key_load(pk, public_path);
    return rc ? rc : bp_keyring_add(kr, pk);
}

/* ----------------------------------------------------- canonical encoding */

typedef struct wbuf {
    uint8_t *p;
    size_t cap, n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n) {
    if (w->n + n <= w->cap) memcpy(w->p + w->n, p, n);
    w->n += n;
}
static void put_u8(wbuf *w, uint8_t v) {
    put(w, &v, 1);
}
static void put16(wbuf *w, uint16_t v) {
    uint8_t b[2];
    bp_put_be16(b, v);
    put(w, b, 2);
}
static void put32(wbuf *w, uint32_t v) {
    uint8_t b[4];
    bp_put_be32(b, v);
    put(w, b, 4);
}
static void put64(wbuf *w, uint64_t v) {
    uint8_t b[8];
    bp_put_be64(b, v);
    put(w, b, 8);
}

static bp_status check_coord(const char *what, const char *s) {
    if (strnlen(s, BP_COORD_MAX + 1) > BP_COORD_MAX)
        return bp_err(BP_EINVAL, "receipt: %s is not NUL-terminated within %d bytes", what,
                      BP_COORD_MAX);
    return bp_coord_validate(what, s);
}

/* The event part both receipts share: store_id .. durability. */
static bp_status put_event(wbuf *w, const bp_receipt *r) {
    bp_status rc = check_coord("entity", r->entity);
    if (!rc) rc = check_coord("scope", r->scope);
    if (rc) return rc;
    if (r->durability < BP_DUR_SYNC || r->durability > BP_DUR_NONE)
        return bp_err(BP_EINVAL, "receipt: unknown durability %d", (int)r->durability);
    put(w, r->store_id, 16);
    put(w, r->event_id.b, 16);
    put16(w, (uint16_t)strlen(r->entity));
    put(w, r->entity, strlen(r->entity));
    put16(w, (uint16_t)strlen(r->scope));
    put(w, r->scope, strlen(r->scope));
    put16(w, r->kind);
    put64(w, r->global_seq);
    put64(w, r->clock);
    put64(w, r->hlc);
    put(w, r->prev_hash.b, 32);
    put(w, r->event_hash.b, 32);
    put_u8(w, (uint8_t)r->durability);
    return BP_OK;
}

static bp_status finish(const wbuf *w, size_t *len) {
    *len = w->n;
    if (w->n > w->cap)
        return bp_err(BP_ETOOBIG, "receipt encoding needs %zu bytes, the buffer has %zu", w->n,
                      w->cap);
    return BP_OK;
}

bp_status bp_receipt_signing_bytes(const bp_receipt *r, uint8_t *buf, size_t cap, size_t *len) {
    if (!r || !buf || !len) return bp_err(BP_EINVAL, "receipt encoding: NULL argument");
    wbuf w = {buf, cap, 0};
    put_u8(&w, (uint8_t)strlen(APPEND_DOMAIN));
    put(&w, APPEND_DOMAIN, strlen(APPEND_DOMAIN));
    bp_status rc = put_event(&w, r);
    if (rc) return rc;
    put(&w, r->key_id, 32);
    return finish(&w, len);
}

bp_status bp_denial_signing_bytes(const bp_denial_receipt *r, uint8_t *buf, size_t cap,
                                  size_t *len) {
    if (!r || !buf || !len || !r->event)
        return bp_err(BP_EINVAL, "denial receipt encoding: NULL argument (or no event receipt: the "
                                 "signature covers it)");
    size_t gl = strnlen(r->denial.gate, sizeof r->denial.gate);
    size_t ml = strnlen(r->denial.message, sizeof r->denial.message);
    if (gl == 0 || gl > BP_GATE_NAME_MAX)
        return bp_err(BP_EINVAL, "denial receipt: gate name must be 1..%d bytes", BP_GATE_NAME_MAX);
    if (ml > BP_DENIAL_MESSAGE_MAX)
        return bp_err(BP_EINVAL, "denial receipt: message longer than %d bytes",
                      BP_DENIAL_MESSAGE_MAX);
    wbuf w = {buf, cap, 0};
    put_u8(&w, (uint8_t)strlen(DENIAL_DOMAIN));
    put(&w, DENIAL_DOMAIN, strlen(DENIAL_DOMAIN));
    bp_status rc = put_event(&w, r->event);
    if (rc) return rc;
    put16(&w, r->denied_kind);
    put(&w, r->proposal_digest.b, 32);
    put32(&w, r->n_denials);
    put_u8(&w, (uint8_t)gl);
    put(&w, r->denial.gate, gl);
    put32(&w, (uint32_t)r->denial.code);
    put16(&w, (uint16_t)ml);
    put(&w, r->denial.message, ml);
    put(&w, r->key_id, 32);
    return finish(&w, len);
}

/* ------------------------------------------------------ sign and verify */

void bp_sign_receipt(const bp_signer *sg, bp_receipt *r) {
    uint8_t buf[BP_RECEIPT_SIGNING_MAX];
    size_t len;
    memcpy(r->key_id, sg->key_id, 32);
    r->is_signed = true;
    if (bp_receipt_signing_bytes(r, buf, sizeof buf, &len) == BP_OK)
        crypto_sign_detached(r->signature, NULL, buf, len, sg->sk);
}

void bp_sign_denial(const bp_signer *sg, bp_denial_receipt *r) {
    uint8_t buf[BP_RECEIPT_SIGNING_MAX];
    size_t len;
    memcpy(r->key_id, sg->key_id, 32); /* r->event was signed by its append */
    r->is_signed = true;
    if (bp_denial_signing_bytes(r, buf, sizeof buf, &len) == BP_OK)
        crypto_sign_detached(r->signature, NULL, buf, len, sg->sk);
}

static bp_status check_signature(const bp_keyring *kr, const char *what, const uint8_t key_id[32],
                                 const uint8_t sig[64], const uint8_t *msg, size_t len) {
    char hex[65];
    uint8_t pk[32];
    if (!ring_find(kr, key_id, pk)) {
        bp_hex_encode(key_id, 32, hex);
        return bp_err(BP_ENOTFOUND, "%s: signed by key %s, which is not in the key registry", what,
                      hex);
    }
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0) {
        bp_hex_encode(key_id, 32, hex);
        return bp_err(BP_ESIGNATURE,
                      "%s: the signature does not verify with key %s: a field, the key id or the "
                      "signature was altered",
                      what, hex);
    }
    return BP_OK;
}

bp_status bp_verify_receipt(const bp_keyring *kr, const bp_receipt *r) {
    if (!kr || !r) return bp_err(BP_EINVAL, "verify receipt: NULL argument");
    bp_status rc = bp_sodium_ready();
    if (rc) return rc;
    if (!r->is_signed) return bp_err(BP_EINVAL, "append receipt: not signed");
    uint8_t buf[BP_RECEIPT_SIGNING_MAX];
    size_t len;
    if ((rc = bp_receipt_signing_bytes(r, buf, sizeof buf, &len))) return rc;
    return check_signature(kr, "append receipt", r->key_id, r->signature, buf, len);
}

bp_status bp_verify_denial_receipt(const bp_keyring *kr, const bp_denial_receipt *r) {
    if (!kr || !r) return bp_err(BP_EINVAL, "verify denial receipt: NULL argument");
    bp_status rc = bp_sodium_ready();
    if (rc) return rc;
    if (!r->is_signed) return bp_err(BP_EINVAL, "denial receipt: not signed");
    uint8_t buf[BP_RECEIPT_SIGNING_MAX];
    size_t len;
    if ((rc = bp_denial_signing_bytes(r, buf, sizeof buf, &len))) return rc;
    if ((rc = check_signature(kr, "denial receipt", r->key_id, r->signature, buf, len))) return rc;
    return r->event->is_signed ? bp_verify_receipt(kr, r->event) : BP_OK;
}

/* ------------------------------------------------------ the store's registry */

static bp_status load_key_dir(const char *keydir, bp_keyring *kr) {
    char **names;
    size_t n;
    int e = bp_pf_list(keydir, ".pub", &names, &n);
    if (e == -ENOENT) return BP_OK;
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot list the key registry", keydir);
    bp_status rc = BP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4096], hex[65];
        uint8_t pk[32], id[32];
        snprintf(path, sizeof path, "%s/%s", keydir, names[i]);
        if ((rc = bp_public_key_load(pk, path))) {
            rc = bp_err(BP_ECORRUPT, "key registry: %s", bp_last_error());
            break;
        }
        bp_key_id(id, pk);
        bp_hex_encode(id, 32, hex);
        if (strlen(names[i]) != 68 || strncmp(names[i], hex, 64) != 0) {
            rc = bp_err(BP_ECORRUPT,
                        "key registry: %s holds the key with id %s, which is not the id its name "
                        "says",
                        path, hex);
            break;
        }
        int a = ring_add(kr, pk);
        if (a < 0) rc = a;
    }
    bp_pf_list_free(names, n);
    return rc;
}

static bp_status persist_key(const char *dir, const uint8_t pk[32], bp_fault *fault) {
    char keydir[4096], name[80], text[128];
    uint8_t id[32];
    snprintf(keydir, sizeof keydir, "%s/keys", dir);
    int e = bp_pf_mkdir(keydir);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot create the key registry", keydir);
    bp_key_id(id, pk);
    bp_hex_encode(id, 32, name);
    strcat(name, ".pub");
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", keydir, name);
    if (bp_pf_exists(path) == 1) return BP_OK;
    key_text(PUBLIC_HEADER, pk, text);
    e = bp_pf_write_atomic(fault, keydir, name, text, strlen(text));
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot write the public key", path);
    return BP_OK;
}

bp_status bp_keys_open(const char *dir, bool read_only, const bp_signing_key *signing_key,
                       bp_keyring **keys, bp_signer **signer) {
    *keys = NULL;
    *signer = NULL;
    char keydir[4096];
    snprintf(keydir, sizeof keydir, "%s/keys", dir);
    bp_status rc = bp_keyring_new(keys);
    if (!rc) rc = load_key_dir(keydir, *keys);
    if (!rc && signing_key) {
        rc = bp_sodium_ready();
        uint8_t seed[32], pk[32], sk[64];
        if (!rc) {
            crypto_sign_ed25519_sk_to_seed(seed, signing_key->secret_key);
            crypto_sign_seed_keypair(pk, sk, seed);
            if (memcmp(pk, signing_key->public_key, 32) != 0 ||
                memcmp(sk, signing_key->secret_key, 64) != 0)
                rc = bp_err(BP_EINVAL, "signing key: its public key does not match its secret key");
            sodium_memzero(seed, sizeof seed);
            sodium_memzero(sk, sizeof sk);
        }
        if (!rc && !read_only) rc = persist_key(dir, signing_key->public_key, NULL);
        if (!rc) rc = bp_keyring_add(*keys, signing_key->public_key);
        if (!rc) {
            *signer = sodium_malloc(sizeof **signer);
            if (!*signer) rc = bp_err(BP_ENOMEM, "signing key: out of memory");
        }
        if (!rc) {
            memcpy((*signer)->pk, signing_key->public_key, 32);
            memcpy((*signer)->sk, signing_key->secret_key, 64);
            bp_key_id((*signer)->key_id, (*signer)->pk);
        }
    }
    if (rc) {
        bp_keyring_free(*keys);
        *keys = NULL;
    }
    return rc;
}

void bp_signer_free(bp_signer *sg) {
    if (sg) sodium_free(sg); /* zeroes it */
}

bp_status bp_store_add_public_key(bp_store *s, const uint8_t public_key[32]) {
    if (!s || !public_key) return bp_err(BP_EINVAL, "add public key: NULL argument");
    if (bp_store_read_only(s))
        return bp_err(BP_EREADONLY, "%s: store was opened read-only", bp_store_dir(s));
    bp_status rc = persist_key(bp_store_dir(s), public_key, bp_store_fault(s));
    return rc ? rc : bp_keyring_add(bp_guard_of(s)->keys, public_key);
}

static bp_status check_store_id(bp_store *s, const uint8_t id[16]) {
    bp_id a, b;
    bp_store_uuid(s, b.b);
    if (memcmp(id, b.b, 16) == 0) return BP_OK;
    char ta[37], tb[37];
    memcpy(a.b, id, 16);
    bp_id_format(&a, ta);
    bp_id_format(&b, tb);
    return bp_err(BP_EINVAL, "receipt belongs to store %s, not to this store (%s)", ta, tb);
}

bp_status bp_store_verify_receipt(bp_store *s, const bp_receipt *r) {
    if (!s || !r) return bp_err(BP_EINVAL, "verify receipt: NULL argument");
    bp_status rc = check_store_id(s, r->store_id);
    return rc ? rc : bp_verify_receipt(bp_guard_of(s)->keys, r);
}

bp_status bp_store_verify_denial_receipt(bp_store *s, const bp_denial_receipt *r) {
    if (!s || !r || !r->event)
        return bp_err(BP_EINVAL, "verify denial receipt: NULL argument (or no event receipt)");
    bp_status rc = check_store_id(s, r->event->store_id);
    return rc ? rc : bp_verify_denial_receipt(bp_guard_of(s)->keys, r);
}

/* ------------------------------------------------------------ the module */

static void sign_hook(void *ctx, bp_receipt *r) {
    bp_sign_receipt(ctx, r);
}

static bp_status guard_open(bp_store *s, const bp_open_options *o, void **state) {
    bp_guard_state *g = calloc(1, sizeof *g);
    if (!g) return bp_err(BP_ENOMEM, "%s: out of memory", bp_store_dir(s));
    *state = g;
    bp_status rc =
        bp_keys_open(bp_store_dir(s), bp_store_read_only(s), o->signing_key, &g->keys, &g->signer);
    if (!rc && g->signer) bp_store_set_sign_hook(s, sign_hook, g->signer);
    return rc;
}

static void guard_free(void *state) {
    bp_guard_state *g = state;
    bp_keyring_free(g->keys);
    bp_signer_free(g->signer);
    free(g);
}

const bp_store_module bp_guard_module = {"guard", guard_open, NULL, NULL, guard_free, NULL, NULL};
