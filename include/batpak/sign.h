/** @file
 * batpak/sign.h — signed receipts (Ed25519, libsodium), key files, the key
 * registry, and receipts as JSON for offline verification.
 *
 * Signing is opt-in: open a store with bp_open_options.signing_key and every
 * append receipt (bp_receipt) and denial receipt (bp_denial_receipt) it
 * returns is signed. key_id = BLAKE3(public key). The signature covers a
 * domain-separated, versioned canonical encoding of the receipt, given
 * byte-exact in doc/FORMAT.md "Signed receipts" (with test vectors).
 *
 * Verification needs only public keys: the store keeps a registry of them in
 * DIR/keys/ (the signing key's public key is added at open; older keys stay,
 * so receipts signed before a key rotation still verify). Offline, a
 * bp_keyring built from public key files does the same with no store.
 *
 * Key files are text: one header line and 64 hex digits (doc/FORMAT.md).
 * A secret key file must not be readable by group or others.
 */
#ifndef BATPAK_SIGN_H
#define BATPAK_SIGN_H

#include "guard.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An Ed25519 key pair (libsodium layout: secret_key = seed || public_key). */
typedef struct bp_signing_key {
    uint8_t public_key[32]; /**< the Ed25519 public key */
    uint8_t secret_key[64]; /**< the 32-byte seed, then public_key; secret: bp_signing_key_wipe */
} bp_signing_key;

/** A fresh random key pair. */
BP_API bp_status bp_keygen(bp_signing_key *out);
/** key_id = BLAKE3-256 of the 32-byte public key. */
BP_API void bp_key_id(uint8_t key_id[32], const uint8_t public_key[32]);
/** Wipe a key pair from memory (use when done with it). */
BP_API void bp_signing_key_wipe(bp_signing_key *k);

/**
 * Write k as a secret key file (mode 0600, created exclusively: an existing
 * file is BP_EEXIST) and its public key file (mode 0644, also exclusive).
 * Either path may be NULL to skip that file. Both are fsynced.
 */
BP_API bp_status bp_signing_key_save(const bp_signing_key *k, const char *secret_path,
                                     const char *public_path);
/** Read a secret key file. BP_EINVAL when malformed or readable by group/others. */
BP_API bp_status bp_signing_key_load(bp_signing_key *out, const char *secret_path);
/** Read a public key file (a secret key file is refused: pass its .pub). */
BP_API bp_status bp_public_key_load(uint8_t public_key[32], const char *public_path);

/* ---------------------------------------------------------------- keyring */

/** A set of public keys by key id. Thread-safe. */
typedef struct bp_keyring bp_keyring;

/** A new, empty keyring; free it with bp_keyring_free. Errors: BP_EINVAL, BP_ENOMEM. */
BP_API bp_status bp_keyring_new(bp_keyring **out);
/** Add a public key (already present: BP_OK). */
BP_API bp_status bp_keyring_add(bp_keyring *kr, const uint8_t public_key[32]);
/** Add the public key in a public key file. */
BP_API bp_status bp_keyring_add_file(bp_keyring *kr, const char *public_path);
/** Number of keys in kr (0 when kr is NULL). */
BP_API size_t bp_keyring_count(const bp_keyring *kr);
/** Accepts NULL. */
BP_API void bp_keyring_free(bp_keyring *kr);

/* ------------------------------------------------------------ verification */

/**
 * Check a signed append receipt against the keys of kr: the key id must be
 * in kr and the signature must verify over the receipt's canonical encoding.
 * Errors: BP_EINVAL (not signed, or a field out of range: entity/scope
 * invalid, durability unknown), BP_ENOTFOUND (no key with that id),
 * BP_ESIGNATURE (any field, the key id or the signature was altered).
 */
BP_API bp_status bp_verify_receipt(const bp_keyring *kr, const bp_receipt *r);
/** The same for a denial receipt (its inner event receipt is checked too when signed). */
BP_API bp_status bp_verify_denial_receipt(const bp_keyring *kr, const bp_denial_receipt *r);

/**
 * bp_verify_receipt against the store's registry (DIR/keys/), and the
 * receipt's store_id must be this store's (BP_EINVAL otherwise).
 */
BP_API bp_status bp_store_verify_receipt(bp_store *s, const bp_receipt *r);
/** bp_verify_denial_receipt against the store's registry; r->event.store_id must be this
 * store's (BP_EINVAL otherwise). */
BP_API bp_status bp_store_verify_denial_receipt(bp_store *s, const bp_denial_receipt *r);

/** Add a public key to the store's registry, persisted in DIR/keys/ (read-only: BP_EREADONLY). */
BP_API bp_status bp_store_add_public_key(bp_store *s, const uint8_t public_key[32]);

/** Largest canonical encoding of a receipt, in bytes. */
#define BP_RECEIPT_SIGNING_MAX 1536

/**
 * The bytes a signature covers (doc/FORMAT.md), written to buf (cap bytes,
 * BP_RECEIPT_SIGNING_MAX is always enough); *len gets their length.
 * BP_EINVAL when a field cannot be encoded (entity/scope invalid, unknown durability);
 * BP_ETOOBIG when cap is too small (*len then gets the size needed).
 */
BP_API bp_status bp_receipt_signing_bytes(const bp_receipt *r, uint8_t *buf, size_t cap,
                                          size_t *len);
/** The same for a denial receipt (BP_EINVAL also when the gate name or the message is out
 * of range). */
BP_API bp_status bp_denial_signing_bytes(const bp_denial_receipt *r, uint8_t *buf, size_t cap,
                                         size_t *len);

/* ------------------------------------------------------------------- JSON */

/**
 * A receipt as one JSON object (doc/FORMAT.md "Receipt JSON"), NUL-terminated
 * in a heap buffer: release with bp_free. These are what `batpak append`
 * prints and `batpak verify-receipt` reads.
 */
BP_API bp_status bp_receipt_to_json(const bp_receipt *r, char **out);
/** The same for a denial receipt (its event receipt nested); release with bp_free. */
BP_API bp_status bp_denial_receipt_to_json(const bp_denial_receipt *r, char **out);

/** A parsed receipt (append or denial). */
typedef struct bp_receipt_doc bp_receipt_doc;

/**
 * Parse a receipt JSON object (either type). BP_EINVAL with the offending
 * field (or the JSON error's line and column) when malformed.
 */
BP_API bp_status bp_receipt_from_json(bp_receipt_doc **out, const char *json, size_t len);
/** The append receipt, or NULL when the doc holds a denial receipt. */
BP_API const bp_receipt *bp_receipt_doc_append(const bp_receipt_doc *d);
/** The denial receipt, or NULL when the doc holds an append receipt. */
BP_API const bp_denial_receipt *bp_receipt_doc_denial(const bp_receipt_doc *d);
/** Accepts NULL. */
BP_API void bp_receipt_doc_free(bp_receipt_doc *d);

#ifdef __cplusplus
}
#endif
#endif
