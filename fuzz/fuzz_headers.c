/* Fuzz target: the small structures: STORE file, segment header, segment trailer
 * (doc/FORMAT.md), the search for a footer behind a damaged trailer, and data key files. The first input
 * byte picks the decoder. What decodes must encode back
 * to the same bytes. */
#include "format/format.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t which = data[0] % 4;
    data++;
    size--;
    if (which == 0) {
        bp_store_ident id;
        if (bp_store_ident_decode(&id, data, size, "STORE") == BP_OK) {
            uint8_t out[BP_STORE_FILE_SIZE];
            bp_store_ident_encode(&id, out);
            if (size != sizeof out || memcmp(out, data, sizeof out)) abort();
        }
    } else if (which == 1) {
        bp_seg_header h;
        if (bp_seg_header_decode(&h, data, size, "segment") == BP_OK) {
            uint8_t out[BP_SEG_HEADER_SIZE];
            bp_seg_header_encode(&h, out);
            if (size < sizeof out || memcmp(out, data, sizeof out)) abort();
            (void)bp_seg_header_flags(data);
        }
    } else if (which == 3) {
        /* a data key file, checked against the entity it names itself (when it can) */
        size_t el = size >= 8 ? ((size_t)data[6] << 8 | data[7]) : 0;
        const char *entity = el && 8 + el <= size ? (const char *)data + 8 : "e";
        if (!el || 8 + el > size) el = 1;
        bp_dkey k;
        if (bp_dkey_file_decode(data, size, entity, el, &k) == BP_OK) {
            uint8_t out[BP_DKEY_FILE_MAX];
            if (el > BP_COORD_MAX) abort(); /* a u16 length passed the size check: keep it */
            size_t n = bp_dkey_file_encode(out, entity, el, &k);
            if (n != size || memcmp(out, data, n)) abort();
        }
    } else if (size >= BP_TRAILER_SIZE) {
        /* the file size: from 8 leading bytes when there are enough, else the input's */
        uint64_t off, fsize = size >= BP_TRAILER_SIZE + 8 ? bp_get_be64(data) : size;
        uint32_t len;
        (void)bp_footer_find(data, size, &off, &len);
        if (bp_trailer_decode(data + size - BP_TRAILER_SIZE, fsize, &off, &len)) {
            uint8_t t[BP_TRAILER_SIZE];
            bp_trailer_encode(t, off, len);
            if (memcmp(t, data + size - BP_TRAILER_SIZE, sizeof t)) abort();
            if (off + len + BP_TRAILER_SIZE != fsize) abort(); /* decode promises this */
        }
    }
    bp_err_clear();
    return 0;
}
