/* Golden stores: small stores written by format version 1 and committed under
 * tests/golden/<name>/ with the dump every build must produce from them
 * (tests/golden/<name>.expected): the open report and every event, field by field, with its
 * hashes and payload. Each is opened (read-only, on a copy) and verified; every frame is also
 * encoded again from its decoded fields and must equal the bytes on disk. Any change to the
 * format, the encoder, the decoder or recovery shows up as a difference here.
 *
 *   test_golden                 check every golden store
 *   test_golden --write [NAME]  rebuild tests/golden/, or one store of it (only for a
 *                               deliberate format change, or a new store)
 */
#include "t.h"
#include "t_six.h"
#include "bp_testing.h"
#include "format/format.h"
#include "store/store_impl.h"

#include <sys/stat.h>

#define GOLDEN BP_SOURCE_DIR "/tests/golden"

static void hex(FILE *f, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* The dump: open report, then one line per event. */
static bool dump(const char *dir, FILE *f) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    o.create = false;
    bp_store *s;
    if (bp_store_open(&s, dir, &o) != BP_OK) {
        fprintf(f, "open failed: %s\n", bp_strerror(BP_ECORRUPT));
        return false;
    }
    bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
    bp_store_open_report_get(s, &r);
    fprintf(f, "open segments=%u footers=%u checkpoint=%d scanned=%llu cut=%llu events=%llu\n",
            r.segments, r.footers_used, r.checkpoint_used, (unsigned long long)r.frames_scanned,
            (unsigned long long)r.bytes_cut, (unsigned long long)r.events);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    bool clean = bp_store_verify(s, &vr, NULL) == BP_OK;
    fprintf(f, "verify %s events=%llu entities=%llu\n", clean ? "clean" : "PROBLEM",
            (unsigned long long)vr.events, (unsigned long long)vr.entities);
    bp_region q = BP_REGION_INIT;
    bp_iter *it;
    const bp_event *e;
    bool ok = bp_query(s, &it, &q, BP_READ_FULL) == BP_OK;
    while (ok && bp_iter_next(it, &e) == BP_OK) {
        fprintf(f, "%llu %llu %llu %04x %u %s %s ", (unsigned long long)e->global_seq,
                (unsigned long long)e->clock, (unsigned long long)e->hlc, e->kind, e->flags,
                e->entity, e->scope);
        hex(f, e->event_id.b, 16);
        fputc(' ', f);
        hex(f, e->correlation_id.b, 16);
        fputc(' ', f);
        if (e->has_causation)
            hex(f, e->causation_id.b, 16);
        else
            fputc('-', f);
        fputc(' ', f);
        hex(f, e->prev_hash.b, 32);
        fputc(' ', f);
        hex(f, e->event_hash.b, 32);
        fprintf(f, " %llu/%u/%u %s ", (unsigned long long)e->batch_id, e->batch_index,
                e->batch_count, e->idempotency_key ? e->idempotency_key : "-");
        hex(f, e->payload, e->payload_len);
        fputc('\n', f);
        /* the encoder must reproduce the frame on disk byte for byte */
        bp_irec rec;
        if (bp_store_rec(s, e->global_seq - 1, &rec, 0) <= 0) memset(&rec, 0, sizeof rec);
        bp_segref ref;
        bp_buf raw = {0}, enc = {0};
        bp_frame fr;
        if (!bp_segment_ref(s, rec.segno, &ref) || bp_read_frame(s, &rec, &ref, &raw, &fr) ||
            bp_frame_encode(&enc, &fr) || enc.len != rec.frame_len) {
            fprintf(f, "REENCODE FAILED at seq %llu\n", (unsigned long long)e->global_seq);
        } else {
            uint8_t *disk = malloc(rec.frame_len);
            char path[4200];
            snprintf(path, sizeof path, "%s/%06u.fbat", s->segdir, rec.segno);
            bp_file fl = BP_FILE_INIT;
            if (!disk || bp_pf_open(&fl, NULL, path, BP_O_READ) ||
                bp_pf_pread(&fl, disk, rec.frame_len, rec.offset) != rec.frame_len ||
                memcmp(disk, enc.data, enc.len))
                fprintf(f, "REENCODE DIFFERS at seq %llu\n", (unsigned long long)e->global_seq);
            bp_pf_close(&fl);
            free(disk);
        }
        bp_segref_done(s, &ref);
        bp_buf_free(&raw);
        bp_buf_free(&enc);
    }
    if (ok) bp_iter_free(it);
    bp_store_close(s);
    return ok;
}

static void copy_tree(const char *from, const char *to) {
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/LOCK'", to, from, to,
             to);
    if (system(cmd) != 0) fprintf(stderr, "copy failed: %s\n", cmd);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) == (size_t)n)
        p[n] = '\0';
    else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* indexed: written with segment index files of version 1 (DIR/segments/NNNNNN.fidx), which
 * this build passes over (it reads the footers); indexed2: with version 2 files and
 * entities.ckpt version 2, read through them */
static const char *NAMES[] = {"clean", "crashed", "full-checkpoint", "indexed", "indexed2"};

static void check_one(const char *name) {
    char src[1200], exp[1200], got[1200];
    snprintf(src, sizeof src, "%s/%s", GOLDEN, name);
    snprintf(exp, sizeof exp, "%s/%s.expected", GOLDEN, name);
    const char *work = t_dir("golden");
    copy_tree(src, work);
    snprintf(got, sizeof got, "%s.got", work);
    FILE *f = fopen(got, "w");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(dump(work, f));
    fclose(f);
    char *a = read_text(exp), *b = read_text(got);
    CHECK(a != NULL && b != NULL);
    if (a && b && strcmp(a, b) != 0)
        fprintf(stderr, "golden store %s: the dump differs from %s (see %s)\n", name, exp, got);
    CHECK(a && b && strcmp(a, b) == 0);
    CHECK(b && !strstr(b, "PROBLEM") && !strstr(b, "REENCODE"));
    free(a);
    free(b);
    t_rmdir(work);
}

static void test_golden_stores(void) {
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        check_one(NAMES[i]);
}

/* indexed2 is read in place: its sealed segments by their index files, its entities from
 * entities.ckpt (none loaded at open); indexed's version 1 files are not used. */
static void test_golden_in_place(void) {
    const char *names[] = {"indexed2", "indexed"};
    for (size_t i = 0; i < 2; i++) {
        char src[1200];
        snprintf(src, sizeof src, "%s/%s", GOLDEN, names[i]);
        const char *work = t_dir("golden-place");
        copy_tree(src, work);
        bp_open_options o = BP_OPEN_OPTIONS_INIT;
        o.read_only = true;
        bp_store *s;
        CHECK_OK(bp_store_open(&s, work, &o));
        if (i == 0) {
            CHECK(s->n_six >= 1 && s->n_six + 1 >= s->n_segs);
            CHECK(s->idx.cold != NULL && s->entckpt_segno == s->segs[s->n_six - 1].segno);
        } else {
            CHECK_EQ(s->n_six, 0);
            CHECK(s->idx.cold == NULL);
        }
        CHECK_OK(bp_store_close(s));
        t_rmdir(work);
    }
}

/* Everything of a dump but its first line (the open report). */
static const char *events_of(const char *dump) {
    const char *nl = dump ? strchr(dump, '\n') : NULL;
    return nl ? nl + 1 : "";
}

/* A store written before segment index files existed, or with version 1 ones: a writable
 * open writes them, and the store reads the same through them. */
static void test_golden_converted(void) {
    const char *names[] = {"clean", "crashed", "indexed"}; /* (indexed: version 1 files) */
    for (size_t i = 0; i < 3; i++) {
        char src[1200], exp[1200], got[1200];
        snprintf(src, sizeof src, "%s/%s", GOLDEN, names[i]);
        snprintf(exp, sizeof exp, "%s/%s.expected", GOLDEN, names[i]);
        const char *work = t_dir("golden-conv");
        copy_tree(src, work);
        bp_open_options o = BP_OPEN_OPTIONS_INIT;
        o.no_open_event = true;
        o.create = false;
        bp_store *s;
        CHECK_OK(bp_store_open(&s, work, &o));
        CHECK_OK(bp_store_close(s));
        CHECK(t_six_all_current(work));
        snprintf(got, sizeof got, "%s.got", work);
        FILE *f = fopen(got, "w");
        CHECK(f != NULL);
        CHECK(dump(work, f));
        fclose(f);
        char *a = read_text(exp), *b = read_text(got);
        CHECK(a && b && strcmp(events_of(a), events_of(b)) == 0);
        free(a);
        free(b);
        t_rmdir(work);
    }
}

/* --write: the stores and their dumps. */
static void build(const char *name) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN, name);
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return;
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    if (bp_store_open(&s, dir, &o)) return;
    bp_id first = {{0}};
    for (int i = 0; i < 45; i++) {
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        char key[16], payload[64];
        snprintf(key, sizeof key, "key-%d", i);
        if (i % 6 == 0) ao.idempotency_key = key;
        if (i > 0 && i % 4 == 0) ao.causation_id = &first;
        int n = snprintf(payload, sizeof payload, "{\"n\":%d,\"pad\":\"%.*s\"}", i, i % 30,
                         "................................");
        bp_receipt r = BP_RECEIPT_INIT;
        if (bp_append_ex(s, &r, i % 3 ? "acct:1" : "acct:2", i % 2 ? "bank" : "audit",
                         (uint16_t)(0x1001 + i % 3), payload, (size_t)n, &ao))
            return;
        if (i == 0) first = r.event_id;
        if (i == 30) {
            bp_batch_item it[3] = {{"acct:1", "bank", 0x1010, "b0", 2, NULL},
                                   {"acct:3", "bank", 0x1010, "b1", 2, NULL},
                                   {"acct:2", "audit", 0x1011, "", 0, NULL}};
            if (bp_append_batch(s, NULL, it, 3)) return;
        }
    }
    if (!strcmp(name, "clean") || !strcmp(name, "indexed") || !strcmp(name, "indexed2")) {
        bp_store_close(s);
    } else if (!strcmp(name, "crashed")) {
        bp_store_sync(s);
        /* no checkpoint, the newest segment unsealed, and its last frame torn */
        char seg[1300];
        snprintf(seg, sizeof seg, "%s/%06u.fbat", s->segdir, s->segs[s->n_segs - 1].segno);
        uint64_t size = s->segs[s->n_segs - 1].size;
        bp__store_crash(s);
        if (truncate(seg, (off_t)size - 7)) return;
    } else { /* full-checkpoint: what earlier builds wrote at close */
        if (bp_store_sync(s) || bp__store_checkpoint_full(s)) return;
        bp__store_crash(s);
    }
    snprintf(cmd, sizeof cmd, "rm -f '%s/LOCK'", dir);
    if (system(cmd)) return;
    char exp[1300];
    snprintf(exp, sizeof exp, "%s/%s.expected", GOLDEN, name);
    const char *work = t_dir("golden-w");
    copy_tree(dir, work);
    FILE *f = fopen(exp, "w");
    if (f) {
        dump(work, f);
        fclose(f);
    }
    t_rmdir(work);
    printf("wrote %s and %s\n", dir, exp);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--write")) { /* --write [NAME]: all, or that one */
        mkdir(GOLDEN, 0755);
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
            if (argc < 3 || !strcmp(argv[2], NAMES[i])) build(NAMES[i]);
        return 0;
    }
    RUN(test_golden_stores);
    RUN(test_golden_in_place);
    RUN(test_golden_converted);
    T_DONE();
}
