/* test_layers.c — the store core stands alone, and calls the modules built on it at the
 * points store_impl.h states (bp_store_module): open, stop, flush, free, forget. */
#include "t.h"
#include "store/store_impl.h"

#include <stdint.h>

/* A module that records the order of its hooks. */
typedef struct rec {
    char log[256];
    int opened;
} rec;

static rec g_rec;

static void note(rec *r, const char *what) {
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s%s", n ? " " : "", what);
}

static bp_status rec_open(bp_store *s, const bp_open_options *o, void **state) {
    (void)s;
    (void)o;
    g_rec.opened++;
    note(&g_rec, "open");
    *state = &g_rec;
    return BP_OK;
}
static void rec_stop(bp_store *s, void *st) {
    (void)s;
    note(st, "stop");
}
static void rec_flush(bp_store *s, void *st) {
    (void)s;
    note(st, "flush");
}
static void rec_free(void *st) {
    note(st, "free");
}
static bp_status rec_forget(bp_store *s, void *st, const char *entity) {
    (void)s;
    note(st, "forget:");
    note(st, entity);
    return BP_OK;
}

static int count(const char *log, const char *word) {
    int n = 0;
    for (const char *p = log; (p = strstr(p, word)); p += strlen(word))
        n++;
    return n;
}

static const bp_store_module rec_module = {"rec",    rec_open,   rec_stop, rec_flush,
                                           rec_free, rec_forget, NULL};

/* A module whose open fails: the store is not opened, and its state is freed. */
static int g_failed_freed;
static bp_status bad_open(bp_store *s, const bp_open_options *o, void **state) {
    (void)s;
    (void)o;
    *state = &g_failed_freed;
    return bp_err(BP_EIO, "the module refused");
}
static void bad_free(void *st) {
    ++*(int *)st;
}
static const bp_store_module bad_module = {"bad", bad_open, NULL, NULL, bad_free, NULL, NULL};

/* The core with no module: appends, reads, closes, reopens. */
static void test_core_alone(void) {
    const char *dir = t_dir("alone");
    bp_store *s = NULL;
    CHECK_OK(bp_store_open_with(&s, dir, NULL, NULL, NULL, 0));
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "order:1", "shop", 0x1001, "abc", 3));
    CHECK_EQ(r.durability, BP_DUR_SYNC);
    CHECK_EQ(r.is_signed, 0);
    bp_event *ev = NULL;
    CHECK_OK(bp_get(s, &ev, &r.event_id));
    CHECK_EQ(ev->payload_len, 3);
    CHECK(memcmp(ev->payload, "abc", 3) == 0);
    bp_event_free(ev);
    CHECK_OK(bp_store_close(s));
    CHECK_OK(bp_store_open_with(&s, dir, NULL, NULL, NULL, 0));
    uint64_t clock = 0;
    CHECK_OK(bp_entity_head(s, &clock, NULL, "order:1"));
    CHECK_EQ(clock, 1);
    CHECK_OK(bp_store_close(s));
}

static void test_hook_order(void) {
    const char *dir = t_dir("hooks");
    const bp_store_module *mods[] = {&rec_module};
    bp_store *s = NULL;
    memset(&g_rec, 0, sizeof g_rec);
    CHECK_OK(bp_store_open_with(&s, dir, NULL, NULL, mods, 1));
    CHECK(bp_store_module_state(s, 0) == &g_rec);
    CHECK(bp_store_module_state(s, 1) == NULL);
    CHECK_OK(bp_store_forget_hooks(s, "order:7"));
    CHECK_OK(bp_store_close(s));
    /* stop may run again in the teardown; flush only once, free last */
    const char *order = "open forget: order:7 stop flush";
    CHECK(strncmp(g_rec.log, order, strlen(order)) == 0);
    size_t n = strlen(g_rec.log);
    CHECK(n >= 4 && strcmp(g_rec.log + n - 4, "free") == 0);
    CHECK_EQ(count(g_rec.log, "flush"), 1);
    CHECK_EQ(count(g_rec.log, "free"), 1);

    /* read-only: no flush */
    memset(&g_rec, 0, sizeof g_rec);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.read_only = true;
    CHECK_OK(bp_store_open_with(&s, dir, &o, NULL, mods, 1));
    CHECK_OK(bp_store_close(s));
    CHECK(strstr(g_rec.log, "flush") == NULL);
    CHECK(strstr(g_rec.log, "stop") != NULL);
    CHECK_EQ(g_rec.opened, 1);
}

static void test_module_open_fails(void) {
    const char *dir = t_dir("badmod");
    const bp_store_module *mods[] = {&rec_module, &bad_module};
    bp_store *s = NULL;
    memset(&g_rec, 0, sizeof g_rec);
    g_failed_freed = 0;
    CHECK_FAILS(bp_store_open_with(&s, dir, NULL, NULL, mods, 2), BP_EIO, "the module refused");
    CHECK(s == NULL);
    CHECK_EQ(g_failed_freed, 1);               /* the failing module's state is freed */
    CHECK(strstr(g_rec.log, "free") != NULL);  /* and so is the one opened before it */
    CHECK(strstr(g_rec.log, "flush") == NULL); /* nothing was flushed */
    const bp_store_module *many[BP_STORE_MODULES_MAX + 1];
    for (size_t i = 0; i <= BP_STORE_MODULES_MAX; i++)
        many[i] = &rec_module;
    CHECK_FAILS(bp_store_open_with(&s, dir, NULL, NULL, many, BP_STORE_MODULES_MAX + 1), BP_EINVAL,
                "modules");
    CHECK(s == NULL);
}

int main(void) {
    RUN(test_core_alone);
    RUN(test_hook_order);
    RUN(test_module_open_fails);
    T_DONE();
}
