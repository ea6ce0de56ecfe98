/* Crypto-shredding: sealed payloads read back transparently, never appear in plaintext on
 * disk, become unreadable for good after bp_forget while chains and hashes still verify;
 * keys are durable before their events (power loss), damaged keys are errors, not
 * "forgotten"; export/import and snapshot carry sealed payloads. */
#include "t.h"
#include "bp_testing.h"
#include "format/format.h"
#include "platform/platform.h"

#include <errno.h>

/* True when needle occurs in any segment file of dir. */
static bool on_disk(const char *dir, const char *needle) {
    char segdir[1024];
    snprintf(segdir, sizeof segdir, "%s/segments", dir);
    char **names;
    size_t n;
    if (bp_pf_list(segdir, ".fbat", &names, &n)) return false;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", segdir, names[i]);
        uint8_t *buf;
        size_t len;
        if (bp_pf_read_all(path, &buf, &len)) continue;
        size_t k = strlen(needle);
        for (size_t j = 0; j + k <= len && !found; j++)
            found = !memcmp(buf + j, needle, k);
        free(buf);
    }
    bp_pf_list_free(names, n);
    return found;
}

static void check_payload(bp_store *s, const bp_id *id, const char *want) {
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, id));
    if (!ev) return;
    CHECK(ev->flags & BP_EVENT_SEALED);
    CHECK(!ev->payload_forgotten);
    CHECK_EQ(ev->payload_len, strlen(want));
    CHECK(ev->payload && !memcmp(ev->payload, want, strlen(want)));
    bp_event_free(ev);
}

static void check_forgotten(bp_store *s, const bp_id *id) {
    bp_event *ev;
    CHECK_OK(bp_get(s, &ev, id));
    if (!ev) return;
    CHECK(ev->payload_forgotten);
    CHECK(ev->payload == NULL);
    CHECK_EQ(ev->payload_len, 0);
    bp_event_free(ev);
}

static void test_seal_and_forget(void) {
    const char *dir = t_dir("shred");
    bp_store *s = t_open(dir, &(t_open_opts){.seal_payloads = true});
    CHECK(bp_store_seals(s));
    bp_receipt a1 = BP_RECEIPT_INIT, a2 = BP_RECEIPT_INIT, b1 = BP_RECEIPT_INIT,
               batch[2] = {BP_RECEIPT_INIT};
    t_receipts(batch, sizeof batch / sizeof batch[0]);
    CHECK_OK(bp_append(s, &a1, "user:ada", "crm", BP_KIND(1, 1), "secret-ada-email", 16));
    CHECK_OK(bp_append(s, &b1, "user:bob", "crm", BP_KIND(1, 1), "secret-bob-email", 16));
    bp_batch_item items[2] = {{"user:ada", "crm", BP_KIND(1, 2), "secret-ada-phone", 16, NULL},
                              {"user:bob", "crm", BP_KIND(1, 2), "", 0, NULL}};
    CHECK_OK(bp_append_batch(s, batch, items, 2));
    CHECK_OK(bp_append(s, &a2, "user:ada", "crm", BP_KIND(1, 3), "secret-ada-address", 18));

    /* read back transparently: get, stream, cursor */
    check_payload(s, &a1.event_id, "secret-ada-email");
    check_payload(s, &batch[0].event_id, "secret-ada-phone");
    check_payload(s, &batch[1].event_id, "");
    bp_iter *it;
    const bp_event *ev;
    CHECK_OK(bp_stream(s, &it, "user:bob", 0));
    CHECK_EQ(bp_iter_next(it, &ev), BP_OK);
    CHECK(ev->payload_len == 16 && !memcmp(ev->payload, "secret-bob-email", 16));
    bp_iter_free(it);
    /* BP_READ_SEALED: as stored, key id + nonce + box */
    CHECK_OK(bp_stream(s, &it, "user:bob", BP_READ_SEALED));
    CHECK_EQ(bp_iter_next(it, &ev), BP_OK);
    CHECK_EQ(ev->payload_len, 16u + 48u);
    CHECK(memcmp(ev->payload + 48 - 16, "secret", 6) != 0);
    bp_iter_free(it);
    /* never in plaintext on disk */
    CHECK_OK(bp_store_sync(s));
    CHECK(!on_disk(dir, "secret-"));
    CHECK(on_disk(dir, "user:ada")); /* metadata is not sealed */

    /* forget ada */
    CHECK_OK(bp_forget(s, "user:ada"));
    check_forgotten(s, &a1.event_id);
    check_forgotten(s, &batch[0].event_id);
    check_forgotten(s, &a2.event_id);
    check_payload(s, &b1.event_id, "secret-bob-email");
    bp_event *e;
    CHECK_OK(bp_get(s, &e, &a2.event_id));
    CHECK(memcmp(e->event_hash.b, a2.event_hash.b, 32) == 0); /* hash and chain stay */
    CHECK(memcmp(e->prev_hash.b, batch[0].event_hash.b, 32) == 0);
    CHECK_EQ(e->clock, 3);
    bp_event_free(e);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 5);
    CHECK_FAILS(bp_forget(s, "user:ada"), BP_ENOTFOUND, "no data key");
    CHECK_FAILS(bp_forget(s, "user:nobody"), BP_ENOTFOUND, "no data key");
    CHECK_FAILS(bp_forget(s, ""), BP_EINVAL, "entity");
    CHECK_FAILS(bp_forget(NULL, "x"), BP_EINVAL, "NULL");
    CHECK_FAILS(bp_forget(s, NULL), BP_EINVAL, "NULL");

    /* reopen without the option: sealing is the store's; ada stays forgotten; a new
     * append for ada gets a new key */
    CHECK_OK(bp_store_close(s));
    s = t_open(dir, NULL);
    CHECK(bp_store_seals(s));
    check_forgotten(s, &a1.event_id);
    check_payload(s, &b1.event_id, "secret-bob-email");
    bp_receipt a3 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &a3, "user:ada", "crm", BP_KIND(1, 1), "secret-ada-new", 14));
    CHECK_EQ(a3.clock, 4);
    check_payload(s, &a3.event_id, "secret-ada-new");
    check_forgotten(s, &a2.event_id); /* the new key does not open the old payloads */
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 6);
    CHECK_OK(bp_store_close(s));

    /* read-only: reads open, forget is refused */
    bp_open_options ro = BP_OPEN_OPTIONS_INIT;
    ro.read_only = true;
    CHECK_OK(bp_store_open(&s, dir, &ro));
    check_payload(s, &a3.event_id, "secret-ada-new");
    CHECK_FAILS(bp_forget(s, "user:bob"), BP_EREADONLY, "read-only");
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* A damaged or substituted key is an error, never taken for "forgotten". */
static void test_damaged_keys(void) {
    const char *dir = t_dir("shred-damage");
    bp_store *s = t_open(dir, &(t_open_opts){.seal_payloads = true});
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "user:1", "crm", BP_KIND(1, 1), "hello", 5));
    CHECK_OK(bp_store_close(s));
    char name[BP_DKEY_NAME_SIZE], path[1200];
    bp_dkey_file_name("user:1", 6, name);
    snprintf(path, sizeof path, "%s/dkeys/%s", dir, name);
    uint8_t *buf;
    size_t len;
    CHECK_OK(bp_pf_read_all(path, &buf, &len));
    bp_dkey k;
    CHECK_OK(bp_dkey_file_decode(buf, len, "user:1", 6, &k));

    /* flipped byte: the CRC says so */
    buf[20] ^= 1;
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    s = t_open(dir, NULL);
    bp_event *ev = NULL;
    CHECK_FAILS(bp_get(s, &ev, &r.event_id), BP_ECORRUPT, "crc mismatch");
    CHECK(ev == NULL);
    CHECK_OK(bp_store_close(s));

    /* same key id, other key bytes, valid file: the box does not open */
    k.key[0] ^= 0x55;
    uint8_t file[BP_DKEY_FILE_MAX];
    size_t n = bp_dkey_file_encode(file, "user:1", 6, &k);
    f = fopen(path, "wb");
    CHECK(f && fwrite(file, 1, n, f) == n);
    fclose(f);
    s = t_open(dir, NULL);
    CHECK_FAILS(bp_get(s, &ev, &r.event_id), BP_ECORRUPT, "fails its authentication");
    CHECK_OK(bp_store_close(s));

    /* another entity's key file under this name */
    n = bp_dkey_file_encode(file, "user:2", 6, &k);
    f = fopen(path, "wb");
    CHECK(f && fwrite(file, 1, n, f) == n);
    fclose(f);
    s = t_open(dir, NULL);
    CHECK_FAILS(bp_get(s, &ev, &r.event_id), BP_ECORRUPT, "another entity");
    CHECK_OK(bp_store_close(s));
    free(buf);
    t_rmdir(dir);
}

/* A key is durable before any event sealed with it: a power cut right after a durable
 * append keeps a readable payload. A failing key write fails the append, writes nothing,
 * and does not stop the store. */
static void test_key_durability(void) {
    const char *dir = t_dir("shred-power");
    bp_fault f;
    bp_fault_init(&f);
    bp_store *s = t_open(dir, &(t_open_opts){.seal_payloads = true, .fault = &f});
    bp_receipt r1 = BP_RECEIPT_INIT, r2 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r1, "user:1", "crm", BP_KIND(1, 1), "one", 3));
    CHECK_OK(bp_append(s, &r2, "user:2", "crm", BP_KIND(1, 1), "two", 3));
    /* the next new entity's key: its first sync fails */
    pthread_mutex_lock(&f.mu);
    f.fail_sync_at = f.syncs + 1;
    f.fail_errno = EIO;
    pthread_mutex_unlock(&f.mu);
    CHECK_FAILS(bp_append(s, NULL, "user:3", "crm", BP_KIND(1, 1), "three", 5), BP_EIO, "data key");
    bp_store_stats st = BP_STORE_STATS_INIT;
    CHECK_OK(bp_store_stats_get(s, &st));
    CHECK(!st.failed);
    CHECK_EQ(st.events, 2);
    bp_receipt r3 = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r3, "user:3", "crm", BP_KIND(1, 1), "three", 5));
    bp__store_crash(s);
    CHECK(bp_fault_power_loss(&f) >= 0);
    bp_fault_destroy(&f);
    s = t_open(dir, NULL);
    check_payload(s, &r1.event_id, "one");
    check_payload(s, &r2.event_id, "two");
    check_payload(s, &r3.event_id, "three");
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(s, &vr, NULL));
    CHECK_EQ(vr.events, 3);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

/* Export carries sealed payloads as stored (hashes hold, no plaintext in the export); a
 * snapshot carries the keys, and forgetting in the original leaves the copy's keys. */
static void test_export_and_snapshot(void) {
    const char *src = t_dir("shred-src"), *dst = t_dir("shred-dst"), *snap = t_dir("shred-snap");
    bp_store *s = t_open(src, &(t_open_opts){.seal_payloads = true});
    bp_receipt r = BP_RECEIPT_INIT;
    CHECK_OK(bp_append(s, &r, "user:1", "crm", BP_KIND(1, 1), "secret-one", 10));
    t_membuf a = {0}, b = {0};
    CHECK_OK(bp_export(s, t_to_mem, &a, NULL));
    CHECK(a.p && !strstr(a.p, "c2VjcmV0")); /* base64 of "secret" at offset 0 */
    bp_snapshot_report rep = BP_SNAPSHOT_REPORT_INIT;
    t_rmdir(snap); /* the snapshot makes it */
    CHECK_OK(bp_store_snapshot(s, &rep, snap));
    CHECK_OK(bp_forget(s, "user:1"));
    check_forgotten(s, &r.event_id);
    CHECK_OK(bp_store_close(s));

    bp_store *c = t_open(snap, NULL);
    check_payload(c, &r.event_id, "secret-one");
    CHECK_OK(bp_store_close(c));

    bp_store *d = t_open(dst, NULL);
    bp_importer *imp;
    CHECK_OK(bp_import_begin(d, &imp));
    CHECK_OK(bp_import_line(imp, a.p, a.n));
    bp_import_report irep = BP_IMPORT_REPORT_INIT;
    CHECK_OK(bp_import_end(imp, &irep));
    CHECK_EQ(irep.imported, 1);
    check_forgotten(d, &r.event_id); /* no key came with the export */
    CHECK_OK(bp_export(d, t_to_mem, &b, NULL));
    CHECK(a.n == b.n && !memcmp(a.p, b.p, a.n)); /* byte-identical */
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    CHECK_OK(bp_store_verify(d, &vr, NULL));
    CHECK_OK(bp_store_close(d));
    free(a.p);
    free(b.p);
    t_rmdir(src);
    t_rmdir(dst);
    t_rmdir(snap);
}

/* State: bytes of payload seen, events seen. */
static bp_status count_bytes(void *ctx, void *state, const bp_event *ev, const void *value) {
    (void)ctx;
    (void)value;
    uint64_t *st = state;
    st[0] += ev->payload_len;
    st[1]++;
    return BP_OK;
}

/* Forget drops what projections folded from the payloads: cached states and snapshots. */
static void test_forget_projections(void) {
    const char *dir = t_dir("shred-proj");
    bp_store *s = t_open(dir, &(t_open_opts){.seal_payloads = true});
    bp_projection p = {sizeof(bp_projection),
                       "bytes",
                       1,
                       2 * sizeof(uint64_t),
                       NULL,
                       count_bytes,
                       NULL,
                       0,
                       NULL,
                       0,
                       NULL,
                       true,
                       1};
    for (int i = 0; i < 5; i++) {
        CHECK_OK(bp_append(s, NULL, "user:1", "crm", BP_KIND(1, 1), "0123456789", 10));
        CHECK_OK(bp_append(s, NULL, "user:2", "crm", BP_KIND(1, 1), "abc", 3));
    }
    uint64_t st[2];
    bp_project_info info = BP_PROJECT_INFO_INIT;
    CHECK_OK(bp_project(s, st, &info, &p, "user:1", BP_CONSISTENT));
    CHECK(st[0] == 50 && st[1] == 5);
    CHECK_OK(bp_project(s, st, &info, &p, "user:2", BP_CONSISTENT));
    CHECK(st[0] == 15 && st[1] == 5);
    CHECK_OK(bp_projection_flush(s));
    char name[BP_DKEY_NAME_SIZE], snap[1200];
    bp_dkey_file_name("user:1", 6, name); /* the same hash names the snapshot */
    snprintf(snap, sizeof snap, "%s/projections/bytes.v1/%.32s.snap", dir, name);
    CHECK_EQ(bp_pf_exists(snap), 1);

    CHECK_OK(bp_forget(s, "user:1"));
    CHECK_EQ(bp_pf_exists(snap), 0);
    CHECK_OK(bp_project(s, st, &info, &p, "user:1", BP_CONSISTENT));
    CHECK(!info.from_cache && !info.from_snapshot);
    CHECK(st[0] == 0 && st[1] == 5); /* refolded: the events, none of their bytes */
    CHECK_OK(bp_project(s, st, &info, &p, "user:2", BP_CONSISTENT));
    CHECK(info.from_cache && st[0] == 15);
    CHECK_OK(bp_store_close(s));
    t_rmdir(dir);
}

int main(void) {
    RUN(test_seal_and_forget);
    RUN(test_damaged_keys);
    RUN(test_key_durability);
    RUN(test_export_and_snapshot);
    RUN(test_forget_projections);
    T_DONE();
}
