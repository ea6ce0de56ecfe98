/*
 * signed_receipts: key rotation. A store opened with a signing key signs every receipt
 * (Ed25519); its public key joins the store's registry, DIR/keys/. Opening with a new key
 * rotates: new receipts carry the new key id, and receipts signed with the old key still
 * verify, in the store and offline. (gates_and_receipts.c shows signing with one key and a
 * receipt file checked like `batpak verify-receipt` does.)
 *
 * What to look at:
 *   - bp_store_verify_receipt: both keys' receipts verify against the registry, even from a
 *     handle opened with no key (whose own receipts are unsigned)
 *   - offline, from receipt JSON: a keyring with only the old public key accepts the old
 *     receipt and answers BP_ENOTFOUND for the new one until the new key file is added
 *   - one changed field (the clock) is BP_ESIGNATURE
 *
 * Keys are made fresh on every run and only their public halves are written, to
 * DIR-keys/old.pub and new.pub: a verifier needs nothing else. To keep a key for later runs,
 * save both halves: bp_signing_key_save(&k, "signing.key", "signing.pub").
 *
 *   usage: signed_receipts DIR      (re-runnable: each run rotates through two new keys)
 */
#include <batpak/batpak.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "signed_receipts: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "signed_receipts: %s\n", what);
    return 1;
}

/* Open dir with key (NULL: no signing), append one event to entity, close. */
static bp_status sign_one(const char *dir, const bp_signing_key *key, const char *entity,
                          bp_receipt *r) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.signing_key = key;
    bp_store *s;
    const uint8_t payload[] = {0x81, 0xa4, 'p', 'a', 'g', 'e', 0x01}; /* {"page":1} */
    bp_status rc = bp_store_open(&s, dir, &o);
    if (!rc) rc = bp_append(s, r, entity, "docs", BP_KIND(9, 1), payload, sizeof payload);
    bp_status rc2 = bp_store_close(s);
    return rc ? rc : rc2;
}

/* A receipt through its JSON form and back, then checked against ring: what a verifier with
 * only the JSON and public key files does. */
static bp_status verify_offline(const bp_keyring *ring, const bp_receipt *r) {
    char *json;
    bp_receipt_doc *doc = NULL;
    bp_status rc = bp_receipt_to_json(r, &json);
    if (!rc) rc = bp_receipt_from_json(&doc, json, strlen(json));
    if (!rc) rc = bp_verify_receipt(ring, bp_receipt_doc_append(doc));
    bp_receipt_doc_free(doc);
    bp_free(json);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./signed-data";
    char keydir[1024], old_pub[1100], new_pub[1100];
    size_t n_dir = strlen(dir);
    while (n_dir > 1 && dir[n_dir - 1] == '/') /* "data/" -> "data-keys", not inside it */
        n_dir--;
    snprintf(keydir, sizeof keydir, "%.*s-keys", (int)n_dir, dir);
    snprintf(old_pub, sizeof old_pub, "%s/old.pub", keydir);
    snprintf(new_pub, sizeof new_pub, "%s/new.pub", keydir);
    mkdir(keydir, 0700);
    unlink(old_pub); /* key files are created exclusively: drop the previous run's */
    unlink(new_pub);

    bp_signing_key old_key, new_key;
    if (bp_keygen(&old_key) || bp_keygen(&new_key) ||
        bp_signing_key_save(&old_key, NULL, old_pub) ||
        bp_signing_key_save(&new_key, NULL, new_pub))
        return fail("keys");

    /* sign with the old key, rotate to the new one, then open with no key at all */
    bp_receipt r_old = BP_RECEIPT_INIT, r_new = BP_RECEIPT_INIT, r_none = BP_RECEIPT_INIT;
    bp_status rc = sign_one(dir, &old_key, "doc:handbook", &r_old);
    if (!rc) rc = sign_one(dir, &new_key, "doc:handbook", &r_new);
    if (!rc) rc = sign_one(dir, NULL, "doc:handbook", &r_none);
    bp_signing_key_wipe(&old_key);
    bp_signing_key_wipe(&new_key);
    if (rc) return fail("append");
    printf("old key   clock %llu signed by key %02x%02x%02x%02x...\n",
           (unsigned long long)r_old.clock, r_old.key_id[0], r_old.key_id[1], r_old.key_id[2],
           r_old.key_id[3]);
    printf("rotated   clock %llu signed by key %02x%02x%02x%02x...; opened with no key: clock "
           "%llu %s\n",
           (unsigned long long)r_new.clock, r_new.key_id[0], r_new.key_id[1], r_new.key_id[2],
           r_new.key_id[3], (unsigned long long)r_none.clock,
           r_none.is_signed ? "signed" : "unsigned");
    if (!r_old.is_signed || !r_new.is_signed || r_none.is_signed ||
        memcmp(r_old.key_id, r_new.key_id, 32) == 0)
        return wrong("the receipts are not signed as opened");

    /* in the store: the registry keeps every key it was opened with */
    bp_store *s;
    if (bp_store_open(&s, dir, NULL)) return fail("open");
    if (bp_store_verify_receipt(s, &r_old) || bp_store_verify_receipt(s, &r_new))
        return fail("verify against the registry");
    rc = bp_store_verify_receipt(s, &r_none);
    if (bp_store_close(s)) return fail("close");
    printf("registry  both signed receipts verify against %s/keys/; the unsigned one: %s\n", dir,
           bp_strerror(rc));
    if (rc != BP_EINVAL) return wrong("an unsigned receipt did not fail as unsigned");

    /* offline: receipt JSON and public key files, no store */
    bp_keyring *ring;
    if (bp_keyring_new(&ring)) return fail("keyring");
    bp_status a = bp_keyring_add_file(ring, old_pub), b = BP_OK, c = BP_OK, d = BP_OK;
    if (!a) a = verify_offline(ring, &r_old);
    if (!a) b = verify_offline(ring, &r_new); /* the new key is not in the ring yet */
    if (!a && b == BP_ENOTFOUND && !(c = bp_keyring_add_file(ring, new_pub)))
        c = verify_offline(ring, &r_new);
    bp_receipt forged = r_new;
    forged.clock += 1;
    if (!c) d = verify_offline(ring, &forged);
    bp_keyring_free(ring);
    printf("offline   old.pub only: old receipt %s, new receipt %s; with new.pub too: %s\n",
           bp_strerror(a), bp_strerror(b), bp_strerror(c));
    printf("tamper    the new receipt with its clock changed: %s\n", bp_strerror(d));
    if (a || b != BP_ENOTFOUND || c || d != BP_ESIGNATURE)
        return wrong("offline verification did not answer as expected");
    return 0;
}
