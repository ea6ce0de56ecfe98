/* SQLite as a benchmark backend: WAL mode, one table, prepared statements.
 *
 *   events(seq INTEGER PRIMARY KEY, eseq, entity, scope, kind, ts, id BLOB UNIQUE, payload)
 *   indexes on (entity, eseq), (scope, seq), (kind, seq)
 *
 * One append = BEGIN; n inserts; COMMIT. durable: synchronous=FULL (in WAL mode NORMAL does
 * not sync each commit); otherwise synchronous=OFF. sync() fsyncs the database, its WAL and
 * the directory. Library defaults otherwise. */
#include "bench.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

struct bench_store {
    sqlite3 *db;
    char dir[4096];
    sqlite3_stmt *ins, *get, *ent, *ent_np, *scope, *kind, *last, *begin, *commit;
};

static void check(bench_store *s, int rc, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        bench_die("sqlite %s: %s", what, s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static void exec(bench_store *s, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", err ? err : "?");
        sqlite3_free(err);
        bench_die("sqlite %s: %s", sql, msg);
    }
}

static sqlite3_stmt *prep(bench_store *s, const char *sql) {
    sqlite3_stmt *st;
    check(s, sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), sql);
    return st;
}

static const char *sq_version(void) {
    return sqlite3_libversion();
}

static bench_store *sq_open(const char *dir, const bench_opts *o) {
    bench_store *s = bench_calloc(1, sizeof *s);
    char path[4200];
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    bench_path(path, sizeof path, dir, "events.db");
    check(s, sqlite3_open(path, &s->db), "open");
    exec(s, "PRAGMA journal_mode=WAL");
    exec(s, o->durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
    exec(s, "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, eseq INTEGER NOT NULL, "
            "entity TEXT NOT NULL, scope TEXT NOT NULL, kind INTEGER NOT NULL, ts INTEGER NOT "
            "NULL, id BLOB NOT NULL UNIQUE, payload BLOB NOT NULL)");
    exec(s, "CREATE INDEX IF NOT EXISTS by_entity ON events(entity, eseq)");
    exec(s, "CREATE INDEX IF NOT EXISTS by_scope ON events(scope, seq)");
    exec(s, "CREATE INDEX IF NOT EXISTS by_kind ON events(kind, seq)");
    s->ins = prep(s, "INSERT INTO events VALUES(?,?,?,?,?,?,?,?)");
    s->get = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id, payload FROM events WHERE "
                     "id = ?");
    s->ent = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id, payload FROM events WHERE "
                     "entity = ? ORDER BY eseq");
    s->ent_np = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id FROM events WHERE "
                        "entity = ? ORDER BY eseq");
    s->scope = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id, payload FROM events WHERE "
                       "scope = ? ORDER BY seq");
    s->kind = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id, payload FROM events WHERE "
                      "kind = ? ORDER BY seq");
    s->last = prep(s, "SELECT seq, eseq, entity, scope, kind, ts, id, payload FROM events ORDER "
                      "BY seq DESC LIMIT 1");
    s->begin = prep(s, "BEGIN");
    s->commit = prep(s, "COMMIT");
    return s;
}

static void step_done(bench_store *s, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) check(s, rc == SQLITE_ROW ? SQLITE_ERROR : rc, what);
    sqlite3_reset(st);
}

static void sq_append(bench_store *s, const bench_event *evs, size_t n, bench_key *keys) {
    step_done(s, s->begin, "begin");
    for (size_t i = 0; i < n; i++) {
        const bench_event *e = &evs[i];
        sqlite3_stmt *st = s->ins;
        int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)e->seq);
        if (!rc) rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)e->eseq);
        if (!rc) rc = sqlite3_bind_text(st, 3, e->entity, e->entity_len, SQLITE_STATIC);
        if (!rc) rc = sqlite3_bind_text(st, 4, e->scope, e->scope_len, SQLITE_STATIC);
        if (!rc) rc = sqlite3_bind_int(st, 5, e->kind);
        if (!rc) rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)e->ts);
        if (!rc) rc = sqlite3_bind_blob(st, 7, e->id, 16, SQLITE_STATIC);
        if (!rc) rc = sqlite3_bind_blob(st, 8, e->payload, (int)e->payload_len, SQLITE_STATIC);
        check(s, rc, "bind");
        step_done(s, st, "insert");
        memcpy(keys[i].b, e->id, 16);
    }
    step_done(s, s->commit, "commit");
}

static void sq_sync(bench_store *s) {
    char path[4200];
    bench_path(path, sizeof path, s->dir, "events.db");
    bench_fsync_path(path);
    bench_path(path, sizeof path, s->dir, "events.db-wal");
    bench_fsync_path(path);
    bench_fsync_path(s->dir);
}

/* Run a bound SELECT; visit each row. */
static size_t rows(bench_store *s, sqlite3_stmt *st, int with_payload, bench_visit_fn fn,
                   void *ctx) {
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        bench_event e;
        memset(&e, 0, sizeof e);
        e.seq = (uint64_t)sqlite3_column_int64(st, 0);
        e.eseq = (uint64_t)sqlite3_column_int64(st, 1);
        e.entity = (const char *)sqlite3_column_text(st, 2);
        e.entity_len = (uint16_t)sqlite3_column_bytes(st, 2);
        e.scope = (const char *)sqlite3_column_text(st, 3);
        e.scope_len = (uint16_t)sqlite3_column_bytes(st, 3);
        e.kind = (uint16_t)sqlite3_column_int(st, 4);
        e.ts = (uint64_t)sqlite3_column_int64(st, 5);
        e.id = sqlite3_column_blob(st, 6);
        if (with_payload) {
            e.payload = sqlite3_column_blob(st, 7);
            e.payload_len = (uint32_t)sqlite3_column_bytes(st, 7);
        }
        fn(ctx, &e);
        n++;
    }
    if (rc != SQLITE_DONE) check(s, rc, "select");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return n;
}

static size_t sq_get(bench_store *s, const bench_key *key, bench_visit_fn fn, void *ctx) {
    check(s, sqlite3_bind_blob(s->get, 1, key->b, 16, SQLITE_STATIC), "bind");
    return rows(s, s->get, 1, fn, ctx);
}

static size_t sq_entity(bench_store *s, const char *entity, unsigned flags, bench_visit_fn fn,
                        void *ctx) {
    sqlite3_stmt *st = (flags & BENCH_PAYLOAD) ? s->ent : s->ent_np;
    check(s, sqlite3_bind_text(st, 1, entity, -1, SQLITE_STATIC), "bind");
    return rows(s, st, (flags & BENCH_PAYLOAD) != 0, fn, ctx);
}

static size_t sq_scope(bench_store *s, const char *scope, bench_visit_fn fn, void *ctx) {
    check(s, sqlite3_bind_text(s->scope, 1, scope, -1, SQLITE_STATIC), "bind");
    return rows(s, s->scope, 1, fn, ctx);
}

static size_t sq_kind(bench_store *s, uint16_t kind, bench_visit_fn fn, void *ctx) {
    check(s, sqlite3_bind_int(s->kind, 1, kind), "bind");
    return rows(s, s->kind, 1, fn, ctx);
}

static size_t sq_last(bench_store *s, bench_visit_fn fn, void *ctx) {
    return rows(s, s->last, 1, fn, ctx);
}

static void sq_close(bench_store *s) {
    sqlite3_stmt *all[] = {s->ins,  s->get,  s->ent,   s->ent_np, s->scope,
                           s->kind, s->last, s->begin, s->commit};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    check(s, sqlite3_close(s->db), "close");
    free(s);
}

const bench_backend BE_SQLITE = {
    .name = "sqlite",
    .version = sq_version,
    .thread_safe = 0,
    .open = sq_open,
    .append = sq_append,
    .sync = sq_sync,
    .get = sq_get,
    .entity = sq_entity,
    .scope = sq_scope,
    .kind = sq_kind,
    .last = sq_last,
    .close = sq_close,
};
