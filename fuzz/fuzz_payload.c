/* Fuzz target: the payload JSON codecs (library and CLI). The first byte picks: MessagePack bytes
 * as stored payloads rendered to JSON (untrusted: any payload in any store), or JSON text as given
 * on the command line, in NDJSON batches or by the Python binding turned into MessagePack by the
 * public bp_json_to_msgpack, which must accept exactly what a JSON parser accepts and render
 * back to the same value. */
#include "cli/cli.h"
#include "typed/typed_impl.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] & 1;
    data++;
    size--;
    if (which == 0) {
        json_t *j = bp_json_from_msgpack(data, size);
        if (j) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            cli_json_to_msgpack(j, &sb);
            json_t *again = bp_json_from_msgpack((const uint8_t *)sb.data, sb.size);
            if (!again || !json_equal(j, again)) abort();
            json_decref(again);
            msgpack_sbuffer_destroy(&sb);
            json_decref(j);
        }
    } else {
        json_error_t err;
        json_t *v = json_loadb((const char *)data, size,
                               JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
        uint8_t *mp = NULL;
        size_t n = 0;
        bp_status rc = bp_json_to_msgpack(&mp, &n, (const char *)data, size);
        if (rc == BP_ENOMEM) abort();
        if (!v != (rc != BP_OK)) abort(); /* the same texts accepted as a JSON parser's */
        if (v) {
            json_t *back = bp_json_from_msgpack(mp, n);
            /* every JSON value renders back, to the same value */
            if (!back || !json_equal(v, back)) abort();
            json_decref(back);
            json_decref(v);
        }
        bp_free(mp);
    }
    return 0;
}
