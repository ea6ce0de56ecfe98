/* Fuzz target: typed payload decoding (first byte 0) and projection snapshot files (1).
 * A payload that decodes re-encodes and decodes to the same struct and has a JSON form; a
 * snapshot that decodes encodes back to the same bytes. */
#include "format/format.h"
#include "fuzz_types.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] & 1;
    data++;
    size--;
    if (which == 0) {
        fz_t v, again;
        if (bp_type_decode(&fz_t_type, &v, data, size) != BP_OK) return 0;
        uint8_t buf[1024];
        size_t len;
        if (bp_type_encoded_max(&fz_t_type) > sizeof buf) abort();
        if (bp_type_encode(&fz_t_type, buf, sizeof buf, &len, &v) != BP_OK) abort();
        if (bp_type_decode(&fz_t_type, &again, buf, len) != BP_OK) abort();
        if (memcmp(&v, &again, sizeof v) != 0) abort();
        char *json;
        if (bp_type_to_json(&fz_t_type, &json, &v) != BP_OK) abort();
        bp_free(json);
    } else {
        bp_projsnap sn;
        if (bp_projsnap_decode(data, size, &sn) != BP_OK) return 0;
        bp_buf b = {0};
        if (bp_projsnap_encode(&b, &sn)) abort();
        if (b.len != size || memcmp(b.data, data, size) != 0) abort();
        bp_buf_free(&b);
    }
    return 0;
}
