/* Import of an NDJSON export (doc/FORMAT.md "Export"), line by line or frame by frame (a
 * follower): every hash and chain checked before anything is written, events committed in
 * groups without a sync and synced once at the end. export.c writes the lines. */
#include "store/store_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c) {
    const char *at = c ? strchr(B64, c) : NULL;
    return at ? (int)(at - B64) : -1;
}

/* Strict: length a multiple of 4, padding only at the end, unused bits zero (so that one
 * byte string has exactly one encoding). false when s is not such an encoding. */
static bool b64_decode(const char *s, size_t len, uint8_t *out, size_t *n) {
    if (len % 4) return false;
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64_value(s[i + j])) < 0) {
                return false;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if ((pad == 2 && (w & 0xFFFF)) || (pad == 1 && (w & 0xFF))) return false;
        out[k++] = (uint8_t)(w >> 16);
        if (pad < 2) out[k++] = (uint8_t)(w >> 8);
        if (pad < 1) out[k++] = (uint8_t)w;
    }
    *n = k;
    return true;
}

/* ------------------------------------------------------------------ import */

/* One parsed line: the frame's fields point into its own strings. */
typedef struct held {
    bp_frame fr;
    uint64_t line;
    char *entity, *scope, *idem;
    uint8_t *payload;
} held;

/* Most standalone events committed in one write (without a sync: the end syncs). */
#define IMPORT_GROUP 1024

/* Invariants: group[0..n) are parsed, checked lines waiting to be committed, in order:
 * either all standalone (batch_open false), or the first n events of one batch. */
struct bp_importer {
    bp_store *s;
    uint64_t line;
    held *group;
    size_t n;
    bool batch_open;
    bp_status failed;     /* after an error every later line is refused... */
    char failed_msg[700]; /* ...with this message */
    size_t cap;           /* of group */
    bp_import_report rep;
    const char *unit; /* what held.line counts in messages: "line", or "stream sequence" */
    bool anchored;    /* the input began with an anchors record (a compacted store's) */
    uint64_t upto;    /* its compacted range: seqs up to it may be holes */
};

static void held_free(held *h) {
    free(h->entity);
    free(h->scope);
    free(h->idem);
    free(h->payload);
}

bp_status bp_import_begin(bp_store *s, bp_importer **out) {
    if (!out) return bp_err(BP_EINVAL, "bp_import_begin: out is NULL");
    *out = NULL;
    if (!s) return bp_err(BP_EINVAL, "bp_import_begin: NULL store");
    if (s->read_only) return bp_err(BP_EREADONLY, "%s: store was opened read-only", s->dir);
    bp_importer *imp = calloc(1, sizeof *imp);
    if (imp) imp->group = calloc(IMPORT_GROUP, sizeof *imp->group);
    if (!imp || !imp->group) {
        free(imp);
        return bp_err(BP_ENOMEM, "import: out of memory");
    }
    imp->s = s;
    imp->cap = IMPORT_GROUP;
    imp->unit = "line";
    pthread_rwlock_rdlock(&s->ilock);
    imp->upto = s->anchors.upto;
    pthread_rwlock_unlock(&s->ilock);
    *out = imp;
    return BP_OK;
}

static void drop_group(bp_importer *imp) {
    for (size_t i = 0; i < imp->n; i++)
        held_free(&imp->group[i]);
    imp->n = 0;
    imp->batch_open = false;
}

static bp_status fail(bp_importer *imp, bp_status rc) {
    imp->failed = rc;
    snprintf(imp->failed_msg, sizeof imp->failed_msg, "%s", bp_last_error());
    return rc;
}

/* Commit the held lines, without a sync (bp_import_end syncs once, at the end): a whole batch
 * is written with one write and keeps its batch markers, so a crash before that sync leaves it
 * whole or cuts it whole at the next open, like an unsynced bp_append_batch_ex. */
static bp_status flush_group(bp_importer *imp) {
    if (!imp->n) return BP_OK;
    /* sealed payloads (a sealing store's export): this store seals from now on, so that it
     * opens again (a store with sealed events and no DIR/dkeys lost its keys: refused); their
     * payloads read as forgotten until the source's key files are copied into DIR/dkeys/ */
    bool sealed = false;
    for (size_t i = 0; i < imp->n && !sealed; i++)
        sealed = (imp->group[i].fr.f.flags & BP_EVENT_SEALED) != 0;
    bp_status src = sealed && !bp_store_seals(imp->s) ? bp_dkeys_turn_on(imp->s) : BP_OK;
    if (src) {
        drop_group(imp);
        return fail(imp, src);
    }
    bp_frame *frames = malloc(imp->n * sizeof *frames);
    if (!frames) return fail(imp, bp_err(BP_ENOMEM, "import: out of memory"));
    for (size_t i = 0; i < imp->n; i++)
        frames[i] = imp->group[i].fr;
    size_t bad = 0, ok = 0;
    bp_status rc = bp_commit_imported(imp->s, frames, imp->n, false, &bad);
    if (rc && bad && !imp->batch_open) { /* the standalone lines before the bad one go in */
        char first[600];
        snprintf(first, sizeof first, "%s", bp_last_error());
        size_t again;
        if (!bp_commit_imported(imp->s, frames, bad, false, &again)) ok = bad;
        bp_set_error(rc, "%s", first);
    }
    free(frames);
    imp->rep.imported += ok;
    if (rc) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        rc = bp_err(rc, "%s %llu: %s", imp->unit, (unsigned long long)imp->group[bad].line, msg);
        drop_group(imp);
        return fail(imp, rc);
    }
    imp->rep.imported += imp->n;
    drop_group(imp);
    return BP_OK;
}

/* The value of key in o, of the given type (a JSON null allowed when nullable); NULL with
 * the error set when it is missing or of another type. */
static json_t *field(json_t *o, const char *key, json_type type, bool nullable, uint64_t line,
                     bp_status *rc) {
    json_t *v = json_object_get(o, key);
    if (v && (json_typeof(v) == type || (nullable && json_is_null(v)))) return v;
    *rc = bp_err(BP_EINVAL, "line %llu: field '%s' is %s", (unsigned long long)line, key,
                 v ? "of the wrong type" : "missing");
    return NULL;
}

static bool get_u64(json_t *v, uint64_t max, uint64_t *out) {
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max) return false;
    *out = (uint64_t)x;
    return true;
}

static char *dup_text(json_t *v, size_t *len) {
    *len = json_string_length(v);
    char *p = malloc(*len + 1);
    if (p) memcpy(p, json_string_value(v), *len + 1);
    return p;
}

/* 64 lower-case hex digits (as export writes them) into h. */
static bool parse_hash(const char *s, bp_hash *h) {
    if (strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++) {
        int d = s[i] >= '0' && s[i] <= '9'   ? s[i] - '0'
                : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10
                                             : -1;
        if (d < 0) return false;
        h->b[i / 2] = (uint8_t)(i % 2 ? h->b[i / 2] | d : d << 4);
    }
    return true;
}

/* ------------------------------------------------------------------ anchors record */

/* Check an anchors record o (FORMAT.md "Export") into a (owned; bp_anchors_free). */
static bp_status parse_anchors(json_t *o, const char *where, bp_anchors *a) {
    memset(a, 0, sizeof *a);
    json_t *fmt = json_object_get(o, "format"), *upto = json_object_get(o, "upto"),
           *list = json_object_get(o, "anchors");
    uint64_t u = 0;
    if (!json_is_string(fmt))
        return bp_err(BP_EINVAL, "%s: anchors record: field 'format' is not a string", where);
    if (strcmp(json_string_value(fmt), BP_EXPORT_ANCHORS_FORMAT) != 0)
        return bp_err(
            BP_EVERSION,
            "%s: anchors record of format '%s': this build reads '" BP_EXPORT_ANCHORS_FORMAT "'",
            where, json_string_value(fmt));
    if (json_object_size(o) != 3 || !json_is_integer(upto) || !json_is_array(list) ||
        !json_array_size(list) || !get_u64(upto, UINT32_MAX - 2, &u) || !u)
        return bp_err(BP_EINVAL,
                      "%s: anchors record must be {\"format\",\"upto\",\"anchors\"} with "
                      "1 <= upto < 2^32 - 2 and at least one anchor",
                      where);
    size_t n = json_array_size(list);
    bp_anchors tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.first_segno = tmp.last_segno = 1;
    tmp.upto = u;
    tmp.v = calloc(n, sizeof *tmp.v);
    if (!tmp.v) return bp_err(BP_ENOMEM, "import: out of memory");
    bp_status rc = BP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *x = json_array_get(list, i), *ent = json_object_get(x, "entity"),
               *clock = json_object_get(x, "clock"), *hash = json_object_get(x, "hash");
        bp_anchor *an = &tmp.v[tmp.n++];
        if (!json_is_object(x) || json_object_size(x) != 3 || !json_is_string(ent) ||
            !json_is_integer(clock) || !json_is_string(hash) ||
            !get_u64(clock, UINT32_MAX, &an->clock) || !an->clock ||
            !parse_hash(json_string_value(hash), &an->hash) ||
            strlen(json_string_value(ent)) != json_string_length(ent)) {
            rc = bp_err(BP_EINVAL,
                        "%s: anchor %zu must be {\"entity\",\"clock\",\"hash\"} with clock >= "
                        "1 and hash 64 lower-case hex digits",
                        where, i);
            break;
        }
        an->entity = json_string_value(ent);
        an->len = (uint16_t)json_string_length(ent);
        if ((rc = bp_coord_validate_sys(an->entity, "x", true))) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s", bp_last_error());
            rc = bp_err(BP_EINVAL, "%s: anchor %zu: %s", where, i, msg);
        }
    }
    bp_buf b = {0};
    if (!rc && bp_anchors_encode(&b, &tmp)) rc = bp_err(BP_ENOMEM, "import: out of memory");
    free(tmp.v);
    if (!rc) { /* decoding the encoding copies the strings, and checks what it checks */
        char what[80];
        snprintf(what, sizeof what, "%s: anchors record", where);
        rc = bp_anchors_decode(a, b.data, b.len, what);
    }
    bp_buf_free(&b);
    return rc;
}

/* Does the store hold exactly these anchors (same range and entities, clocks, hashes)? */
static bool same_anchors(bp_store *s, const bp_anchors *a) {
    pthread_rwlock_rdlock(&s->ilock);
    bool same = s->anchors.upto == a->upto && s->anchors.n == a->n;
    for (uint32_t i = 0; same && i < a->n; i++) {
        bool found = false;
        for (uint32_t k = 0; !found && k < s->anchors.n; k++) {
            const bp_anchor *x = &s->anchors.v[k];
            found = x->len == a->v[i].len && !memcmp(x->entity, a->v[i].entity, x->len) &&
                    x->clock == a->v[i].clock && !memcmp(x->hash.b, a->v[i].hash.b, 32);
        }
        same = found;
    }
    pthread_rwlock_unlock(&s->ilock);
    return same;
}

/* Apply a checked anchors record: install it into an empty store; a store that holds the same
 * anchors goes on (an import resumed); another store refuses it (strict) or ignores it. */
static bp_status apply_anchors(bp_importer *imp, const bp_anchors *a, const char *where,
                               bool strict, bool *installed) {
    *installed = false;
    bp_status rc = imp->n ? bp_err(BP_ECONFLICT, "events are held") : bp_anchors_install(imp->s, a);
    if (!rc) {
        *installed = true;
        imp->upto = a->upto;
        return BP_OK;
    }
    if (rc != BP_ECONFLICT) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        return bp_err(rc, "%s: %s", where, msg);
    }
    bp_err_clear();
    if (same_anchors(imp->s, a) || !strict) return BP_OK;
    return bp_err(BP_ECONFLICT,
                  "%s: an export of a compacted store (%u anchors, holes up to global_seq %llu) "
                  "imports only into an empty store, and %s holds events or other anchors: "
                  "import it into a new directory",
                  where, a->n, (unsigned long long)a->upto, imp->s->dir);
}

bp_status bp_import_anchors(bp_importer *imp, const void *body, size_t len, uint64_t pos,
                            bool strict, bool *installed) {
    *installed = false;
    if (!imp || (!body && len)) return bp_err(BP_EINVAL, "bp_import_anchors: NULL argument");
    if (imp->failed)
        return bp_err(imp->failed, "import stopped at an earlier error: %s", imp->failed_msg);
    char where[48];
    snprintf(where, sizeof where, "stream sequence %llu", (unsigned long long)pos);
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    bp_status rc = BP_OK;
    if (!json_is_object(o))
        rc = bp_err(BP_ECORRUPT, "%s: anchors message is not a JSON object", where);
    bp_anchors a;
    memset(&a, 0, sizeof a);
    if (!rc && (rc = parse_anchors(o, where, &a)) == BP_EINVAL) /* in a stream: damage */
        rc = bp_err(BP_ECORRUPT, "%s", bp_last_error());
    json_decref(o);
    if (!rc) rc = apply_anchors(imp, &a, where, strict, installed);
    bp_anchors_free(&a);
    return rc ? fail(imp, rc) : BP_OK;
}

/* A line that is an anchors record (it has "format"): allowed only as the first line. */
static bp_status anchors_line(bp_importer *imp, json_t *o, uint64_t ln) {
    char where[40];
    snprintf(where, sizeof where, "line %llu", (unsigned long long)ln);
    if (ln != 1 || imp->n || imp->rep.imported)
        return bp_err(BP_EINVAL, "line %llu: an anchors record comes only as the first line",
                      (unsigned long long)ln);
    bp_anchors a;
    bp_status rc = parse_anchors(o, where, &a);
    if (rc) return rc;
    bool installed;
    rc = apply_anchors(imp, &a, where, true, &installed);
    bp_anchors_free(&a);
    return rc;
}

/* A line's "batch": {"id", "index", "count"} with 0 <= index < count, 2 <= count. */
static bp_status parse_batch(json_t *batch, uint64_t ln, bp_event_fields *f) {
    json_t *bid = json_object_get(batch, "id"), *bix = json_object_get(batch, "index"),
           *bct = json_object_get(batch, "count");
    uint64_t a, b, c;
    if (json_object_size(batch) != 3 || !json_is_integer(bid) || !json_is_integer(bix) ||
        !json_is_integer(bct) || !get_u64(bid, UINT32_MAX, &a) || !a ||
        !get_u64(bix, BP_BATCH_MAX - 1, &b) || !get_u64(bct, BP_BATCH_MAX, &c) || c < 2 || b >= c)
        return bp_err(BP_EINVAL,
                      "line %llu: field 'batch' must be {\"id\",\"index\",\"count\"}"
                      " with 0 <= index < count, 2 <= count <= %u",
                      (unsigned long long)ln, BP_BATCH_MAX);
    f->batch_id = a;
    f->batch_index = (uint32_t)b;
    f->batch_count = (uint32_t)c;
    return BP_OK;
}

/* Parse and check one line into h. */
static bp_status parse_line(bp_importer *imp, const char *text, size_t len, held *h) {
    static const char *const KEYS[] = {
        "global_seq",      "event_id", "entity",    "scope",          "kind",
        "clock",           "hlc",      "flags",     "correlation_id", "causation_id",
        "idempotency_key", "batch",    "prev_hash", "event_hash",     "payload"};
    enum { NKEYS = sizeof KEYS / sizeof KEYS[0] };
    uint64_t ln = imp->line;
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return bp_err(BP_EINVAL, "line %llu: not JSON (column %d: %s)", (unsigned long long)ln,
                      jerr.column, jerr.text);
    bp_status rc = BP_OK;
    memset(h, 0, sizeof *h);
    h->line = ln;
    bp_event_fields *f = &h->fr.f;
    const char *key;
    json_t *v;
    if (!json_is_object(o)) {
        rc = bp_err(BP_EINVAL, "line %llu: not a JSON object", (unsigned long long)ln);
        goto out;
    }
    if (json_object_get(o, "format")) { /* an anchors record: only first */
        rc = anchors_line(imp, o, ln);
        json_decref(o);
        return rc ? rc : BP_DONE;
    }
    json_object_foreach(o, key, v) {
        size_t k = 0;
        while (k < NKEYS && strcmp(KEYS[k], key) != 0)
            k++;
        if (k == NKEYS) {
            rc = bp_err(BP_EINVAL, "line %llu: unknown field '%s'", (unsigned long long)ln, key);
            goto out;
        }
    }
    json_t *seq, *id, *ent, *sc, *kind, *clock, *hlc, *flags, *corr, *caus, *idem, *batch, *prev,
        *hash, *payload;
    if (!(seq = field(o, "global_seq", JSON_INTEGER, false, ln, &rc)) ||
        !(id = field(o, "event_id", JSON_STRING, false, ln, &rc)) ||
        !(ent = field(o, "entity", JSON_STRING, false, ln, &rc)) ||
        !(sc = field(o, "scope", JSON_STRING, false, ln, &rc)) ||
        !(kind = field(o, "kind", JSON_INTEGER, false, ln, &rc)) ||
        !(clock = field(o, "clock", JSON_INTEGER, false, ln, &rc)) ||
        !(hlc = field(o, "hlc", JSON_INTEGER, false, ln, &rc)) ||
        !(flags = field(o, "flags", JSON_INTEGER, false, ln, &rc)) ||
        !(corr = field(o, "correlation_id", JSON_STRING, false, ln, &rc)) ||
        !(caus = field(o, "causation_id", JSON_STRING, true, ln, &rc)) ||
        !(idem = field(o, "idempotency_key", JSON_STRING, true, ln, &rc)) ||
        !(batch = field(o, "batch", JSON_OBJECT, true, ln, &rc)) ||
        !(prev = field(o, "prev_hash", JSON_STRING, false, ln, &rc)) ||
        !(hash = field(o, "event_hash", JSON_STRING, false, ln, &rc)) ||
        !(payload = field(o, "payload", JSON_STRING, false, ln, &rc)))
        goto out;
    const char *bad = NULL;
    uint64_t x;
    uint64_t fl = 0;
    if (!get_u64(seq, UINT32_MAX, &f->global_seq) || !f->global_seq)
        bad = "global_seq";
    else if (!get_u64(kind, 0xFFFF, &x))
        bad = "kind";
    else if (!get_u64(clock, UINT32_MAX, &f->clock) || !f->clock)
        bad = "clock";
    else if (!get_u64(hlc, INT64_MAX, &f->hlc))
        bad = "hlc";
    else if (!get_u64(flags, 0xFFFF, &fl))
        bad = "flags";
    else if (bp_id_parse(&f->event_id, json_string_value(id)))
        bad = "event_id";
    else if (bp_id_parse(&f->correlation_id, json_string_value(corr)))
        bad = "correlation_id";
    else if (!json_is_null(caus) && bp_id_parse(&f->causation_id, json_string_value(caus)))
        bad = "causation_id";
    if (bad) {
        rc = bp_err(BP_EINVAL, "line %llu: field '%s' is out of range or malformed",
                    (unsigned long long)ln, bad);
        goto out;
    }
    f->kind = (uint16_t)x;
    f->flags = (uint16_t)fl;
    f->has_causation = !json_is_null(caus);
    if (!json_is_null(batch) && (rc = parse_batch(batch, ln, f))) goto out;
    h->entity = dup_text(ent, &f->entity_len);
    h->scope = dup_text(sc, &f->scope_len);
    if (!json_is_null(idem)) h->idem = dup_text(idem, &f->idem_len);
    size_t plen = json_string_length(payload);
    h->payload = malloc(plen / 4 * 3 + 1);
    if (!h->entity || !h->scope || (!json_is_null(idem) && !h->idem) || !h->payload) {
        rc = bp_err(BP_ENOMEM, "import: out of memory");
        goto out;
    }
    f->entity = h->entity;
    f->scope = h->scope;
    f->idem_key = h->idem;
    if (!b64_decode(json_string_value(payload), plen, h->payload, &f->payload_len)) {
        rc = bp_err(BP_EINVAL, "line %llu: field 'payload' is not base64", (unsigned long long)ln);
        goto out;
    }
    f->payload = h->payload;
    if ((rc = bp_coord_validate_sys(h->entity, h->scope, true)) ||
        (h->idem && (f->idem_len == 0 || f->idem_len > BP_IDEMPOTENCY_KEY_MAX))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rc ? bp_last_error() : "idempotency key length");
        rc = bp_err(BP_EINVAL, "line %llu: %s", (unsigned long long)ln, msg);
        goto out;
    }
    if (f->payload_len > imp->s->opts.max_payload) {
        rc = bp_err(BP_ETOOBIG, "line %llu: payload of %zu bytes exceeds this store's limit of %u",
                    (unsigned long long)ln, f->payload_len, imp->s->opts.max_payload);
        goto out;
    }
    bp_hash given;
    if (!parse_hash(json_string_value(hash), &given) ||
        !parse_hash(json_string_value(prev), &f->prev_hash)) {
        rc = bp_err(BP_EINVAL,
                    "line %llu: event_hash and prev_hash must be 64 lower-case hex digits",
                    (unsigned long long)ln);
        goto out;
    }
    bp_event_hash(f, &h->fr.event_hash);
    if (memcmp(h->fr.event_hash.b, given.b, 32) != 0)
        rc = bp_err(BP_ECORRUPT,
                    "line %llu: event_hash does not match the event's fields (entity '%s' clock "
                    "%llu): the export was altered",
                    (unsigned long long)ln, h->entity, (unsigned long long)f->clock);
out:
    json_decref(o);
    if (rc) held_free(h);
    return rc;
}

/* An event the store has already (an import resumed after a crash): the same id at the same
 * seq is skipped; anything else at that seq is refused. Returns BP_DONE to skip. */
static bp_status already_there(bp_importer *imp, const held *h) {
    bp_store *s = imp->s;
    uint64_t seq = h->fr.f.global_seq;
    bool same = false, there = false, hole = false;
    pthread_rwlock_rdlock(&s->ilock);
    if (seq <= s->published) {
        bp_irec r;
        int got = bp_store_rec(s, seq - 1, &r, 0); /* (-1: an unreadable record is not the same) */
        there = true;
        hole = got == 0;
        same = got > 0 && memcmp(r.id.b, h->fr.f.event_id.b, 16) == 0;
        bp_err_clear();
    }
    pthread_rwlock_unlock(&s->ilock);
    if (!there) return BP_OK;
    if (same) return BP_DONE;
    if (hole)
        return bp_err(BP_ECONFLICT,
                      "line %llu: global_seq %llu is a hole of this store's compacted range, "
                      "but the export holds an event there (an import of a compacted store "
                      "interrupted within its compacted range cannot be resumed: import into "
                      "a new directory)",
                      (unsigned long long)h->line, (unsigned long long)seq);
    return bp_err(BP_ECONFLICT,
                  "line %llu: this store holds another event at global_seq %llu (import into an "
                  "empty store, or one holding a prefix of this export)",
                  (unsigned long long)h->line, (unsigned long long)seq);
}

/* A frame whose seq is below the next one the importer expects (a relay's resend): the
 * same event as the store, or the group, holds at that seq is skipped (BP_DONE); another
 * one is a conflict. BP_OK when it is not below. */
static bp_status resent(bp_importer *imp, const held *h, const char *where) {
    bp_store *s = imp->s;
    uint64_t seq = h->fr.f.global_seq;
    pthread_rwlock_rdlock(&s->ilock);
    uint64_t published = s->published;
    bp_irec r;
    int got = seq <= published ? bp_store_rec(s, seq - 1, &r, 0) : 0;
    bp_err_clear();
    bool hole = seq <= published && got == 0;
    bool in_store = got > 0 && memcmp(r.id.b, h->fr.f.event_id.b, 16) == 0;
    pthread_rwlock_unlock(&s->ilock);
    /* the group's seqs are increasing (with holes within a compacted range) */
    uint64_t top = imp->n ? imp->group[imp->n - 1].fr.f.global_seq : published;
    if (seq > top && seq > published) return BP_OK;
    for (size_t i = 0; seq > published && i < imp->n; i++)
        if (imp->group[i].fr.f.global_seq == seq)
            in_store = !memcmp(imp->group[i].fr.f.event_id.b, h->fr.f.event_id.b, 16);
    if (in_store) return BP_DONE;
    if (hole || (seq > published && seq <= imp->upto))
        return bp_err(BP_ECONFLICT,
                      "%s: global_seq %llu came after later events of the compacted range (up to "
                      "%llu), where the replica took its place for a hole: rebuild the replica "
                      "in a new directory",
                      where, (unsigned long long)seq, (unsigned long long)imp->upto);
    return bp_err(BP_ECONFLICT,
                  "%s: this store holds another event at global_seq %llu (it is not a replica "
                  "of this stream, or received other writes)",
                  where, (unsigned long long)seq);
}

/* Add the checked event h to the group (or skip it: already held); commits full groups and
 * whole batches. Takes h. */
static bp_status import_held(bp_importer *imp, held *h, const char *where);

bp_status bp_import_frame(bp_importer *imp, const void *body, size_t len, uint64_t pos) {
    if (!imp || (!body && len)) return bp_err(BP_EINVAL, "bp_import_frame: NULL argument");
    if (imp->failed)
        return bp_err(imp->failed, "import stopped at an earlier error: %s", imp->failed_msg);
    imp->unit = "stream sequence";
    imp->line = pos;
    imp->rep.lines++;
    char where[48];
    snprintf(where, sizeof where, "stream sequence %llu", (unsigned long long)pos);
    held h;
    memset(&h, 0, sizeof h);
    h.line = pos;
    h.payload = malloc(len ? len : 1); /* the body: the frame's fields point into it */
    if (!h.payload) return fail(imp, bp_err(BP_ENOMEM, "import: out of memory"));
    memcpy(h.payload, body, len);
    bp_status rc = bp_frame_decode(h.payload, len, &h.fr);
    bp_event_fields *f = &h.fr.f;
    if (!rc) { /* the strings as the rest of the import path has them: NUL-terminated */
        h.entity = strndup(f->entity, f->entity_len);
        h.scope = strndup(f->scope, f->scope_len);
        if (f->idem_len) h.idem = strndup(f->idem_key, f->idem_len);
        if (!h.entity || !h.scope || (f->idem_len && !h.idem)) {
            held_free(&h);
            return fail(imp, bp_err(BP_ENOMEM, "import: out of memory"));
        }
        f->entity = h.entity;
        f->scope = h.scope;
        if (f->idem_len) f->idem_key = h.idem;
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        rc = bp_err(BP_ECORRUPT, "%s: not an event frame: %s", where, msg);
    } else if ((rc = bp_coord_validate_sys(f->entity, f->scope, true))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        rc = bp_err(BP_ECORRUPT, "%s: %s", where, msg);
    } else if (f->payload_len > imp->s->opts.max_payload) {
        rc = bp_err(BP_ETOOBIG, "%s: payload of %zu bytes exceeds this store's limit of %u", where,
                    f->payload_len, imp->s->opts.max_payload);
    } else {
        bp_hash computed;
        bp_event_hash(f, &computed);
        if (memcmp(computed.b, h.fr.event_hash.b, 32) != 0)
            rc = bp_err(BP_ECORRUPT,
                        "%s: event_hash does not match the event's fields (global_seq %llu, "
                        "entity '%.*s' clock %llu): the event was altered",
                        where, (unsigned long long)f->global_seq, (int)f->entity_len, f->entity,
                        (unsigned long long)f->clock);
    }
    if (!rc && (rc = resent(imp, &h, where)) == BP_DONE) {
        held_free(&h);
        imp->rep.skipped++;
        return BP_OK;
    }
    if (rc) {
        held_free(&h);
        bp_status frc = imp->batch_open ? BP_OK : flush_group(imp); /* keep what came before */
        if (imp->batch_open) drop_group(imp);
        return frc ? frc : fail(imp, rc);
    }
    return import_held(imp, &h, where);
}

bool bp_import_in_batch(const bp_importer *imp) {
    return imp && imp->batch_open;
}

bp_status bp_import_line(bp_importer *imp, const char *line, size_t len) {
    if (!imp || (!line && len)) return bp_err(BP_EINVAL, "bp_import_line: NULL argument");
    if (imp->failed)
        return bp_err(imp->failed, "import stopped at an earlier error: %s", imp->failed_msg);
    imp->line++;
    imp->rep.lines++;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (!len)
        return fail(imp, bp_err(BP_EINVAL, "line %llu: empty", (unsigned long long)imp->line));
    held h;
    bp_status rc = parse_line(imp, line, len, &h);
    if (rc == BP_DONE) return BP_OK; /* the anchors record, applied */
    if (rc) { /* what came before the bad line is imported, but a batch it breaks */
        char msg[700];
        snprintf(msg, sizeof msg, "%s", bp_last_error());
        bp_status frc = BP_OK;
        if (imp->batch_open)
            drop_group(imp);
        else
            frc = flush_group(imp);
        if (frc) return frc;
        return fail(imp, bp_err(rc, "%s", msg));
    }
    /* held lines are above what is published, so only a line after none can be there; a
     * batch the store holds is whole (batches are atomic), each of its lines is skipped */
    if (!imp->n && (rc = already_there(imp, &h))) {
        held_free(&h);
        if (rc != BP_DONE) return fail(imp, rc);
        imp->rep.skipped++;
        return BP_OK;
    }
    char where[40];
    snprintf(where, sizeof where, "line %llu", (unsigned long long)imp->line);
    return import_held(imp, &h, where);
}

static bp_status import_held(bp_importer *imp, held *hp, const char *where) {
    held h = *hp;
    bp_status rc;
    const bp_event_fields *f = &h.fr.f;
    /* within a compacted range a batch may have lost events to the compaction: its events
     * are written one by one, as they are (doc/FORMAT.md "Compaction") */
    bool in_batch = f->batch_count != 0 && f->global_seq > imp->upto;
    if (!imp->batch_open && imp->n && f->global_seq > imp->upto &&
        imp->group[imp->n - 1].fr.f.global_seq <= imp->upto && (rc = flush_group(imp))) {
        held_free(&h); /* the range and what follows it go into different writes */
        return rc;
    }
    if (imp->batch_open) {
        const bp_event_fields *first = &imp->group[0].fr.f;
        if (!in_batch || f->batch_id != first->batch_id || f->batch_count != first->batch_count ||
            f->batch_index != imp->n) {
            rc = bp_err(BP_EINVAL,
                        "%s: batch %llu (from %s %llu) has %zu of its %u events; the batch is "
                        "not imported",
                        where, (unsigned long long)first->batch_id, imp->unit,
                        (unsigned long long)imp->group[0].line, imp->n, first->batch_count);
            held_free(&h);
            drop_group(imp);
            return fail(imp, rc);
        }
    } else if (in_batch) {
        if (f->batch_index != 0) {
            held_free(&h);
            if ((rc = flush_group(imp))) return rc;
            return fail(imp, bp_err(BP_EINVAL, "%s: batch %llu starts at index %u, not 0", where,
                                    (unsigned long long)f->batch_id, f->batch_index));
        }
        if ((rc = flush_group(imp))) {
            held_free(&h);
            return rc;
        }
    }
    imp->group[imp->n++] = h;
    if (in_batch) {
        imp->batch_open = true;
        if (imp->n == f->batch_count) return flush_group(imp);
        if (imp->n == imp->cap) { /* a larger batch: room for all of it */
            held *g = realloc(imp->group, f->batch_count * sizeof *g);
            if (!g) {
                drop_group(imp);
                return fail(imp, bp_err(BP_ENOMEM, "import: out of memory"));
            }
            imp->group = g;
            imp->cap = f->batch_count;
        }
        return BP_OK;
    }
    return imp->n == IMPORT_GROUP ? flush_group(imp) : BP_OK;
}

bp_status bp_import_end(bp_importer *imp, bp_import_report *report) {
    if (!imp) return bp_err(BP_EINVAL, "bp_import_end: NULL importer");
    bp_status rc = imp->failed ? bp_err(imp->failed, "%s", imp->failed_msg) : BP_OK;
    if (!rc && imp->batch_open) {
        const held *g = &imp->group[0];
        rc = bp_err(BP_EINVAL,
                    "end of input: batch %llu (from line %llu) has %zu of its %u events; the "
                    "batch is not imported",
                    (unsigned long long)g->fr.f.batch_id, (unsigned long long)g->line, imp->n,
                    g->fr.f.batch_count);
        drop_group(imp);
    }
    if (!rc) rc = flush_group(imp);
    bp_status src = bp_store_sync(imp->s); /* what was imported is durable either way */
    if (!rc) rc = src;
    if (report && !BP_SIZE_OK(report, bp_import_report)) { /* all was done but the report */
        if (!rc)
            rc = bp_err_size("bp_import_end", "bp_import_report", "BP_IMPORT_REPORT_INIT",
                             report->struct_size, sizeof *report);
    } else if (report) {
        *report = imp->rep;
        report->struct_size = sizeof *report;
    }
    drop_group(imp);
    free(imp->group);
    free(imp);
    return rc;
}
