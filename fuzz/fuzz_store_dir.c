/* Fuzz target: open a damaged store directory. A small store (several sealed segments, a
 * batch, idempotency keys, a checkpoint) is built once; each input is a list of 4-byte edits
 * [file, offset lo, offset hi, xor] (file 0xFE: cut the next file at offset; 0xFF: delete it)
 * applied to a fresh copy. Then: a read-only open, every event read and verify run; and a
 * writable open with salvage, an append and verify. Errors are expected; crashes, sanitizer
 * reports and hangs are not. */
#include <batpak/batpak.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES 32
static struct {
    char name[64]; /* relative to the store directory */
    uint8_t *bytes;
    size_t len;
} files[MAX_FILES];
static int n_files;
static char base[256], work[300];

static void die(const char *what) {
    fprintf(stderr, "fuzz_store_dir: %s: %s\n", what, bp_last_error());
    abort();
}

static void slurp(const char *rel) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    FILE *f = fopen(path, "rb");
    if (!f || n_files == MAX_FILES) die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    files[n_files].bytes = malloc(n > 0 ? (size_t)n : 1);
    if (!files[n_files].bytes || fread(files[n_files].bytes, 1, (size_t)n, f) != (size_t)n)
        die(path);
    fclose(f);
    snprintf(files[n_files].name, sizeof files[n_files].name, "%s", rel);
    files[n_files++].len = (size_t)n;
}

static void rm_rf(const char *dir);

static void cleanup(void) {
    rm_rf(work);
    rm_rf(base);
}

static void build(void) {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(base, sizeof base, "%s/bp-fuzz-dir-%ld", tmp, (long)getpid());
    snprintf(work, sizeof work, "%s.work", base);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096;
    o.durability = BP_NO_SYNC;
    bp_store *s;
    if (bp_store_open(&s, base, &o)) die("create");
    char p[64];
    for (int i = 0; i < 40; i++) {
        bp_append_options ao = BP_APPEND_OPTIONS_INIT;
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        if (i % 7 == 0) ao.idempotency_key = key;
        int n = snprintf(p, sizeof p, "payload %d %.*s", i, i,
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        if (bp_append_ex(s, NULL, i % 3 ? "acct:1" : "acct:2", "bank", 0x1001, p, (size_t)n, &ao))
            die("append");
        if (i == 20) {
            bp_batch_item it[3] = {{"acct:1", "bank", 0x1002, "a", 1, NULL},
                                   {"acct:3", "bank", 0x1002, "b", 1, NULL},
                                   {"acct:2", "misc", 0x1003, "c", 1, NULL}};
            if (bp_append_batch(s, NULL, it, 3)) die("batch");
        }
    }
    if (bp_store_close(s)) die("close");
    atexit(cleanup);
    slurp("STORE");
    slurp("index.ckpt");
    char segdir[400];
    snprintf(segdir, sizeof segdir, "%s/segments", base);
    DIR *d = opendir(segdir);
    struct dirent *e;
    char names[MAX_FILES][64];
    int k = 0;
    while (d && (e = readdir(d)) && k < MAX_FILES - 2)
        if (strstr(e->d_name, ".fbat")) snprintf(names[k++], 64, "segments/%s", e->d_name);
    if (d) closedir(d);
    for (int i = 0; i < k; i++)
        slurp(names[i]);
}

static void rm_rf(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) abort();
}

static void lay_out(const uint8_t *data, size_t size) {
    rm_rf(work);
    char path[400];
    snprintf(path, sizeof path, "%s/segments", work);
    if (mkdir(work, 0755) || mkdir(path, 0755)) abort();
    static uint8_t *buf[MAX_FILES];
    static size_t len[MAX_FILES];
    static int gone[MAX_FILES];
    for (int i = 0; i < n_files; i++) {
        free(buf[i]);
        buf[i] = malloc(files[i].len ? files[i].len : 1);
        if (!buf[i]) abort();
        memcpy(buf[i], files[i].bytes, files[i].len);
        len[i] = files[i].len;
        gone[i] = 0;
    }
    for (size_t at = 0; at + 4 <= size; at += 4) {
        uint8_t op = data[at];
        size_t off = data[at + 1] | (size_t)data[at + 2] << 8;
        if (op >= 0xFE && at + 8 <= size) { /* cut or delete the file the next record names */
            int f = data[at + 4] % n_files;
            if (op == 0xFF)
                gone[f] = 1;
            else if (off < len[f])
                len[f] = off;
            at += 4;
            continue;
        }
        int f = op % n_files;
        if (len[f]) buf[f][off % len[f]] ^= data[at + 3] ? data[at + 3] : 1;
    }
    for (int i = 0; i < n_files; i++) {
        if (gone[i]) continue;
        snprintf(path, sizeof path, "%s/%s", work, files[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, buf[i], len[i]) != (ssize_t)len[i] || close(fd)) abort();
    }
}

static void read_all(bp_store *s) {
    bp_region r = BP_REGION_INIT;
    bp_iter *it;
    if (bp_query(s, &it, &r, BP_READ_FULL) != BP_OK) return;
    const bp_event *ev;
    while (bp_iter_next(it, &ev) == BP_OK) {
        bp_event *e;
        bp_id id = ev->event_id;
        if (bp_get(s, &e, &id) == BP_OK) bp_event_free(e);
    }
    bp_iter_free(it);
    bp_verify_report vr = BP_VERIFY_REPORT_INIT;
    (void)bp_store_verify(s, &vr, NULL);
    bp_store_stats st = BP_STORE_STATS_INIT;
    (void)bp_store_stats_get(s, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!n_files) build();
    lay_out(data, size);
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.segment_size = 4096;
    o.read_only = true;
    o.create = false;
    bp_store *s;
    if (bp_store_open(&s, work, &o) == BP_OK) {
        read_all(s);
        (void)bp_store_close(s);
    }
    o.read_only = false;
    o.salvage = true;
    o.durability = BP_NO_SYNC;
    if (bp_store_open(&s, work, &o) == BP_OK) {
        (void)bp_append(s, NULL, "acct:9", "bank", 0x1001, "z", 1);
        read_all(s);
        (void)bp_store_close(s);
    }
    return 0;
}
