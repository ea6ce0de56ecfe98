/*
 * guard_impl.h — internal: what the store needs from the signing module.
 *
 * A store opened with a signing key holds a bp_signer (a private copy of the
 * key pair, wiped at close) and always holds a keyring: the public keys of
 * DIR/keys/ (invariant: every key in it was read from, or written to, that
 * directory, under the name <hex key id>.pub).
 */
#ifndef BP_GUARD_IMPL_H
#define BP_GUARD_IMPL_H

#include "api/modules.h"
#include "core/core.h"
#include "store/store.h"

typedef struct bp_signer {
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t key_id[32];
} bp_signer;

/* Sign r in place (is_signed, key_id, signature). r's fields must encode (an
 * append's receipt always does). */
void bp_sign_receipt(const bp_signer *sg, bp_receipt *r);
void bp_sign_denial(const bp_signer *sg, bp_denial_receipt *r); /* not r->event */

/* Open-time set-up of the registry in dir/keys: load every key (BP_ECORRUPT
 * naming the file when one is malformed or misnamed); when signing_key is
 * given, make *signer and add its public key (written to keys/ unless
 * read-only). *keys is always set on success. */
bp_status bp_keys_open(const char *dir, bool read_only, const bp_signing_key *signing_key,
                       bp_keyring **keys, bp_signer **signer);
void bp_signer_free(bp_signer *sg);

/* The signing module's state of a store (module BP_MOD_GUARD, api/modules.h): the
 * keyring (never NULL once open) and the signer (NULL unless opened with a signing key;
 * then the store's sign hook signs every append's receipt with it). */
typedef struct bp_guard_state {
    bp_keyring *keys;
    bp_signer *signer;
} bp_guard_state;

extern const bp_store_module bp_guard_module;

static inline bp_guard_state *bp_guard_of(const bp_store *s) {
    return (bp_guard_state *)bp_store_module_state(s, BP_MOD_GUARD);
}

#endif
