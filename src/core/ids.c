/* UUIDv7 (RFC 9562 §6.2, method 2 "monotonic random": the 74 bits after the
 * timestamp are random in a fresh millisecond and grow by a random step of
 * 1..2^32 within one), HLC, and text forms.
 *
 * Why a random step rather than +1: after a crash that lost unsynced events,
 * the reopened store continues from the last id on disk. With +1 it would
 * hand out again, to new events, the ids that receipts of the lost events
 * carried; with a random step the chance of that is 2^-32 per id. */
#include "core/core.h"

#include <stdio.h>

static void id_split(const uint8_t u[16], uint64_t *ms, uint32_t *a, uint64_t *b) {
    *ms = 0;
    for (int i = 0; i < 6; i++)
        *ms = (*ms << 8) | u[i];
    *a = ((uint32_t)(u[6] & 0x0F) << 8) | u[7];
    *b = (uint64_t)(u[8] & 0x3F);
    for (int i = 9; i < 16; i++)
        *b = (*b << 8) | u[i];
}

static void id_join(uint8_t u[16], uint64_t ms, uint32_t a, uint64_t b) {
    for (int i = 5; i >= 0; i--) {
        u[i] = (uint8_t)ms;
        ms >>= 8;
    }
    u[6] = (uint8_t)(0x70 | ((a >> 8) & 0x0F));
    u[7] = (uint8_t)a;
    for (int i = 15; i >= 9; i--) {
        u[i] = (uint8_t)b;
        b >>= 8;
    }
    u[8] = (uint8_t)(0x80 | (b & 0x3F));
}

void bp_idgen_next(bp_idgen *g, uint64_t ms, const uint8_t rnd[10], bp_id *out) {
    uint64_t lms, b;
    uint32_t a;
    ms &= 0xFFFFFFFFFFFFull;
    if (ms > g->last_ms || (g->last_ms == 0 && g->last[6] == 0)) {
        /* fresh millisecond: random counter with the top bit clear for headroom */
        a = ((uint32_t)(rnd[0] & 0x07) << 8) | rnd[1];
        b = (uint64_t)(rnd[2] & 0x3F);
        for (int i = 3; i < 10; i++)
            b = (b << 8) | rnd[i];
        lms = ms;
    } else {
        id_split(g->last, &lms, &a, &b);
        uint64_t step = 1 + ((uint64_t)rnd[0] | (uint64_t)rnd[1] << 8 | (uint64_t)rnd[2] << 16 |
                             (uint64_t)rnd[3] << 24);
        b += step;
        if (b >> 62) {
            b &= (1ull << 62) - 1;
            if (++a >> 12) {
                a = 0;
                lms++;
            }
        }
    }
    id_join(out->b, lms, a, b);
    memcpy(g->last, out->b, 16);
    g->last_ms = lms;
}

void bp_idgen_observe(bp_idgen *g, const bp_id *prev) {
    if (memcmp(prev->b, g->last, 16) > 0) {
        memcpy(g->last, prev->b, 16);
        g->last_ms = bp_id_time_ms(prev);
    }
}

uint64_t bp_id_time_ms(const bp_id *id) {
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id->b[i];
    return ms;
}

uint64_t bp_hlc_next(uint64_t last, uint64_t wall_ms) {
    uint64_t lw = BP_HLC_WALL_MS(last);
    wall_ms &= 0xFFFFFFFFFFFFull;
    if (wall_ms > lw) return wall_ms << 16;
    /* wall time did not advance: bump the logical counter (it carries into
     * the wall part when it overflows, keeping the value monotonic) */
    return last + 1;
}

void bp_id_format(const bp_id *id, char out[37]) {
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = hex[id->b[i] >> 4];
        out[o++] = hex[id->b[i] & 15];
    }
    out[o] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bp_status bp_id_parse(bp_id *out, const char *text) {
    if (!out || !text) return bp_err(BP_EINVAL, "event id: NULL argument");
    const char *p = text;
    for (int i = 0; i < 16; i++) {
        if (*p == '-' && (i == 4 || i == 6 || i == 8 || i == 10)) p++;
        int hi = hexval(p[0]);
        int lo = hi < 0 ? -1 : hexval(p[1]);
        if (hi < 0 || lo < 0)
            return bp_err(BP_EINVAL, "event id '%.64s': expected 32 hex digits (UUID form)", text);
        out->b[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (*p) return bp_err(BP_EINVAL, "event id '%.64s': trailing characters", text);
    return BP_OK;
}

void bp_hash_format(const bp_hash *h, char out[65]) {
    bp_hex_encode(h->b, 32, out);
}
