/*
 * mp.h — the format layer's strict MessagePack reader (frames, denial payloads,
 * typed payloads).
 *
 * Reads from a bounded buffer, allocates nothing, and accepts any valid
 * encoding of the type asked for (not only the shortest). Every function
 * returns false, with the position unspecified, when the next value is not of
 * that type, is out of the given range, or runs past the end. Static inline:
 * the frame decoder is on the read path.
 */
#ifndef BP_FORMAT_MP_H
#define BP_FORMAT_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct bp_mp_rd {
    const uint8_t *p, *end;
} bp_mp_rd;

/* n (<= 8) big-endian bytes. */
static inline bool bp_mp_be(bp_mp_rd *r, size_t n, uint64_t *out) {
    if ((size_t)(r->end - r->p) < n) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[i];
    r->p += n;
    *out = v;
    return true;
}

static inline bool bp_mp_nil(bp_mp_rd *r) {
    if (r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

/* An unsigned integer in 0..max (positive fixint or uint 8/16/32/64). */
static inline bool bp_mp_uint(bp_mp_rd *r, uint64_t max, uint64_t *out) {
    if (r->p >= r->end) return false;
    uint8_t t = *r->p++;
    if (t < 0x80) {
        *out = t;
        return t <= max;
    }
    if (t < 0xcc || t > 0xcf || !bp_mp_be(r, (size_t)1 << (t - 0xcc), out)) return false;
    return *out <= max;
}

/* A signed integer in min..max (any fixint, uint or int encoding). */
static inline bool bp_mp_int(bp_mp_rd *r, int64_t min, int64_t max, int64_t *out) {
    if (r->p >= r->end) return false;
    uint8_t t = *r->p;
    uint64_t u;
    if (t >= 0xe0) { /* negative fixint */
        r->p++;
        *out = (int8_t)t;
    } else if (t >= 0xd0 && t <= 0xd3) { /* int 8..64 */
        size_t n = (size_t)1 << (t - 0xd0);
        r->p++;
        if (!bp_mp_be(r, n, &u)) return false;
        if (n < 8 && (u >> (8 * n - 1))) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        *out = (int64_t)u;
    } else {
        if (!bp_mp_uint(r, INT64_MAX, &u)) return false;
        *out = (int64_t)u;
    }
    return *out >= min && *out <= max;
}

/* A bin (str = false) or str of min..max bytes; *data points into the buffer. */
static inline bool bp_mp_raw(bp_mp_rd *r, bool str, size_t min, size_t max, const uint8_t **data,
                             size_t *len) {
    if (r->p >= r->end) return false;
    uint8_t t = *r->p++;
    size_t hn;
    uint64_t n = 0;
    if (str && (t & 0xe0) == 0xa0) {
        hn = 0;
        n = t & 0x1f;
    } else if (t == (str ? 0xd9 : 0xc4)) {
        hn = 1;
    } else if (t == (str ? 0xda : 0xc5)) {
        hn = 2;
    } else if (t == (str ? 0xdb : 0xc6)) {
        hn = 4;
    } else {
        return false;
    }
    if (hn && !bp_mp_be(r, hn, &n)) return false;
    if (n < min || n > max || (uint64_t)(r->end - r->p) < n) return false;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return true;
}

/* A map (map = true) or array header of 0..max entries. */
static inline bool bp_mp_count(bp_mp_rd *r, bool map, uint32_t max, uint32_t *n) {
    if (r->p >= r->end) return false;
    uint8_t t = *r->p++, fix = map ? 0x80 : 0x90, w16 = map ? 0xde : 0xdc;
    uint64_t c;
    if ((t & 0xf0) == fix)
        c = t & 0x0f;
    else if (t != w16 && t != w16 + 1)
        return false;
    else if (!bp_mp_be(r, t == w16 ? 2 : 4, &c))
        return false;
    if (c > max) return false;
    *n = (uint32_t)c;
    return true;
}

static inline bool bp_mp_bool(bp_mp_rd *r, bool *out) {
    if (r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3)) return false;
    *out = *r->p++ == 0xc3;
    return true;
}

/* A float 32 or float 64, as a double. */
static inline bool bp_mp_float(bp_mp_rd *r, double *out) {
    if (r->p >= r->end || (*r->p != 0xca && *r->p != 0xcb)) return false;
    bool f32 = *r->p++ == 0xca;
    uint64_t bits;
    if (!bp_mp_be(r, f32 ? 4 : 8, &bits)) return false;
    if (f32) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, 4);
        *out = f;
    } else {
        memcpy(out, &bits, 8);
    }
    return true;
}

#endif
