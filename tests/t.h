/* t.h — a tiny test framework: CHECK macros that report file:line and the
 * library's last error, scratch directories, and a main() that runs tests. */
#ifndef BP_T_H
#define BP_T_H

#include "batpak/batpak.h"
#include "bp_testing.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int t_failures;
static int t_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        t_checks++;                                                                                \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, __LINE__,      \
                    #cond, bp_last_error());                                                       \
            t_failures++;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        t_checks++;                                                                                \
        if (_a != _b) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld (last error: %s)\n",   \
                    __FILE__, __LINE__, #a, _a, #b, _b, bp_last_error());                          \
            t_failures++;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define CHECK_OK(expr) CHECK_EQ((expr), BP_OK)

/* expr fails with code and bp_last_error() says needle. */
#define CHECK_FAILS(expr, code, needle)                                                            \
    do {                                                                                           \
        int _got = (expr);                                                                         \
        CHECK_EQ(_got, (code));                                                                    \
        t_checks++;                                                                                \
        if (!strstr(bp_last_error(), (needle))) {                                                  \
            fprintf(stderr, "%s:%d: message lacks '%s': %s\n", __FILE__, __LINE__, (needle),       \
                    bp_last_error());                                                              \
            t_failures++;                                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* How the tests open a store (t_open, t_open_try): the options the tests set, zero for the
 * library's default, except that the SYSTEM_OPEN_COMPLETED event is skipped unless open_event
 * is set. t_open_try is the only place the tests put the fault hook into bp_open_options. */
typedef struct t_open_opts {
    uint32_t segment_size;             /* 0: BP_DEFAULT_SEGMENT_SIZE */
    uint32_t max_payload;              /* 0: BP_MAX_PAYLOAD */
    uint32_t submit_queue;             /* 0: BP_SUBMIT_QUEUE_DEFAULT */
    bp_durability durability;          /* mode BP_DUR_DEFAULT (zero): the default, BP_DURABLE */
    bool read_only;                    /* open for reading only */
    bool no_create;                    /* fail with BP_ENOTFOUND when there is no store */
    bool open_event;                   /* write the SYSTEM_OPEN_COMPLETED event */
    bool salvage;                      /* keep the valid prefix of a corrupt segment */
    bool accept_loss;                  /* open even though acknowledged data is gone */
    bool seal_payloads;                /* crypto-shredding on */
    struct bp_fault *fault;            /* the test hook (src/platform/platform.h), or NULL */
    const bp_signing_key *signing_key; /* sign receipts with this key, or NULL */
} t_open_opts;

/* bp_store_open of dir with o (NULL: all defaults); *s is NULL on error. */
/* The fsyncs the fault hook f counted so far (f->syncs, under its lock). */
static inline uint64_t t_fault_syncs(bp_fault *f) {
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->syncs;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static inline bp_status t_open_try(bp_store **s, const char *dir, const t_open_opts *o) {
    static const t_open_opts none;
    if (!o) o = &none;
    bp_open_options bo = BP_OPEN_OPTIONS_INIT;
    bo.create = !o->no_create;
    bo.read_only = o->read_only;
    bo.salvage = o->salvage;
    bo.no_open_event = !o->open_event;
    if (o->segment_size) bo.segment_size = o->segment_size;
    if (o->max_payload) bo.max_payload = o->max_payload;
    if (o->durability.mode != BP_DUR_DEFAULT) bo.durability = o->durability;
    bo.signing_key = o->signing_key;
    bo.submit_queue = o->submit_queue;
    bo.seal_payloads = o->seal_payloads;
    bo.accept_loss = o->accept_loss;
    return bp__store_open_fault(s, dir, &bo, o->fault);
}

/* t_open(dir, o): the store at dir opened with o (NULL: defaults). An open that fails ends the
 * test program (status 1) with the caller's file:line and the library's message. Not for
 * forked children that must leave with _exit: they use t_open_try. */
#define t_open(...) t_open_at(__FILE__, __LINE__, __VA_ARGS__)

static inline bp_store *t_open_at(const char *file, int line, const char *dir,
                                  const t_open_opts *o) {
    bp_store *s = NULL;
    bp_status rc = t_open_try(&s, dir, o);
    if (rc != BP_OK) {
        fprintf(stderr, "%s:%d: t_open(%s) failed: %s (last error: %s)\n", file, line, dir,
                bp_strerror(rc), bp_last_error());
        exit(1);
    }
    return s;
}

/* A fresh, empty scratch directory unique to this test process. */
static inline const char *t_dir(const char *name) {
    static char path[4][1024];
    static int k;
    const char *base = getenv("BP_TEST_TMP");
    if (!base) base = "/tmp/batpak-tests";
    char *p = path[k++ % 4];
    snprintf(p, 1024, "%s/%s-%ld", base, name, (long)getpid());
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", p, p);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", p);
        exit(2);
    }
    return p;
}

/* Every element of r[0..n) made with BP_RECEIPT_INIT: an array given whole to a batch needs only
 * r[0]'s struct_size (the stride), but each element given alone needs its own. */
static inline bp_receipt *t_receipts(bp_receipt *r, size_t n) {
    for (size_t i = 0; i < n; i++)
        r[i] = (bp_receipt)BP_RECEIPT_INIT;
    return r;
}

static inline void t_rmdir(const char *p) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", p);
}

/* Events of entity in the index (no disk reads); UINT64_MAX if the stream cannot open. */
static inline uint64_t t_count_stream(bp_store *s, const char *entity) {
    bp_iter *it;
    const bp_event *ev;
    uint64_t n = 0;
    if (bp_stream(s, &it, entity, BP_READ_INDEX_ONLY)) return UINT64_MAX;
    while (bp_iter_next(it, &ev) == BP_OK)
        n++;
    bp_iter_free(it);
    return n;
}

/* A growing NUL-terminated buffer, and a bp_write_fn appending to one. */
typedef struct t_membuf {
    char *p;
    size_t n, cap;
} t_membuf;

static inline bp_status t_to_mem(void *ctx, const void *data, size_t len) {
    t_membuf *m = ctx;
    if (m->n + len + 1 > m->cap) {
        size_t cap = (m->n + len + 1) * 2;
        char *p = realloc(m->p, cap);
        if (!p) return BP_ENOMEM;
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
    m->p[m->n] = '\0';
    return BP_OK;
}

/* The whole export of s as text (NULL on error). skip_anchors: leave out the anchors record a
 * compacted store's export starts with (compare event lines only). */
static inline char *t_export(bp_store *s, bool skip_anchors) {
    t_membuf m = {0};
    if (bp_export(s, t_to_mem, &m, NULL) != BP_OK) {
        free(m.p);
        return NULL;
    }
    if (!m.p) m.p = calloc(1, 1);
    if (m.p && skip_anchors && !strncmp(m.p, "{\"format\":", 10)) {
        char *nl = strchr(m.p, '\n');
        memmove(m.p, nl + 1, strlen(nl + 1) + 1);
    }
    return m.p;
}

/* The other side of the crash and fault matrices: no crash needs accept_loss (their reopens
 * do without it), while a segment that a clean close covered, moved away, is refused as lost
 * and the refusal writes nothing: moved back, the store opens as before (opened with o). */
static inline void t_check_loss_refused(const char *dir, const t_open_opts *o) {
    char segdir[1200], from[1400], to[1400];
    snprintf(segdir, sizeof segdir, "%s/segments", dir);
    DIR *d = opendir(segdir);
    CHECK(d != NULL);
    unsigned newest = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned k = (unsigned)strtoul(e->d_name, NULL, 10);
        if (strstr(e->d_name, ".fbat") && !strchr(strchr(e->d_name, '.') + 1, '.') && k > newest)
            newest = k;
    }
    closedir(d);
    CHECK(newest > 0);
    snprintf(from, sizeof from, "%s/%06u.fbat", segdir, newest);
    snprintf(to, sizeof to, "%s/moved-away", dir);
    CHECK_EQ(rename(from, to), 0);
    bp_store *s = NULL;
    bp_status rc = t_open_try(&s, dir, o);
    CHECK_EQ(rename(to, from), 0);
    CHECK_EQ(rc, BP_ECORRUPT);
    CHECK(strstr(bp_last_error(), "is missing") != NULL);
    CHECK(strstr(bp_last_error(), "accept_loss") != NULL);
    CHECK_OK(t_open_try(&s, dir, o));
    CHECK_OK(bp_store_close(s));
}

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        int _before = t_failures;                                                                  \
        fn();                                                                                      \
        fprintf(stderr, "%s %s\n", t_failures == _before ? "ok  " : "FAIL", #fn);                  \
    } while (0)

#define T_DONE()                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "%d checks, %d failures\n", t_checks, t_failures);                         \
        return t_failures ? 1 : 0;                                                                 \
    } while (0)

#endif
