/* batpak dump: a frame-by-frame NDJSON dump of the files of a store, read
 * straight from disk as doc/FORMAT.md (format version 1) describes them.
 *
 * Every structure is decoded by the format layer (src/format/format.h, the only
 * code that knows the bytes on disk); this file only reads files, follows the
 * cross-references and prints. That is why it includes an internal header,
 * unlike the rest of the tool, and why the tool links the small static library
 * bp_fmt (the format layer and core/error.c) next to libbatpak.so. A decoder's
 * message (bp_err_message(): bp_fmt's own thread-local message, which
 * bp_last_error() of the shared library does not see) goes in the record's
 * "problem" field, or in "note" where the damage is only a cache miss (a
 * checkpoint or footer that open would rebuild).
 *
 * It opens no store and takes no lock, so it also works on a store that does
 * not open; a writer appending at the same time can make the last frame look
 * torn. Every record is one line with "type" first: store, checkpoint,
 * segment, frame, footer, then one summary. Hashes are not recomputed (that is
 * `batpak verify`); CRCs, lengths, structure and cross-references are checked.
 */
#include "cli/cli.h"
#include "format/format.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dump_state {
    cli_ctx ctx;
    bool with_payloads;
    uint8_t store_uuid[16];
    bool have_uuid;
    uint64_t segments, frames, problems, next_seq;
} dump_state;

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

static json_t *uuid_json(const uint8_t uuid[16]) {
    bp_id id;
    memcpy(id.b, uuid, 16);
    return cli_json_id(&id);
}

/* After a failed decode: what can still be said. The decoders check the magic first, so
 * BP_EVERSION means the magic was right, and they leave the version found in `version`;
 * crc_ok when at least crc_len bytes are there. */
static void failed_decode_json(json_t *o, bp_status rc, uint32_t version, const uint8_t *p,
                               size_t n, size_t crc_len) {
    if (rc == BP_EVERSION) {
        cli_json_set(o, "magic_ok", json_true());
        cli_json_set(o, "version", json_integer(version));
    }
    if (n >= crc_len) cli_json_set(o, "crc_ok", json_boolean(bp_crc_tail_ok(p, crc_len)));
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
    bp_store_ident id;
    memset(&id, 0, sizeof id);
    bp_status rc = bp_store_ident_decode(&id, p, n, "STORE");
    if (rc == BP_OK) {
        cli_json_set(o, "magic_ok", json_true());
        cli_json_set(o, "version", json_integer(id.version));
        cli_json_set(o, "store_uuid", uuid_json(id.uuid));
        cli_json_set(o, "created_ms", cli_json_u64(id.created_ms));
        cli_json_set(o, "crc_ok", json_true());
        memcpy(d->store_uuid, id.uuid, sizeof d->store_uuid);
        d->have_uuid = true;
    } else {
        failed_decode_json(o, rc, id.version, p, n, BP_STORE_FILE_SIZE);
        problem(d, o, bp_err_message());
    }
    cli_print_json(o);
    free(p);
    return CLI_OK;
}

/* --------------------------------------------------------- index blocks */

static void index_block_json(const bp_iblock *blk, json_t *rec) {
    cli_json_set(rec, "first_seq", cli_json_u64(blk->first_seq));
    cli_json_set(rec, "entities", cli_json_u64(blk->n_entities));
    cli_json_set(rec, "scopes", cli_json_u64(blk->n_scopes));
    cli_json_set(rec, "records", cli_json_u64(blk->n_recs));
    cli_json_set(rec, "idempotency_keys", cli_json_u64(blk->n_idems));
}

/* A bad checkpoint is a cache miss for open, not corruption: flagged, not counted. */
static void dump_checkpoint(dump_state *d, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/index.ckpt", dir);
    size_t n;
    uint8_t *p = read_file(path, &n);
    if (!p) return; /* optional: a cache */
    json_t *o = record("checkpoint");
    cli_json_set(o, "file", json_string("index.ckpt"));
    cli_json_set(o, "size", cli_json_u64(n));
    bp_ckpt_meta m;
    bp_iblock blk;
    bp_status rc = bp_ckpt_decode(&m, &blk, p, n, "index.ckpt");
    if (rc == BP_OK) {
        cli_json_set(o, "magic_ok", json_true());
        cli_json_set(o, "version", json_integer(BP_FORMAT_VERSION));
        cli_json_set(o, "store_uuid", uuid_json(m.uuid));
        cli_json_set(o, "covered_segment", json_integer(m.covered_segno));
        cli_json_set(o, "covered_offset", cli_json_u64(m.covered_offset));
        cli_json_set(o, "last_hlc", cli_json_u64(m.last_hlc));
        cli_json_set(o, "last_event_id", cli_json_id(&m.last_id));
        cli_json_set(o, "crc_ok", json_true());
        index_block_json(&blk, o);
        bool same_store = !d->have_uuid || memcmp(m.uuid, d->store_uuid, sizeof d->store_uuid) == 0;
        cli_json_set(o, "usable", json_boolean(same_store));
        if (!same_store) cli_json_set(o, "note", json_string("store UUID differs from STORE"));
        bp_iblock_free(&blk);
    } else {
        cli_json_set(o, "crc_ok", json_boolean(bp_crc_tail_ok(p, n)));
        cli_json_set(o, "usable", json_false());
        cli_json_set(o, "note", json_string(bp_err_message()));
    }
    cli_print_json(o);
    free(p);
}

/* -------------------------------------------------------------- frames */

static void frame_fields_json(const bp_frame *fr, json_t *rec) {
    const bp_event_fields *f = &fr->f;
    cli_json_set(rec, "event_id", cli_json_id(&f->event_id));
    cli_json_set(rec, "correlation_id", cli_json_id(&f->correlation_id));
    cli_json_set(rec, "causation_id",
                 f->has_causation ? cli_json_id(&f->causation_id) : json_null());
    cli_json_set(rec, "global_seq", cli_json_u64(f->global_seq));
    cli_json_set(rec, "clock", cli_json_u64(f->clock));
    cli_json_set(rec, "hlc", cli_json_u64(f->hlc));
    cli_json_set(rec, "kind", cli_json_u64(f->kind));
    cli_json_set(rec, "flags", cli_json_u64(f->flags));
    cli_json_set(rec, "prev_hash", cli_json_hash(&f->prev_hash));
    cli_json_set(rec, "event_hash", cli_json_hash(&fr->event_hash));
    cli_json_set(rec, "entity", cli_json_text(f->entity, f->entity_len));
    cli_json_set(rec, "scope", cli_json_text(f->scope, f->scope_len));
    if (f->batch_count) {
        json_t *b = json_array();
        if (!b || json_array_append_new(b, cli_json_u64(f->batch_id)) ||
            json_array_append_new(b, cli_json_u64(f->batch_index)) ||
            json_array_append_new(b, cli_json_u64(f->batch_count)))
            cli_oom();
        cli_json_set(rec, "batch", b);
    } else {
        cli_json_set(rec, "batch", json_null());
    }
    cli_json_set(rec, "idempotency_key",
                 f->idem_len ? cli_json_text(f->idem_key, f->idem_len) : json_null());
    cli_json_set(rec, "payload_len", cli_json_u64(f->payload_len));
}

/* Decode the CRC-valid frame body[0..len) onto rec and check its global_seq. */
static void frame_decode(dump_state *d, const uint8_t *body, size_t len, json_t *rec) {
    bp_frame fr;
    if (bp_frame_decode(body, len, &fr) != BP_OK) {
        problem(d, rec, bp_err_message());
        d->next_seq = 0; /* its global_seq is unknown: do not report a gap at the next one */
        return;
    }
    frame_fields_json(&fr, rec);
    if (d->with_payloads) { /* no store here: the generic rendering */
        bp_event ev = {.kind = fr.f.kind, .global_seq = fr.f.global_seq};
        ev.payload = fr.f.payload;
        ev.payload_len = fr.f.payload_len;
        cli_json_set_payload(rec, NULL, &ev);
    }
    uint64_t seq = fr.f.global_seq;
    if (d->next_seq && seq != d->next_seq) problem(d, rec, "global_seq is not the previous + 1");
    d->next_seq = seq + 1;
}

/* Why bp_frame_peek refused a frame (see its contract in format.h). */
static const char *frame_refusal(bp_frame_check c, uint32_t frame_len) {
    if (c == BP_FRAME_SHORT) return frame_len ? "frame runs past the end" : "short frame prefix";
    return frame_len ? "CRC mismatch" : "frame length out of range";
}

/* A frame that is not valid: a torn tail when nothing valid follows in the newest unsealed
 * segment (open cuts it), else corruption. Returns where dumping goes on, or end. */
static size_t bad_frame(dump_state *d, json_t *rec, const char *why, const uint8_t *p, size_t at,
                        size_t end, bool newest_unsealed) {
    size_t next = 0;
    size_t z = at;
    while (z < end && !p[z])
        z++;
    if (z == end && newest_unsealed) { /* no frame: the zeros a writer fills ahead */
        cli_json_set(rec, "zeros", json_true());
        cli_json_set(rec, "note",
                     json_string("zeros written ahead of the frames by a writer that has the "
                                 "segment open (or was not closed: open cuts them)"));
        cli_json_set(rec, "bytes", cli_json_u64(end - at));
        return end;
    }
    bool found = bp_frame_find(p, at + 1, end, &next);
    if (!found && newest_unsealed) {
        cli_json_set(rec, "torn_tail", json_true());
        cli_json_set(rec, "note", json_string(why));
        cli_json_set(rec, "bytes", cli_json_u64(end - at));
        return end;
    }
    problem(d, rec, why);
    if (!found) return end;
    cli_json_set(rec, "next_valid_offset", cli_json_u64(next));
    d->next_seq = 0; /* events were lost in between: do not report the gap twice */
    return next;
}

/* Dump the frames in p[BP_SEG_HEADER_SIZE..end). *good counts the CRC-valid ones.
 * Returns where the frames stop: end, unless a frame is bad. */
static size_t dump_frames(dump_state *d, uint32_t segno, const uint8_t *p, size_t end,
                          bool newest_unsealed, uint64_t *good) {
    size_t at = BP_SEG_HEADER_SIZE;
    bool all_good = true;
    while (at < end) {
        json_t *rec = record("frame");
        cli_json_set(rec, "segment", json_integer(segno));
        cli_json_set(rec, "offset", cli_json_u64(at));
        uint32_t body_len = bp_frame_body_len(p + at, end - at), frame_len;
        if (body_len) cli_json_set(rec, "len", cli_json_u64(body_len));
        bp_frame_check c = bp_frame_peek(p + at, end - at, &frame_len);
        cli_json_set(rec, "crc_ok", json_boolean(c == BP_FRAME_OK));
        size_t next;
        if (c != BP_FRAME_OK) {
            next = bad_frame(d, rec, frame_refusal(c, frame_len), p, at, end, newest_unsealed);
            all_good = false;
        } else {
            frame_decode(d, p + at + BP_FRAME_PREFIX, frame_len - BP_FRAME_PREFIX, rec);
            d->frames++;
            (*good)++;
            next = at + frame_len;
        }
        cli_print_json(rec);
        at = next;
    }
    return all_good ? end : 0;
}

/* -------------------------------------------------------------- footer */

/* A footer with a bad CRC is a cache miss (open rebuilds that segment from its frames), not
 * corruption; one with an intact CRC that does not decode, or lists other events, is. */
static void dump_footer(dump_state *d, const char *file, uint32_t segno, const uint8_t *p,
                        uint64_t off, uint32_t len, uint64_t frames_in_segment) {
    json_t *o = record("footer");
    cli_json_set(o, "segment", json_integer(segno));
    cli_json_set(o, "offset", cli_json_u64(off));
    cli_json_set(o, "len", cli_json_u64(len));
    bp_iblock blk;
    bp_status rc = bp_footer_decode(&blk, p + off, len, file);
    if (rc == BP_OK) {
        cli_json_set(o, "version", json_integer(BP_FORMAT_VERSION));
        cli_json_set(o, "crc_ok", json_true());
        index_block_json(&blk, o);
        cli_json_set(o, "usable", json_true());
        if (blk.n_recs != frames_in_segment)
            problem(d, o, "footer lists a different number of events than the segment holds");
        bp_iblock_free(&blk);
    } else {
        bool crc_ok = bp_crc_tail_ok(p + off, len);
        cli_json_set(o, "crc_ok", json_boolean(crc_ok));
        cli_json_set(o, "usable", json_false());
        if (crc_ok)
            problem(d, o, bp_err_message());
        else
            cli_json_set(o, "note", json_string(bp_err_message()));
    }
    cli_print_json(o);
}

/* ------------------------------------------------------------- segments */

static void segment_header_json(dump_state *d, const char *file, uint32_t segno, const uint8_t *p,
                                size_t n, json_t *o) {
    bp_seg_header h;
    memset(&h, 0, sizeof h);
    bp_status rc = bp_seg_header_decode(&h, p, n, file);
    if (rc != BP_OK) {
        failed_decode_json(o, rc, h.version, p, n, BP_SEG_HEADER_SIZE);
        problem(d, o, bp_err_message());
        return;
    }
    cli_json_set(o, "magic_ok", json_true());
    cli_json_set(o, "version", json_integer(h.version));
    cli_json_set(o, "header_size", json_integer(BP_SEG_HEADER_SIZE));
    cli_json_set(o, "segno", json_integer(h.segno));
    cli_json_set(o, "flags", json_integer(bp_seg_header_flags(p)));
    cli_json_set(o, "store_uuid", uuid_json(h.uuid));
    cli_json_set(o, "created_ms", cli_json_u64(h.created_ms));
    cli_json_set(o, "crc_ok", json_true());
    if (h.segno != segno) problem(d, o, "segment number differs from the file name");
    if (d->have_uuid && memcmp(h.uuid, d->store_uuid, sizeof d->store_uuid) != 0)
        problem(d, o, "store UUID differs from STORE");
}

static int dump_segment(dump_state *d, const char *dir, const char *name, uint32_t segno,
                        bool newest) {
    char path[4096], file[128];
    snprintf(path, sizeof path, "%s/segments/%s", dir, name);
    snprintf(file, sizeof file, "segments/%s", name);
    size_t n;
    uint8_t *p = read_file(path, &n);
    if (!p) return cli_fail(&d->ctx, CLI_EIO, "%s: %s", path, strerror(errno));
    d->segments++;
    /* where the frames end: at the footer of a sealed segment, else at the end of the file */
    uint64_t footer_off = 0;
    uint32_t footer_len = 0;
    bool sealed = n >= BP_SEG_HEADER_SIZE + BP_TRAILER_SIZE &&
                  bp_trailer_decode(p + n - BP_TRAILER_SIZE, n, &footer_off, &footer_len);
    json_t *o = record("segment");
    cli_json_set(o, "file", json_string(file));
    cli_json_set(o, "segment", json_integer(segno));
    cli_json_set(o, "size", cli_json_u64(n));
    cli_json_set(o, "sealed", json_boolean(sealed));
    segment_header_json(d, file, segno, p, n, o);
    if (!sealed && !newest) problem(d, o, "only the newest segment may be unsealed");
    bool header_ok = !json_object_get(o, "problem");
    cli_print_json(o);
    if (header_ok) {
        uint64_t good = 0;
        size_t end = sealed ? (size_t)footer_off : n;
        size_t stop = dump_frames(d, segno, p, end, newest && !sealed, &good);
        if (sealed && stop == end) dump_footer(d, file, segno, p, footer_off, footer_len, good);
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
