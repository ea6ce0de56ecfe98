/* Projections: equality with a fold from scratch after any mix of appends,
 * reopens and evictions; the cache; project_if_changed; persistent snapshots
 * and their rejection; watchers (coalescing, final state, errors); the replay
 * lanes; concurrent projects under appends (batpak/project.h). */
#include "t.h"

#include <jansson.h>
#include <pthread.h>
#include <sys/stat.h>

#define DEPOSIT(F) F(ONE, I64, amount, 0)
BP_TYPE_STATIC(deposit, DEPOSIT, "bank.deposit", BP_KIND(1, 1), 1);
#define WITHDRAW(F)                                                                                \
    F(ONE, I64, amount, 0)                                                                         \
    F(OPT, STR, memo, 16)
BP_TYPE_STATIC(withdraw, WITHDRAW, "bank.withdraw", BP_KIND(1, 2), 1);
#define KIND_NOTE BP_KIND(1, 3)  /* read raw by the projection */
#define KIND_OTHER BP_KIND(1, 4) /* not read */

typedef struct account {
    int64_t balance;
    uint64_t deposits, withdrawals, notes;
    uint64_t last_clock;
    uint64_t digest; /* order-sensitive: a fold in another order differs */
} account;

static int applies;
static bp_status apply_account(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    account *a = state;
    __atomic_fetch_add(&applies, 1, __ATOMIC_RELAXED);
    if (ev->kind == deposit_type.kind) {
        const deposit *d = value;
        if (d->amount == 666) return bp_set_error(BP_EINVAL, "cursed amount");
        a->balance += d->amount;
        a->deposits++;
    } else if (ev->kind == withdraw_type.kind) {
        a->balance -= ((const withdraw *)value)->amount;
        a->withdrawals++;
    } else if (ev->kind == KIND_NOTE) {
        if (value != NULL) return BP_EINVAL;
        a->notes++;
    } else {
        return BP_EINVAL; /* never asked for */
    }
    a->last_clock = ev->clock;
    a->digest = a->digest * 31 + ev->clock * 7 + (uint64_t)a->balance;
    return BP_OK;
}

static void init_account(void *ctx, void *state) {
    (void)ctx;
    ((account *)state)->digest = 17;
}

static const bp_type *const account_types[] = {&deposit_type, &withdraw_type};
static const uint16_t account_kinds[] = {KIND_NOTE};

static bp_projection account_projection(void) {
    bp_projection p = BP_PROJECTION_INIT; /* then what differs from the defaults */
    p.name = "account";
    p.state_size = sizeof(account);
    p.init = init_account;
    p.apply = apply_account;
    p.types = account_types;
    p.n_types = 2;
    p.kinds = account_kinds;
    p.n_kinds = 1;
    return p;
}

/* The stores of these tests: appends synced at close only (BP_NO_SYNC). */
static const t_open_opts NO_SYNC = {.durability = {.mode = BP_DUR_NONE}};

/* The reference: fold the entity's stream from scratch, by hand. */
static bp_status scratch(bp_store *s, const char *entity, account *out, uint64_t *clock) {
    memset(out, 0, sizeof *out);
    init_account(NULL, out);
    bp_iter *it;
    bp_status rc = bp_stream(s, &it, entity, BP_READ_FULL);
    if (rc) return rc;
    const bp_event *ev;
    *clock = 0;
    while ((rc = bp_iter_next(it, &ev)) == BP_OK) {
        *clock = ev->clock;
        if (ev->kind == deposit_type.kind || ev->kind == withdraw_type.kind) {
            union {
                deposit d;
                withdraw w;
            } v;
            const bp_type *t = ev->kind == deposit_type.kind ? &deposit_type : &withdraw_type;
            if ((rc = bp_event_decode(s, &v, ev, t))) break;
            apply_account(NULL, out, ev, &v);
        } else if (ev->kind == KIND_NOTE) {
            apply_account(NULL, out, ev, NULL);
        }
    }
    bp_iter_free(it);
    return rc == BP_DONE ? BP_OK : rc;
}

static bp_status random_append(bp_store *s, const char *entity) {
    switch (rand() % 4) {
    case 0: {
        deposit d = {.amount = rand() % 600};
        return bp_append_typed(s, NULL, entity, "bank", &deposit_type, &d, NULL);
    }
    case 1: {
        withdraw w = {.amount = rand() % 500, .has_memo = rand() & 1, .memo = "rent"};
        return bp_append_typed(s, NULL, entity, "bank", &withdraw_type, &w, NULL);
    }
    case 2:
        return bp_append(s, NULL, entity, "bank", KIND_NOTE, "\xa1n", 2);
    default:
        return bp_append(s, NULL, entity, "bank", KIND_OTHER, "\xa1o", 2);
    }
}

static void test_equals_scratch_fold(void) {
    const char *dir = t_dir("proj-eq");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_projection p = account_projection();
    const char *ents[] = {"acct:1", "acct:2", "acct:3", "acct:4", "acct:5"};
    srand(7);
    bp_projection_cache_stats st = BP_PROJECTION_CACHE_STATS_INIT,
                              sum = BP_PROJECTION_CACHE_STATS_INIT;
    for (int round = 0; round < 300; round++) {
        int k = rand() % 5;
        int n = rand() % 8;
        for (int i = 0; i < n; i++)
            CHECK_OK(random_append(s, ents[k]));
        int action = rand() % 20;
        if (action == 0) { /* reopen: the cache starts empty */
            CHECK_OK(bp_projection_cache_stats_get(s, &st));
            sum.hits += st.hits;
            sum.partial += st.partial;
            sum.misses += st.misses;
            sum.evictions += st.evictions;
            CHECK_OK(bp_store_close(s));
            s = t_open(dir, &NO_SYNC);
        } else if (action == 1) { /* a tiny cache evicts all the time */
            CHECK_OK(bp_projection_cache_limit(s, (size_t)(rand() % 3) * 200));
        } else if (action == 2) {
            CHECK_OK(bp_projection_cache_limit(s, BP_PROJECTION_CACHE_DEFAULT));
        }
        int q = rand() % 5;
        account got, want;
        uint64_t clock;
        bp_project_info info = BP_PROJECT_INFO_INIT;
        CHECK_OK(bp_project(s, &got, &info, &p, ents[q], BP_CONSISTENT));
        CHECK_OK(scratch(s, ents[q], &want, &clock));
        CHECK(memcmp(&got, &want, sizeof got) == 0);
        CHECK_EQ(info.clock, clock);
    }
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    sum.hits += st.hits + st.partial;
    sum.misses += st.misses;
    sum.evictions += st.evictions;
    CHECK(sum.hits + sum.partial > 50);
    CHECK(sum.misses > 0);
    CHECK(sum.evictions > 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_incremental_and_unchanged(void) {
    const char *dir = t_dir("proj-inc");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_projection p = account_projection();
    deposit d = {.amount = 10};
    for (int i = 0; i < 1000; i++)
        CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    account a;
    bp_project_info info = BP_PROJECT_INFO_INIT;
    __atomic_store_n(&applies, 0, __ATOMIC_RELAXED);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_EQ(info.applied, 1000);
    CHECK(!info.from_cache);
    CHECK_EQ(a.balance, 10000);
    /* the head has not moved: no fold at all */
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_EQ(info.applied, 0);
    CHECK(info.from_cache);
    /* one new event: one apply */
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    __atomic_store_n(&applies, 0, __ATOMIC_RELAXED);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_EQ(applies, 1);
    CHECK_EQ(info.applied, 1);
    CHECK_EQ(info.clock, 1001);
    CHECK_EQ(a.balance, 10010);
    /* events of kinds the projection does not read move the head but are never read */
    for (int i = 0; i < 5; i++)
        CHECK_OK(bp_append(s, NULL, "acct:1", "bank", KIND_OTHER, "\xc0", 1));
    __atomic_store_n(&applies, 0, __ATOMIC_RELAXED);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_EQ(applies, 0);
    CHECK_EQ(info.clock, 1006);
    /* project_if_changed */
    uint64_t clock = info.clock;
    memset(&a, 0x5A, sizeof a);
    CHECK_EQ(bp_project_if_changed(s, &a, &clock, &p, "acct:1"), BP_UNCHANGED);
    unsigned char *bytes = (unsigned char *)&a;
    for (size_t i = 0; i < sizeof a; i++)
        CHECK_EQ(bytes[i], 0x5A);
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    CHECK_OK(bp_project_if_changed(s, &a, &clock, &p, "acct:1"));
    CHECK_EQ(clock, 1007);
    CHECK_EQ(a.balance, 10020);
    /* stale reads: served from the cache without looking at the head */
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", 60000));
    CHECK_EQ(info.clock, 1007);
    CHECK_EQ(a.balance, 10020);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_EQ(info.clock, 1008);
    /* an unknown entity: the init state at clock 0 */
    clock = 99;
    CHECK_OK(bp_project_if_changed(s, &a, &clock, &p, "acct:nobody"));
    CHECK_EQ(clock, 0);
    CHECK_EQ(a.digest, 17);
    CHECK_EQ(a.balance, 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_bad_projections(void) {
    const char *dir = t_dir("proj-bad");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_projection p = account_projection();
    account a;
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "", BP_CONSISTENT), BP_EINVAL, "entity");
    p.name = "a/b";
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "projection name");
    p = account_projection();
    p.state_size = 0;
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "state_size");
    p = account_projection();
    p.apply = NULL;
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "apply is NULL");
    p = account_projection();
    p.struct_size = 9;
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "struct_size");
    p = account_projection();
    CHECK_FAILS(bp_project(s, NULL, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "NULL");
    bp_watch *w;
    p.name = "";
    CHECK_FAILS(bp_watch_projection(s, &w, &p, "acct:1", (bp_watch_fn)(void (*)(void))abort, NULL),
                BP_EINVAL, "projection name");
    /* apply's error fails the call, names the event, and the state is not cached */
    p = account_projection();
    deposit d = {.amount = 5};
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    d.amount = 666;
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT), BP_EINVAL, "clock 2");
    CHECK(strstr(bp_last_error(), "cursed amount"));
    bp_projection_cache_stats st = BP_PROJECTION_CACHE_STATS_INIT;
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    CHECK_EQ(st.entries, 0);
    /* a payload its type does not read */
    CHECK_OK(bp_append(s, NULL, "acct:2", "bank", deposit_type.kind, "\x81\xa1x\x01", 4));
    CHECK_FAILS(bp_project(s, &a, NULL, &p, "acct:2", BP_CONSISTENT), BP_EINVAL,
                "unknown field 'x'");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

static void test_persistent_snapshots(void) {
    const char *dir = t_dir("proj-snap");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_projection p = account_projection();
    p.persist = true;
    p.snapshot_every = 100;
    srand(11);
    for (int i = 0; i < 2500; i++)
        CHECK_OK(random_append(s, "acct:1"));
    account a, want;
    uint64_t clock;
    bp_project_info info = BP_PROJECT_INFO_INIT;
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    bp_projection_cache_stats st = BP_PROJECTION_CACHE_STATS_INIT;
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    CHECK_EQ(st.snapshots_written, 1);
    for (int i = 0; i < 30; i++)
        CHECK_OK(random_append(s, "acct:1"));
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK_OK(bp_store_close(s)); /* writes the last state */

    s = t_open(dir, &NO_SYNC);
    CHECK_OK(random_append(s, "acct:1"));
    __atomic_store_n(&applies, 0, __ATOMIC_RELAXED);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK(info.from_snapshot);
    CHECK(info.applied <= 1);
    CHECK(applies <= 1);
    CHECK_OK(scratch(s, "acct:1", &want, &clock));
    CHECK(memcmp(&a, &want, sizeof a) == 0);
    CHECK_EQ(info.clock, 2531);
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    CHECK_EQ(st.snapshots_loaded, 1);
    /* another version of the projection does not use it */
    p.version = 2;
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK(!info.from_snapshot);
    CHECK_EQ(info.applied, want.deposits + want.withdrawals + want.notes);
    p.version = 1;
    CHECK_OK(bp_store_close(s));

    /* a damaged snapshot is refused and the state refolded */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "f=$(ls '%s'/projections/account.v1/*.snap) && printf '\\377' | dd of=\"$f\" bs=1 "
             "seek=200 conv=notrunc status=none",
             dir);
    CHECK_EQ(system(cmd), 0);
    s = t_open(dir, &NO_SYNC);
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK(!info.from_snapshot);
    CHECK(memcmp(&a, &want, sizeof a) == 0);
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    CHECK_EQ(st.snapshots_rejected, 1);
    CHECK_OK(bp_store_close(s));

    /* a snapshot that does not belong to this store's history is refused: same entity name,
     * different events (the hash at its clock differs) */
    const char *other = t_dir("proj-snap-other");
    bp_store *o = t_open(other, &NO_SYNC);
    for (int i = 0; i < 3000; i++)
        CHECK_OK(random_append(o, "acct:1"));
    CHECK_OK(bp_store_close(o));
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/projections' && cp -r '%s/projections/account.v1' '%s/projections/'",
             other, dir, other);
    CHECK_EQ(system(cmd), 0);
    o = t_open(other, &NO_SYNC);
    CHECK_OK(bp_project(o, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK(!info.from_snapshot);
    CHECK_OK(scratch(o, "acct:1", &want, &clock));
    CHECK(memcmp(&a, &want, sizeof a) == 0);
    CHECK_OK(bp_store_close(o));
    t_rmdir(other);
    t_rmdir(dir);
}

static void test_snapshot_write_failure(void) {
    const char *dir = t_dir("proj-snapfail");
    bp_store *s = t_open(dir, &NO_SYNC);
    char path[1200];
    snprintf(path, sizeof path, "%s/projections", dir);
    FILE *f = fopen(path, "w"); /* a file where the folder should be: every write fails */
    CHECK(f && fclose(f) == 0);
    bp_projection p = account_projection();
    p.persist = true;
    p.snapshot_every = 5;
    srand(3);
    for (int i = 0; i < 20; i++)
        CHECK_OK(random_append(s, "acct:1"));
    account a, want;
    uint64_t clock;
    CHECK_OK(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT)); /* best effort inside */
    CHECK_OK(random_append(s, "acct:1"));
    CHECK_OK(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT));
    CHECK_FAILS(bp_projection_flush(s), BP_EIO, "projection snapshot");
    bp_projection_cache_stats st = BP_PROJECTION_CACHE_STATS_INIT;
    CHECK_OK(bp_projection_cache_stats_get(s, &st));
    CHECK(st.snapshots_failed >= 2);
    CHECK_EQ(st.snapshots_written, 0);
    CHECK_OK(random_append(s, "acct:1"));
    CHECK_OK(bp_project(s, &a, NULL, &p, "acct:1", BP_CONSISTENT));
    CHECK_OK(bp_store_close(s)); /* a cache that cannot be written does not fail the close */
    s = t_open(dir, &NO_SYNC);
    bp_project_info info = BP_PROJECT_INFO_INIT;
    CHECK_OK(bp_project(s, &a, &info, &p, "acct:1", BP_CONSISTENT));
    CHECK(!info.from_snapshot);
    CHECK_OK(scratch(s, "acct:1", &want, &clock));
    CHECK(memcmp(&a, &want, sizeof a) == 0);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ---------------------------------------------------------------- watchers */

typedef struct seen {
    pthread_mutex_t mu;
    account last;
    uint64_t clock;
    int calls;
    int slow_us;
} seen;

static void on_state(void *ctx, const void *state, uint64_t clock) {
    seen *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->last = *(const account *)state;
    w->clock = clock;
    w->calls++;
    pthread_mutex_unlock(&w->mu);
    if (w->slow_us) usleep((useconds_t)w->slow_us);
}

static bool wait_for_clock(seen *w, uint64_t clock) {
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&w->mu);
        bool done = w->clock == clock;
        pthread_mutex_unlock(&w->mu);
        if (done) return true;
        usleep(5000);
    }
    return false;
}

static void test_watchers(void) {
    const char *dir = t_dir("proj-watch");
    bp_store *s = t_open(dir, &NO_SYNC);
    bp_projection p = account_projection();
    deposit d = {.amount = 3};
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    seen fast = {.mu = PTHREAD_MUTEX_INITIALIZER}, slow = {.mu = PTHREAD_MUTEX_INITIALIZER};
    slow.slow_us = 2000;
    bp_watch *wf, *ws;
    CHECK_OK(bp_watch_projection(s, &wf, &p, "acct:1", on_state, &fast));
    CHECK_OK(bp_watch_projection(s, &ws, &p, "acct:1", on_state, &slow));
    CHECK(wait_for_clock(&fast, 1)); /* the initial state */
    for (int i = 0; i < 500; i++) {
        CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
        CHECK_OK(bp_append(s, NULL, "acct:2", "bank", KIND_NOTE, "\xc0", 1)); /* elsewhere */
    }
    CHECK(wait_for_clock(&fast, 501));
    CHECK(wait_for_clock(&slow, 501)); /* coalesced, but it ends with the latest state */
    account want;
    uint64_t clock;
    CHECK_OK(scratch(s, "acct:1", &want, &clock));
    CHECK(memcmp(&slow.last, &want, sizeof want) == 0);
    CHECK(memcmp(&fast.last, &want, sizeof want) == 0);
    CHECK(slow.calls <= 501);
    /* events the projection does not read do not call it */
    int before = fast.calls;
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", KIND_OTHER, "\xc0", 1));
    usleep(100000); /* the watcher wakes for it, finds the state unchanged, and stays quiet */
    pthread_mutex_lock(&fast.mu);
    int after_other = fast.calls;
    pthread_mutex_unlock(&fast.mu);
    CHECK_EQ(after_other, before);
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    CHECK(wait_for_clock(&fast, 503));
    CHECK_EQ(fast.calls, before + 1);
    CHECK_OK(bp_watch_stop(wf));
    CHECK_OK(bp_watch_stop(ws));
    /* a watcher whose apply fails stops, and says why */
    seen bad = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bp_watch *wb;
    CHECK_OK(bp_watch_projection(s, &wb, &p, "acct:1", on_state, &bad));
    CHECK(wait_for_clock(&bad, 503));
    d.amount = 666;
    CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    usleep(50000);
    CHECK_FAILS(bp_watch_stop(wb), BP_EINVAL, "cursed amount");
    /* close stops a watcher that is still running; its handle is freed by bp_watch_stop
     * after the close (the ASan build checks both) */
    seen left = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bp_watch *wl;
    CHECK_OK(bp_watch_projection(s, &wl, &p, "acct:2", on_state, &left));
    CHECK(wait_for_clock(&left, 500));
    CHECK_OK(bp_store_close(s));
    pthread_mutex_lock(&left.mu);
    int calls = left.calls;
    pthread_mutex_unlock(&left.mu);
    usleep(20000);
    CHECK_EQ(left.calls, calls); /* stopped by the close */
    CHECK_OK(bp_watch_stop(wl));
    t_rmdir(dir);
}

/* ------------------------------------------------------------ replay lanes */

typedef struct lane_ctx {
    int n;
    int stop_at;
    size_t bytes;
    int json_objects;
} lane_ctx;

static bp_status on_event(void *ctx, const bp_event *ev, const char *json, size_t json_len) {
    lane_ctx *c = ctx;
    c->n++;
    c->bytes += ev->payload_len;
    if (json && json_len == strlen(json) && json[0] == '{' && json[json_len - 1] == '}')
        c->json_objects++;
    if (c->n == c->stop_at) return BP_ECONFLICT;
    return BP_OK;
}

static void test_replay_lanes(void) {
    const char *dir = t_dir("proj-replay");
    bp_store *s = t_open(dir, &NO_SYNC);
    CHECK_OK(bp_register_type(s, &deposit_type));
    deposit d = {.amount = 1};
    for (int i = 0; i < 10; i++)
        CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
    bp_region r = BP_REGION_INIT;
    r.entity = "acct:1";
    lane_ctx raw = {0}, js = {0}, stop = {.stop_at = 3};
    CHECK_OK(bp_replay(s, &r, BP_LANE_RAW, on_event, &raw));
    CHECK_EQ(raw.n, 10);
    CHECK_EQ(raw.json_objects, 0);
    CHECK(raw.bytes > 0);
    CHECK_OK(bp_replay(s, &r, BP_LANE_JSON, on_event, &js));
    CHECK_EQ(js.json_objects, 10);
    CHECK_EQ(bp_replay(s, &r, BP_LANE_RAW, on_event, &stop), BP_ECONFLICT);
    CHECK_EQ(stop.n, 3);
    CHECK_OK(bp_append(s, NULL, "acct:1", "bank", BP_KIND(1, 9), "\xc4\x01\x00", 3));
    lane_ctx bin = {0};
    CHECK_FAILS(bp_replay(s, &r, BP_LANE_JSON, on_event, &bin), BP_EINVAL, "JSON form");
    CHECK_EQ(bin.n, 10);
    CHECK_FAILS(bp_replay(s, &r, (bp_lane)7, on_event, &bin), BP_EINVAL, "lane");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* ---------------------------------------------- concurrent projects, appends */

typedef struct racer {
    bp_store *s;
    int bad;
    bool *stop;
} racer;

static void *project_loop(void *arg) {
    racer *r = arg;
    bp_projection p = account_projection();
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        account a;
        bp_project_info info = BP_PROJECT_INFO_INIT;
        if (bp_project(r->s, &a, &info, &p, "acct:1", BP_CONSISTENT) != BP_OK) {
            r->bad++;
            break;
        }
        /* every event of acct:1 is a deposit of 1: the state must match its clock */
        if ((uint64_t)a.balance != info.clock || a.deposits != info.clock) r->bad++;
    }
    return NULL;
}

static void test_concurrent_projects(void) {
    const char *dir = t_dir("proj-race");
    bp_store *s = t_open(dir, &NO_SYNC);
    CHECK_OK(bp_projection_cache_limit(s, 4096));
    bool stop = false;
    racer rs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        rs[i] = (racer){s, 0, &stop};
        CHECK_EQ(pthread_create(&th[i], NULL, project_loop, &rs[i]), 0);
    }
    deposit d = {.amount = 1};
    char ent[32];
    for (int i = 0; i < 3000; i++) {
        CHECK_OK(bp_append_typed(s, NULL, "acct:1", "bank", &deposit_type, &d, NULL));
        snprintf(ent, sizeof ent, "acct:x%d", i % 50); /* churn the small cache */
        bp_projection p = account_projection();
        account a;
        if (i % 10 == 0) CHECK_OK(bp_project(s, &a, NULL, &p, ent, BP_CONSISTENT));
    }
    __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(rs[i].bad, 0);
    }
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_equals_scratch_fold);
    RUN(test_incremental_and_unchanged);
    RUN(test_bad_projections);
    RUN(test_persistent_snapshots);
    RUN(test_snapshot_write_failure);
    RUN(test_watchers);
    RUN(test_replay_lanes);
    RUN(test_concurrent_projects);
    T_DONE();
}
