/* Fuzz target: untrusted receipts and denial payloads. The first byte picks: receipt JSON
 * as `batpak verify-receipt` reads it (a parsed receipt must re-encode and parse back to the
 * same receipt, and verifying it against an empty keyring must fail cleanly), or a
 * SYSTEM_DENIAL payload as any store may hold (a decoded one must re-encode to the same bytes). */
#include "format/format.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] & 1;
    data++;
    size--;
    if (which == 0) {
        bp_receipt_doc *d;
        if (bp_receipt_from_json(&d, (const char *)data, size) != BP_OK) return 0;
        const bp_receipt *a = bp_receipt_doc_append(d);
        const bp_denial_receipt *dn = bp_receipt_doc_denial(d);
        char *text = NULL;
        bp_status rc = a ? bp_receipt_to_json(a, &text) : bp_denial_receipt_to_json(dn, &text);
        if (rc) abort();
        bp_receipt_doc *again;
        if (bp_receipt_from_json(&again, text, strlen(text)) != BP_OK) abort();
        if (a && memcmp(a, bp_receipt_doc_append(again), sizeof *a) != 0) abort();
        if (dn) { /* the same fields, and the same event receipt behind each event pointer */
            bp_denial_receipt x = *dn, y = *bp_receipt_doc_denial(again);
            if (memcmp(x.event, y.event, sizeof *x.event) != 0) abort();
            x.event = y.event = NULL;
            if (memcmp(&x, &y, sizeof x) != 0) abort();
        }
        bp_keyring *kr;
        if (bp_keyring_new(&kr)) abort();
        rc = a ? bp_verify_receipt(kr, a) : bp_verify_denial_receipt(kr, dn);
        if (rc == BP_OK) abort(); /* nothing verifies without a key */
        bp_keyring_free(kr);
        bp_free(text);
        bp_receipt_doc_free(again);
        bp_receipt_doc_free(d);
    } else {
        static bp_denial_record rec = BP_DENIAL_RECORD_INIT;
        if (bp_denial_record_decode(&rec, data, size) != BP_OK) return 0;
        bp_buf b = {0};
        if (bp_denial_payload_encode(&b, rec.denied_kind, &rec.proposal_digest, rec.denials,
                                     rec.n_denials))
            abort();
        static bp_denial_record back = BP_DENIAL_RECORD_INIT;
        if (bp_denial_record_decode(&back, b.data, b.len) != BP_OK) abort();
        if (memcmp(&rec, &back, sizeof rec) != 0) abort();
        bp_buf_free(&b);
    }
    return 0;
}
