/* Fuzz target: untrusted export lines (bp_import_line, as `batpak import` reads them) into a
 * fresh store. When a whole input imports, its events export, import into a second fresh
 * store and export again to the same bytes, and both stores verify. */
#include "platform/platform.h"

#include <batpak/batpak.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct membuf {
    char *p;
    size_t n, cap;
} membuf;

static bp_status to_mem(void *ctx, const void *d, size_t len) {
    membuf *m = ctx;
    if (m->n + len > m->cap) {
        m->cap = (m->n + len) * 2;
        if (!(m->p = realloc(m->p, m->cap))) abort();
    }
    memcpy(m->p + m->n, d, len);
    m->n += len;
    return BP_OK;
}

static bp_store *fresh(const char *dir) {
    bp_pf_rmtree(dir);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.no_open_event = true;
    o.durability = BP_NO_SYNC;
    o.segment_size = 16384;
    bp_store *s;
    if (bp_store_open(&s, dir, &o)) abort();
    return s;
}

/* Import the lines of p[0..n); true when every line and the end succeeded. */
static bool import_all(bp_store *s, const char *p, size_t n) {
    bp_importer *imp;
    if (bp_import_begin(s, &imp)) abort();
    bool ok = true;
    for (size_t at = 0, lines = 0; at < n && ok && lines < 256; lines++) {
        const char *nl = memchr(p + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (p + at)) + 1 : n - at;
        ok = bp_import_line(imp, p + at, len) == BP_OK;
        at += len;
    }
    bp_import_report rep = BP_IMPORT_REPORT_INIT;
    bp_status rc = bp_import_end(imp, &rep);
    return ok && rc == BP_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char a[256], b[256];
    if (!a[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(a, sizeof a, "%s/bp-fuzz-import-%ld-a", base, (long)getpid());
        snprintf(b, sizeof b, "%s/bp-fuzz-import-%ld-b", base, (long)getpid());
    }
    bp_store *s = fresh(a);
    bool whole = import_all(s, (const char *)data, size);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    if (bp_store_verify(s, &vr, NULL) != BP_OK) abort(); /* a refused line leaves nothing broken */
    if (whole) {
        membuf e1 = {0}, e2 = {0};
        if (bp_export(s, to_mem, &e1, NULL)) abort();
        bp_store *t = fresh(b);
        if (!import_all(t, e1.p ? e1.p : "", e1.n)) abort();
        if (bp_export(t, to_mem, &e2, NULL)) abort();
        if (e1.n != e2.n || (e1.n && memcmp(e1.p, e2.p, e1.n) != 0)) abort();
        if (bp_store_verify(t, &vr, NULL) != BP_OK) abort();
        if (bp_store_close(t)) abort();
        bp_pf_rmtree(b);
        free(e1.p);
        free(e2.p);
    }
    if (bp_store_close(s)) abort();
    bp_pf_rmtree(a);
    return 0;
}
