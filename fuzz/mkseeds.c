/* Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from a small store
 * built here: frame bodies, the STORE file, a segment header and trailer, index blocks of a
 * footer and of index.ckpt, segment index files, payloads, and edit lists for
 * fuzz_store_dir.
 *   mkseeds OUTDIR        (make fuzz-seeds: OUTDIR = fuzz/corpus) */
#include "format/format.h"
#include "format/six.h"
#include "fuzz_types.h"

#include <batpak/batpak.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *out;

static void put(const char *target, const char *name, const void *a, size_t na, const void *b,
                size_t nb) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, na, f) != na || (nb && fwrite(b, 1, nb, f) != nb) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)l + 1);
    if (!p || fread(p, 1, (size_t)l, f) != (size_t)l) exit(1);
    fclose(f);
    *n = (size_t)l;
    return p;
}

static bp_status deny_all(void *data, bp_store *s, const bp_proposal *p, bp_denial *d) {
    (void)data;
    (void)s;
    (void)p;
    return bp_deny(d, -7, "no");
}

/* fuzz_receipt: signed append and denial receipts as JSON (selector 0), a denial payload (1). */
static int receipt_seeds(const char *dir) {
    bp_signing_key k;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.signing_key = &k;
    bp_store *s;
    bp_receipt r = BP_RECEIPT_INIT;
    bp_gate_set *gs;
    bp_verdict *v;
    bp_receipt dr_event = BP_RECEIPT_INIT;
    bp_denial_receipt dr = BP_DENIAL_RECEIPT_INIT;
    dr.event = &dr_event;
    bp_proposal p = {sizeof(bp_proposal), "acct:1", "bank", 0x1001, "\x01", 1, NULL, NULL};
    if (bp_keygen(&k) || bp_store_open(&s, dir, &o) ||
        bp_append(s, &r, "acct:1", "bank", 0x1001, "\x01", 1) || bp_gate_set_new(&gs) ||
        bp_gate_set_add(gs, "g", deny_all, NULL) || bp_evaluate(s, &v, gs, &p, 0) != BP_EDENIED ||
        bp_append_denial(s, &dr, v, &p))
        return 1;
    char *js;
    if (bp_receipt_to_json(&r, &js)) return 1;
    put("receipt", "append", "\0", 1, js, strlen(js));
    bp_free(js);
    if (bp_denial_receipt_to_json(&dr, &js)) return 1;
    put("receipt", "denial", "\0", 1, js, strlen(js));
    bp_free(js);
    bp_event *ev;
    if (bp_get(s, &ev, &dr.event->event_id)) return 1;
    put("receipt", "denial-payload", "\1", 1, ev->payload, ev->payload_len);
    bp_event_free(ev);
    bp_verdict_free(v);
    bp_gate_set_free(gs);
    bp_signing_key_wipe(&k);
    if (bp_store_close(s)) return 1;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) ? 1 : 0;
}

/* Typed payloads of fz_t and projection snapshots for fuzz_typed. */
static void typed_seeds(void) {
    fz_t v;
    memset(&v, 0, sizeof v);
    uint8_t buf[1024];
    size_t len;
    for (int k = 0; k < 3; k++) {
        v.b = k & 1;
        v.i8 = (int8_t)(-100 + k);
        v.i16 = (int16_t)(-30000 + k);
        v.i32 = -2000000000 + k;
        v.i64 = INT64_MIN + k;
        v.u8 = 200;
        v.u16 = 60000;
        v.u32 = 4000000000u;
        v.u64 = UINT64_MAX - (uint64_t)k;
        v.f32 = 1.5f * (float)k;
        v.f64 = -2.25 * k;
        snprintf(v.s, sizeof v.s, "caf\xc3\xa9 %d", k);
        v.by_len = (uint32_t)(k * 3);
        memset(v.by, 0xab, v.by_len);
        v.has_oi = k != 1;
        v.oi = 42;
        v.has_os = k == 2;
        memcpy(v.os, "opt", 4);
        v.ai_count = (uint32_t)k + 1;
        v.ai[0] = -1;
        v.af_count = (uint32_t)(k % 3);
        if (bp_type_encode(&fz_t_type, buf, sizeof buf, &len, &v)) exit(1);
        char name[32];
        snprintf(name, sizeof name, "payload-%d", k);
        put("typed", name, "\x00", 1, buf, len);
    }
    const uint8_t state[24] = {1, 2, 3};
    bp_projsnap sn = {"account", 7, 1, "acct:1", 6, 3, {{9}}, state, sizeof state};
    bp_buf b = {0};
    if (bp_projsnap_encode(&b, &sn)) exit(1);
    put("typed", "snapshot", "\x01", 1, b.data, b.len);
    bp_buf_free(&b);
}

/* fuzz_six: the segment index of a sealed segment (from its footer: dense, ids in order), and
 * one built by hand with holes in its seqs, ids out of order and idempotency keys. */
static void six_seeds(const uint8_t *store, const uint8_t *seg, size_t sn, uint64_t foff,
                      uint32_t flen) {
    bp_iblock blk;
    if (bp_footer_decode(&blk, seg + foff, flen, "footer") != BP_OK) exit(1);
    uint64_t *clock = malloc(sizeof(uint64_t) * (blk.n_entities + 1u));
    if (!clock) exit(1);
    for (uint32_t e = 0; e < blk.n_entities; e++)
        clock[e] = 1; /* segment 1: every entity starts there */
    bp_six_pair pair = {1, {0}, sn, foff, bp_get_be32(seg + foff + flen - 4)};
    memcpy(pair.uuid, store + 16, 16);
    bp_buf b = {0};
    if (bp_six_encode(&b, &blk, clock, &pair)) exit(1);
    put("six", "segment-1", b.data, b.len, NULL, 0);
    free(clock);
    bp_iblock_free(&blk);

    bp_irec recs[5];
    memset(recs, 0, sizeof recs);
    static const uint8_t idlo[5] = {9, 2, 7, 3, 200};
    static const uint32_t ent[5] = {0, 1, 0, 2, 1}, scope[5] = {0, 0, 1, 0, 1};
    static const uint16_t kind[5] = {0x1001, 0x1002, 0x1001, 0xFFFF, 0x0001};
    uint32_t at = BP_SEG_HEADER_SIZE;
    for (int i = 0; i < 5; i++) {
        recs[i].id.b[0] = 0x01;
        recs[i].id.b[15] = idlo[i];
        recs[i].hlc = 1000 + (uint64_t)i;
        recs[i].offset = at;
        recs[i].frame_len = 40 + (uint32_t)i;
        recs[i].entity = ent[i];
        recs[i].scope = scope[i];
        recs[i].kind = kind[i];
        at += recs[i].frame_len;
    }
    bp_iname ents[3] = {{"order:2", 7}, {"acct:1", 6}, {"acct:10", 7}};
    bp_iname scopes[2] = {{"misc", 4}, {"bank", 4}};
    bp_iidem idems[3] = {{0, "k-1", 3}, {3, "k-2", 3}, {4, "k-1", 3}};
    uint64_t seqs[5] = {40, 41, 45, 46, 90}, clocks[3] = {3, 1, 17};
    bp_iblock h = {.first_seq = 40,
                   .recs = recs,
                   .n_recs = 5,
                   .entities = ents,
                   .n_entities = 3,
                   .scopes = scopes,
                   .n_scopes = 2,
                   .idems = idems,
                   .n_idems = 3,
                   .seqs = seqs};
    bp_six_pair hp = {7, {0}, at + 100, at, 0x01020304};
    memcpy(hp.uuid, store + 16, 16);
    b.len = 0;
    if (bp_six_encode(&b, &h, clocks, &hp)) exit(1);
    put("six", "holes-ids-out-of-order", b.data, b.len, NULL, 0);
    bp_buf_free(&b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mkseeds OUTDIR\n");
        return 2;
    }
    out = argv[1];
    mkdir(out, 0755);
    typed_seeds();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/.mkseeds-store", out);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    if (bp_store_open(&s, dir, &o)) return 1;
    bp_id first = {{0}};
    for (int i = 0; i < 30; i++) {
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        ao.idempotency_key = i % 5 == 0 ? "key" : NULL;
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        if (ao.idempotency_key) ao.idempotency_key = key;
        if (i > 0) ao.causation_id = &first;
        const uint8_t payload[] = {0x81, 0xa6, 'a', 'm', 'o', 'u', 'n', 't', (uint8_t)i};
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_ex(s, &r, i % 2 ? "acct:1" : "acct:2", "bank", 0x1001, payload,
                         sizeof payload, &ao))
            return 1;
        if (i == 0) first = r.event_id;
        if (i == 10) {
            bp_batch_item it[2] = {{"acct:1", "bank", 0x1002, "a", 1, NULL},
                                   {"acct:3", "misc", 0x1003, "", 0, NULL}};
            if (bp_append_batch(s, NULL, it, 2)) return 1;
        }
    }
    if (bp_store_close(s)) return 1;

    size_t n;
    char path[700];
    snprintf(path, sizeof path, "%s/STORE", dir);
    uint8_t *store = slurp(path, &n);
    put("headers", "store", "\x00", 1, store, n);
    snprintf(path, sizeof path, "%s/segments/000001.fbat", dir);
    size_t sn;
    uint8_t *seg = slurp(path, &sn);
    put("headers", "segment-header", "\x01", 1, seg, BP_SEG_HEADER_SIZE);
    uint8_t tr[1 + 8 + BP_TRAILER_SIZE];
    tr[0] = 2; /* selector, then the be64 file size, then the trailer */
    bp_put_be64(tr + 1, sn);
    memcpy(tr + 9, seg + sn - BP_TRAILER_SIZE, BP_TRAILER_SIZE);
    put("headers", "trailer", tr, sizeof tr, NULL, 0);
    put("headers", "sealed-segment-tail", "\x02", 1, seg + sn - 256, 256);
    bp_dkey dk;
    memset(&dk, 0x5a, sizeof dk);
    uint8_t dkf[BP_DKEY_FILE_MAX];
    put("headers", "data-key", "\x03", 1, dkf, bp_dkey_file_encode(dkf, "user:ada", 8, &dk));

    /* frames: bodies of every frame of segment 1 */
    int k = 0;
    for (size_t at = BP_SEG_HEADER_SIZE; at < sn && k < 12;) {
        uint32_t fl;
        if (bp_frame_peek(seg + at, sn - at, &fl) != BP_FRAME_OK) break;
        char name[32];
        snprintf(name, sizeof name, "frame-%02d", k++);
        put("frame", name, seg + at + BP_FRAME_PREFIX, fl - BP_FRAME_PREFIX, NULL, 0);
        at += fl;
    }
    /* index blocks: the footer's and the checkpoint's */
    uint64_t foff;
    uint32_t flen;
    if (bp_trailer_decode(seg + sn - BP_TRAILER_SIZE, sn, &foff, &flen))
        put("block", "footer-block", seg + foff + 12, flen - 16, NULL, 0);
    snprintf(path, sizeof path, "%s/index.ckpt", dir);
    size_t cn;
    uint8_t *ck = slurp(path, &cn);
    put("block", "ckpt-block", ck + 64, cn - 68, NULL, 0);
    put("block", "ckpt-whole", ck, cn, NULL, 0);
    put("block", "footer-whole", seg + foff, flen, NULL, 0);
    six_seeds(store, seg, sn, foff, flen);
    /* fuzz_entdir: the store's entity checkpoint (written at its last seal) */
    snprintf(path, sizeof path, "%s/entities.ckpt", dir);
    size_t en;
    uint8_t *ent = slurp(path, &en);
    put("entdir", "store", ent, en, NULL, 0);
    free(ent);

    /* payloads: MessagePack (selector 0) and JSON text (selector 1) */
    const uint8_t mp[] = {0x00, 0x83, 0xa1, 'a',  0x01, 0xa1, 'b',  0x92, 0xc3, 0xc0, 0xa1,
                          'c',  0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
    put("payload", "msgpack-map", mp, sizeof mp, NULL, 0);
    const char *js[] = {"\x01{\"amount\":100,\"to\":\"acct:2\",\"tags\":[1,2.5,null,true]}",
                        "\x01[\"\\u0000x\", -9223372036854775808, 1e300, {}]", "\x01\"text\""};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "json-%d", i);
        put("payload", name, js[i], strlen(js[i]), NULL, 0);
    }

    /* store directory edits: none; one bit in a frame; a cut tail; no checkpoint */
    put("store_dir", "no-edit", "", 0, NULL, 0);
    const uint8_t e1[] = {2, 100, 0, 0x10};
    put("store_dir", "flip-in-segment", e1, sizeof e1, NULL, 0);
    const uint8_t e2[] = {0xFE, 0x00, 0x02, 0, 3, 0, 0, 0};
    put("store_dir", "cut-segment", e2, sizeof e2, NULL, 0);
    const uint8_t e3[] = {0xFF, 0, 0, 0, 1, 0, 0, 0};
    put("store_dir", "no-checkpoint", e3, sizeof e3, NULL, 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return receipt_seeds(dir);
}
