/*
 * core.h — internal: errors, ids, HLC, coordinate validation, event hashing,
 * small byte helpers. No I/O here.
 */
#ifndef BP_CORE_H
#define BP_CORE_H

#include "batpak/batpak.h"
#include <stdarg.h>
#include <string.h>

/* ---- errors: set the thread-local message and return the status */
int bp_err(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like bp_err, appending ": <strerror(-neg_errno)>". */
int bp_err_sys(int status, int neg_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bp_err_clear(void);

/* Rule 6 of doc/API.md: a struct the caller gives has struct_size set by its BP_X_INIT, and the
 * library accepts the sizes of released versions only (1.0: the struct's sizeof). p NULL is
 * not checked here. BP_SIZE_CHECK returns BP_EINVAL from the calling function, naming it. */
#define BP_SIZE_OK(p, T) ((p)->struct_size == sizeof(T))
#define BP_SIZE_CHECK(fn, p, T, INIT)                                                              \
    do {                                                                                           \
        if (!BP_SIZE_OK(p, T)) return bp_err_size(fn, #T, #INIT, (p)->struct_size, sizeof(T));     \
    } while (0)
/* Zero *p, a T whose struct_size was checked, but for its struct_size. */
#define BP_OUT_RESET(p, T) (memset((p), 0, sizeof(T)), (p)->struct_size = sizeof(T))
/* BP_EINVAL: "fn: T.struct_size is got, not want: start from INIT". */
int bp_err_size(const char *fn, const char *type, const char *init, uint32_t got, size_t want);
/* Like bp_err_sys with a va_list (neg_errno 0: no errno text). */
int bp_err_v(int status, int neg_errno, const char *fmt, va_list ap);
/* The calling thread's message, set by the calls above: what bp_last_error() returns. A
 * program that links format objects with its own copy of error.c (the CLI's bp_fmt, next to
 * libbatpak.so) reads their messages here, not through bp_last_error(). */
const char *bp_err_message(void);
/* The text of an errno value, thread-safe (buf may go unused). */
#define BP_ERRNO_TEXT_MAX 128
const char *bp_errno_text(int errnum, char buf[BP_ERRNO_TEXT_MAX]);

/* ---- big-endian helpers */
static inline void bp_put_be16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void bp_put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void bp_put_be64(uint8_t *p, uint64_t v) {
    bp_put_be32(p, (uint32_t)(v >> 32));
    bp_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t bp_get_be16(const uint8_t *p) {
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t bp_get_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t bp_get_be64(const uint8_t *p) {
    return ((uint64_t)bp_get_be32(p) << 32) | bp_get_be32(p + 4);
}

/* ---- UUIDv7 generator. Invariant: every id it returns is greater (as 16
 * big-endian bytes) than the previous one, even within one millisecond or if
 * the wall clock steps back. Not thread-safe: the store's write lock guards it. */
typedef struct bp_idgen {
    uint64_t last_ms;
    uint8_t last[16];
} bp_idgen;
/* ms: the wall time to embed; rnd: 10 fresh random bytes. */
void bp_idgen_next(bp_idgen *g, uint64_t ms, const uint8_t rnd[10], bp_id *out);
/* Make later ids sort after prev (used after open, with the store's last id). */
void bp_idgen_observe(bp_idgen *g, const bp_id *prev);

/* ---- HLC: wall ms << 16 | logical. Invariant: bp_hlc_next returns a value
 * strictly greater than every value it returned or observed before. */
uint64_t bp_hlc_next(uint64_t last, uint64_t wall_ms);

/* ---- validation */
/* bp_coord_validate of both coordinates; allow_reserved lets the library's own batpak: names
 * through (system events, imports). */
bp_status bp_coord_validate_sys(const char *entity, const char *scope, bool allow_reserved);
bp_status bp_validate_app_kind(uint16_t kind);
/* A name that becomes part of a file name (a worker's checkpoint id, a projection's name):
 * 1..BP_NAME_MAX bytes of [A-Za-z0-9._-]; else BP_EINVAL saying what must be what. */
#define BP_NAME_MAX 63
bp_status bp_name_validate(const char *what, const char *name);
/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool bp_utf8_valid(const unsigned char *s, size_t n);

/* ---- event hash (doc/FORMAT.md §Event hash) */
typedef struct bp_event_fields {
    bp_id event_id;
    bp_id correlation_id;
    bp_id causation_id;
    bool has_causation;
    uint64_t global_seq, clock, hlc;
    uint16_t kind, flags;
    bp_hash prev_hash;
    uint64_t batch_id;
    uint32_t batch_index, batch_count;
    const char *entity;
    size_t entity_len;
    const char *scope;
    size_t scope_len;
    const char *idem_key;
    size_t idem_len;
    const uint8_t *payload;
    size_t payload_len;
} bp_event_fields;

void bp_event_hash(const bp_event_fields *f, bp_hash *out);
/* bp_event_hash of n events (*out[i] for *f[i]): the same hashes, several at once where the
 * BLAKE3 build allows (the library's own copy of its sources: BP_BLAKE3_INTERNALS). */
void bp_event_hash_many(const bp_event_fields *const *f, bp_hash *const *out, size_t n);

/* ---- BLAKE3-256 of n bytes; lower-case hex (2n chars + NUL) and its strict parser */
void bp_blake3(const void *p, size_t n, uint8_t out[32]);
/* 0 when libsodium is ready, else BP_EIO with a message. Thread-safe, idempotent
 * (sodium.c). */
bp_status bp_sodium_ready(void);
void bp_hex_encode(const uint8_t *p, size_t n, char *out);
/* A fast non-cryptographic hash of n bytes for in-memory tables (FNV-1a, mixed). */
uint64_t bp_str_hash(const char *s, size_t n);
/* Exactly 2n hex digits (either case) into out; false when text is anything else. */
bool bp_hex_decode(const char *text, size_t text_len, uint8_t *out, size_t n);

#endif
