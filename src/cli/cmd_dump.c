/* batpak dump: a frame-by-frame NDJSON dump of the files of a store, read
 * straight from disk as doc/FORMAT.md (format version 1) describes them.
 *
 * It opens no store and takes no lock, so it also works on a store that does
 * not open; a writer appending at the same time can make the last frame look
 * torn. Every record is one line with "type" first: store, checkpoint,
 * segment, frame, footer, then one summary. Hashes are not recomputed (that is
 * `batpak verify`); CRCs, lengths, structure and cross-references are checked.
 */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define STORE_SIZE 48
#define SEG_HEADER_SIZE 48
#define SEG_TRAILER_SIZE 16
#define FRAME_PREFIX 8
#define FRAME_MIN_BODY 16
#define FRAME_MAX_BODY (BP_MAX_PAYLOAD + 4096u)
#define FORMAT_VERSION 1

typedef struct dump_state {
    cli_ctx ctx;
    bool with_payloads;
    uint8_t store_uuid[16];
    bool have_uuid;
    uint64_t segments, frames, problems, next_seq;
} dump_state;

/* --------------------------------------------------------------- bytes */

static uint16_t be16(const uint8_t *p) {
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) {
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
static uint32_t crc_of(const uint8_t *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* A bounds-checked reader; once past the end, `bad` stays set and reads give 0. */
typedef struct cursor {
    const uint8_t *p;
    size_t n, at;
    bool bad;
} cursor;

static const uint8_t *take(cursor *c, size_t k) {
    if (c->bad || c->n - c->at < k) {
        c->bad = true;
        return NULL;
    }
    c->at += k;
    return c->p + c->at - k;
}
static uint64_t take_u(cursor *c, size_t k) {
    const uint8_t *p = take(c, k);
    return !p ? 0 : k == 2 ? be16(p) : k == 4 ? be32(p) : be64(p);
}

/* Read a whole file; NULL with errno set when it cannot be read. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            uint8_t *grown = realloc(buf, cap);
            if (!grown) cli_oom();
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* Note a problem on a record. */
static void problem(dump_state *d, json_t *rec, const char *what) {
    d->problems++;
    if (!json_object_get(rec, "problem")) cli_json_set(rec, "problem", json_string(what));
}

static json_t *record(const char *type) {
    json_t *o = json_object();
    if (!o) cli_oom();
    cli_json_set(o, "type", json_string(type));
    return o;
}

static json_t *uuid_json(const uint8_t *p) {
    bp_id id;
    memcpy(id.b, p, 16);
    return cli_json_id(&id);
}

/* --------------------------------------------------------------- STORE */

static int dump_store_file(dump_state *d, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/STORE", dir);
    size_t n;
    uint8_t *p = read_file(path, &n);
    if (!p)
        return cli_fail(&d->ctx, errno == ENOENT ? CLI_ENOTFOUND : CLI_EIO, "%s: %s", path,
                        errno == ENOENT ? "no batpak store here" : strerror(errno));
    json_t *o = record("store");
    cli_json_set(o, "file", json_string("STORE"));
    cli_json_set(o, "size", cli_json_u64(n));
    if (n >= STORE_SIZE) {
        cli_json_set(o, "magic_ok", json_boolean(memcmp(p, "BPSTORE\0", 8) == 0));
        cli_json_set(o, "version", json_integer(be32(p + 8)));
        cli_json_set(o, "store_uuid", uuid_json(p + 16));
        cli_json_set(o, "created_ms", cli_json_u64(be64(p + 32)));
        bool crc_ok = crc_of(p, 44) == be32(p + 44);
        cli_json_set(o, "crc_ok", json_boolean(crc_ok));
        memcpy(d->store_uuid, p + 16, 16);
        d->have_uuid = true;
        if (memcmp(p, "BPSTORE\0", 8) != 0) problem(d, o, "bad magic");
        if (be32(p + 8) != FORMAT_VERSION) problem(d, o, "unknown format version");
        if (n != STORE_SIZE) problem(d, o, "size is not 48 bytes");
        if (!crc_ok) problem(d, o, "CRC mismatch");
    } else {
        problem(d, o, "shorter than 48 bytes");
    }
    cli_print_json(o);
    free(p);
    return CLI_OK;
}

/* --------------------------------------------------------- index blocks */

/* Walk an index block (FORMAT.md "Index block") and put its counts on rec. */
static bool index_block_json(const uint8_t *p, size_t n, json_t *rec) {
    cursor c = {p, n, 0, false};
    uint64_t first_seq = take_u(&c, 8);
    uint64_t n_entities = take_u(&c, 4);
    for (uint64_t i = 0; i < n_entities && !c.bad; i++)
        take(&c, take_u(&c, 2) + 32);
    uint64_t n_scopes = take_u(&c, 4);
    for (uint64_t i = 0; i < n_scopes && !c.bad; i++)
        take(&c, take_u(&c, 2));
    uint64_t n_records = take_u(&c, 4);
    take(&c, n_records * 48);
    uint64_t n_idem = take_u(&c, 4);
    for (uint64_t i = 0; i < n_idem && !c.bad; i++) {
        take_u(&c, 4);
        take(&c, take_u(&c, 2));
    }
    cli_json_set(rec, "first_seq", cli_json_u64(first_seq));
    cli_json_set(rec, "entities", cli_json_u64(n_entities));
    cli_json_set(rec, "scopes", cli_json_u64(n_scopes));
    cli_json_set(rec, "records", cli_json_u64(n_records));
    cli_json_set(rec, "idempotency_keys", cli_json_u64(n_idem));
    return !c.bad && c.at == n;
}

static void dump_checkpoint(dump_state *d, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/index.ckpt", dir);
    size_t n;
    uint8_t *p = read_file(path, &n);
    if (!p) return; /* optional: a cache */
    json_t *o = record("checkpoint");
    cli_json_set(o, "file", json_string("index.ckpt"));
    cli_json_set(o, "size", cli_json_u64(n));
    if (n >= 68) {
        cli_json_set(o, "magic_ok", json_boolean(memcmp(p, "BPCK", 4) == 0));
        cli_json_set(o, "version", json_integer(be16(p + 4)));
        cli_json_set(o, "store_uuid", uuid_json(p + 8));
        cli_json_set(o, "covered_segment", json_integer(be32(p + 24)));
        cli_json_set(o, "covered_offset", cli_json_u64(be64(p + 28)));
        cli_json_set(o, "last_hlc", cli_json_u64(be64(p + 36)));
        cli_json_set(o, "last_event_id", uuid_json(p + 44));
        uint32_t block_len = be32(p + 60);
        bool crc_ok = crc_of(p, n - 4) == be32(p + n - 4);
        cli_json_set(o, "crc_ok", json_boolean(crc_ok));
        /* a bad checkpoint is a cache miss for open, not corruption: flagged, not counted */
        bool same_store = !d->have_uuid || memcmp(p + 8, d->store_uuid, 16) == 0;
        bool parsed = block_len == n - 68 && index_block_json(p + 64, block_len, o);
        cli_json_set(o, "usable", json_boolean(crc_ok && same_store && parsed));
    } else {
        cli_json_set(o, "usable", json_false());
    }
    cli_print_json(o);
    free(p);
}

/* -------------------------------------------------------------- frames */

static json_t *obj_bytes(const msgpack_object *o, size_t want, bool hash) {
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != want) return NULL;
    if (!hash) return uuid_json((const uint8_t *)o->via.bin.ptr);
    return cli_json_hex((const uint8_t *)o->via.bin.ptr, want);
}

static json_t *obj_uint(const msgpack_object *o) {
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? cli_json_u64(o->via.u64) : NULL;
}

static json_t *obj_str_or_nil(const msgpack_object *o) {
    if (o->type == MSGPACK_OBJECT_NIL) return json_null();
    if (o->type != MSGPACK_OBJECT_STR) return NULL;
    return cli_json_text(o->via.str.ptr, o->via.str.size);
}

static json_t *obj_batch(const msgpack_object *o) {
    if (o->type == MSGPACK_OBJECT_NIL) return json_null();
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) return NULL;
    json_t *a = json_array();
    for (uint32_t i = 0; i < 3; i++) {
        json_t *v = obj_uint(&o->via.array.ptr[i]);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Put the 16 body fields on rec. False when the body is not a version-1 frame body. */
static bool frame_body_json(dump_state *d, const msgpack_object *body, json_t *rec) {
    if (body->type != MSGPACK_OBJECT_ARRAY || body->via.array.size != 16) return false;
    const msgpack_object *f = body->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[0].via.u64 != FORMAT_VERSION)
        return false;
    if (f[15].type != MSGPACK_OBJECT_BIN) return false;
    static const char *names[] = {
        "event_id", "correlation_id", "causation_id", "global_seq",     "clock",
        "hlc",      "kind",           "flags",        "prev_hash",      "event_hash",
        "entity",   "scope",          "batch",        "idempotency_key"};
    for (int i = 1; i <= 14; i++) {
        json_t *v =
            i <= 2   ? obj_bytes(&f[i], 16, false)
            : i == 3 ? (f[3].type == MSGPACK_OBJECT_NIL ? json_null() : obj_bytes(&f[3], 16, false))
            : i <= 8 ? obj_uint(&f[i])
            : i <= 10 ? obj_bytes(&f[i], 32, true)
            : i <= 12 ? (f[i].type == MSGPACK_OBJECT_STR ? obj_str_or_nil(&f[i]) : NULL)
            : i == 13 ? obj_batch(&f[i])
                      : obj_str_or_nil(&f[i]);
        if (!v) return false;
        cli_json_set(rec, names[i - 1], v);
    }
    const uint8_t *payload = (const uint8_t *)f[15].via.bin.ptr;
    cli_json_set(rec, "payload_len", cli_json_u64(f[15].via.bin.size));
    if (d->with_payloads) cli_json_set_payload(rec, payload, f[15].via.bin.size);
    uint64_t seq = f[4].via.u64;
    if (d->next_seq && seq != d->next_seq) problem(d, rec, "global_seq is not the previous + 1");
    d->next_seq = seq + 1;
    return true;
}

static void frame_decode(dump_state *d, const uint8_t *body, size_t len, json_t *rec) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int ret = msgpack_unpack_next(&u, (const char *)body, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS || off != len || !frame_body_json(d, &u.data, rec))
        problem(d, rec, "CRC-valid body that is not a version-1 frame body");
    msgpack_unpacked_destroy(&u);
}

/* Why the frame at p[at..end) is not a valid frame, or NULL when it is; *len gets its length. */
static const char *frame_check(const uint8_t *p, size_t at, size_t end, uint32_t *len) {
    if (end - at < FRAME_PREFIX) return "short frame prefix";
    *len = be32(p + at);
    if (*len < FRAME_MIN_BODY || *len > FRAME_MAX_BODY) return "frame length out of range";
    if (end - at - FRAME_PREFIX < *len) return "frame runs past the end";
    if (crc_of(p + at + FRAME_PREFIX, *len) != be32(p + at + 4)) return "CRC mismatch";
    return NULL;
}

/* The next offset after `at` where a valid frame starts (every body starts dc 00 10 01), or 0. */
static size_t next_valid_frame(const uint8_t *p, size_t at, size_t end) {
    static const uint8_t body_start[4] = {0xdc, 0x00, 0x10, FORMAT_VERSION};
    for (size_t o = at + 1; o + FRAME_PREFIX + FRAME_MIN_BODY <= end; o++) {
        uint32_t len;
        if (memcmp(p + o + FRAME_PREFIX, body_start, 4) == 0 && !frame_check(p, o, end, &len))
            return o;
    }
    return 0;
}

/* A frame that is not valid: a torn tail when nothing valid follows in the newest unsealed
 * segment (open cuts it), else corruption. Returns where dumping goes on, or end. */
static size_t bad_frame(dump_state *d, json_t *rec, const char *why, const uint8_t *p, size_t at,
                        size_t end, bool newest_unsealed) {
    size_t next = next_valid_frame(p, at, end);
    if (!next && newest_unsealed) {
        cli_json_set(rec, "torn_tail", json_true());
        cli_json_set(rec, "note", json_string(why));
        cli_json_set(rec, "bytes", cli_json_u64(end - at));
        return end;
    }
    problem(d, rec, why);
    if (!next) return end;
    cli_json_set(rec, "next_valid_offset", cli_json_u64(next));
    d->next_seq = 0; /* events were lost in between: do not report the gap twice */
    return next;
}

/* Dump the frames in p[48..end). *good counts the valid ones. Returns where the frames stop:
 * end, unless a frame is bad. */
static size_t dump_frames(dump_state *d, uint32_t segno, const uint8_t *p, size_t end,
                          bool newest_unsealed, uint64_t *good) {
    size_t at = SEG_HEADER_SIZE;
    bool all_good = true;
    while (at < end) {
        json_t *rec = record("frame");
        cli_json_set(rec, "segment", json_integer(segno));
        cli_json_set(rec, "offset", cli_json_u64(at));
        uint32_t len = 0;
        const char *why = frame_check(p, at, end, &len);
        if (len) cli_json_set(rec, "len", json_integer(len));
        cli_json_set(rec, "crc_ok", json_boolean(!why));
        size_t next;
        if (why) {
            next = bad_frame(d, rec, why, p, at, end, newest_unsealed);
            all_good = false;
        } else {
            frame_decode(d, p + at + FRAME_PREFIX, len, rec);
            d->frames++;
            (*good)++;
            next = at + FRAME_PREFIX + len;
        }
        cli_print_json(rec);
        at = next;
    }
    return all_good ? end : 0;
}

/* -------------------------------------------------------------- footer */

static void dump_footer(dump_state *d, uint32_t segno, const uint8_t *p, size_t off, size_t len,
                        uint64_t frames_in_segment) {
    json_t *o = record("footer");
    cli_json_set(o, "segment", json_integer(segno));
    cli_json_set(o, "offset", cli_json_u64(off));
    cli_json_set(o, "len", cli_json_u64(len));
    const uint8_t *f = p + off;
    if (len < 16 || memcmp(f, "SIDX", 4) != 0 || be32(f + 8) != len - 16) {
        problem(d, o, "not a SIDX footer (magic or length)");
        cli_print_json(o);
        return;
    }
    cli_json_set(o, "version", json_integer(be16(f + 4)));
    bool crc_ok = crc_of(f, len - 4) == be32(f + len - 4);
    cli_json_set(o, "crc_ok", json_boolean(crc_ok));
    bool parsed = index_block_json(f + 12, len - 16, o);
    json_t *records = json_object_get(o, "records");
    /* a bad CRC is a cache miss (open rebuilds that segment from its frames), not corruption */
    cli_json_set(o, "usable", json_boolean(crc_ok));
    if (crc_ok && !parsed)
        problem(d, o, "index block does not parse");
    else if (crc_ok && (uint64_t)json_integer_value(records) != frames_in_segment)
        problem(d, o, "footer lists a different number of events than the segment holds");
    cli_print_json(o);
}

/* ------------------------------------------------------------- segments */

static void segment_header_json(dump_state *d, uint32_t segno, const uint8_t *p, size_t n,
                                json_t *o) {
    if (n < SEG_HEADER_SIZE) {
        problem(d, o, "shorter than the 48-byte header");
        return;
    }
    bool magic_ok = memcmp(p, "FBAT", 4) == 0, crc_ok = crc_of(p, 44) == be32(p + 44);
    cli_json_set(o, "magic_ok", json_boolean(magic_ok));
    cli_json_set(o, "version", json_integer(be16(p + 4)));
    cli_json_set(o, "header_size", json_integer(be16(p + 6)));
    cli_json_set(o, "segno", json_integer(be32(p + 8)));
    cli_json_set(o, "flags", json_integer(be32(p + 12)));
    cli_json_set(o, "store_uuid", uuid_json(p + 16));
    cli_json_set(o, "created_ms", cli_json_u64(be64(p + 32)));
    cli_json_set(o, "crc_ok", json_boolean(crc_ok));
    if (!magic_ok) problem(d, o, "bad magic");
    if (!crc_ok) problem(d, o, "header CRC mismatch");
    if (be16(p + 4) != FORMAT_VERSION) problem(d, o, "unknown format version");
    if (be32(p + 8) != segno) problem(d, o, "segment number differs from the file name");
    if (d->have_uuid && memcmp(p + 16, d->store_uuid, 16) != 0)
        problem(d, o, "store UUID differs from STORE");
}

/* Where the frames end: at the footer of a sealed segment, else at the end of the file. */
static bool find_seal(const uint8_t *p, size_t n, size_t *footer_off, size_t *footer_len) {
    if (n < SEG_HEADER_SIZE + SEG_TRAILER_SIZE || memcmp(p + n - 4, "SEAL", 4) != 0) return false;
    uint64_t off = be64(p + n - 16), len = be32(p + n - 8);
    if (off < SEG_HEADER_SIZE || off > n || len > n || off + len + SEG_TRAILER_SIZE != n)
        return false;
    *footer_off = (size_t)off;
    *footer_len = (size_t)len;
    return true;
}

static int dump_segment(dump_state *d, const char *dir, const char *name, uint32_t segno,
                        bool newest) {
    char path[4096];
    snprintf(path, sizeof path, "%s/segments/%s", dir, name);
    size_t n;
    uint8_t *p = read_file(path, &n);
    if (!p) return cli_fail(&d->ctx, CLI_EIO, "%s: %s", path, strerror(errno));
    d->segments++;
    size_t footer_off = 0, footer_len = 0;
    bool sealed = find_seal(p, n, &footer_off, &footer_len);
    json_t *o = record("segment");
    cli_json_set(o, "file", json_sprintf("segments/%s", name));
    cli_json_set(o, "segment", json_integer(segno));
    cli_json_set(o, "size", cli_json_u64(n));
    cli_json_set(o, "sealed", json_boolean(sealed));
    segment_header_json(d, segno, p, n, o);
    if (!sealed && !newest) problem(d, o, "only the newest segment may be unsealed");
    bool header_ok = !json_object_get(o, "problem");
    cli_print_json(o);
    if (header_ok) {
        uint64_t good = 0;
        size_t end = sealed ? footer_off : n;
        size_t stop = dump_frames(d, segno, p, end, newest && !sealed, &good);
        if (sealed && stop == end) dump_footer(d, segno, p, footer_off, footer_len, good);
    }
    free(p);
    return CLI_OK;
}

/* Segment number of "NNNNNN.fbat" (6+ digits), or 0 for any other name. */
static uint32_t segment_number(const char *name) {
    size_t digits = strspn(name, "0123456789");
    uint64_t v;
    if (digits < 6 || strcmp(name + digits, ".fbat") != 0) return 0;
    char num[16];
    if (digits >= sizeof num) return 0;
    memcpy(num, name, digits);
    num[digits] = '\0';
    return cli_parse_u64(num, UINT32_MAX, &v) ? (uint32_t)v : 0;
}

typedef struct segment_file {
    uint32_t segno;
    char name[64];
} segment_file;

static int compare_segments(const void *a, const void *b) {
    uint32_t x = ((const segment_file *)a)->segno, y = ((const segment_file *)b)->segno;
    return x < y ? -1 : x > y;
}

/* The segment files of dir, sorted by number. */
static int list_segments(dump_state *d, const char *dir, segment_file **out, size_t *count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/segments", dir);
    *out = NULL;
    *count = 0;
    DIR *dh = opendir(path);
    if (!dh)
        return errno == ENOENT ? CLI_OK
                               : cli_fail(&d->ctx, CLI_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        uint32_t segno = segment_number(e->d_name);
        if (!segno || strlen(e->d_name) >= sizeof(*out)->name) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            segment_file *grown = realloc(*out, cap * sizeof **out);
            if (!grown) cli_oom();
            *out = grown;
        }
        (*out)[*count].segno = segno;
        snprintf((*out)[*count].name, sizeof(*out)->name, "%s", e->d_name);
        (*count)++;
    }
    closedir(dh);
    if (*count > 1) qsort(*out, *count, sizeof **out, compare_segments);
    return CLI_OK;
}

static void dump_summary(dump_state *d) {
    json_t *o = record("summary");
    cli_json_set(o, "segments", cli_json_u64(d->segments));
    cli_json_set(o, "frames", cli_json_u64(d->frames));
    cli_json_set(o, "problems", cli_json_u64(d->problems));
    cli_print_json(o);
}

int cli_dump_segments(const char *dir, bool with_payloads) {
    dump_state d;
    memset(&d, 0, sizeof d);
    d.ctx.dir = dir;
    d.ctx.cmd = "dump";
    d.with_payloads = with_payloads;
    int code = dump_store_file(&d, dir);
    if (code != CLI_OK) return code;
    dump_checkpoint(&d, dir);
    segment_file *segs;
    size_t n;
    if ((code = list_segments(&d, dir, &segs, &n)) != CLI_OK) return code;
    for (size_t i = 0; i < n && code == CLI_OK; i++) {
        if (i > 0 && segs[i].segno != segs[i - 1].segno + 1) {
            json_t *gap = record("gap");
            cli_json_set(gap, "after_segment", json_integer(segs[i - 1].segno));
            problem(&d, gap, "segment numbers are not contiguous");
            cli_print_json(gap);
        }
        code = dump_segment(&d, dir, segs[i].name, segs[i].segno, i + 1 == n);
    }
    free(segs);
    if (code != CLI_OK) return code;
    dump_summary(&d);
    if (d.problems)
        return cli_fail(&d.ctx, CLI_ECORRUPT, "%llu problem(s) found (see the \"problem\" fields)",
                        (unsigned long long)d.problems);
    return CLI_OK;
}
