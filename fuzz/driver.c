/* A main() for the fuzz targets where libFuzzer is not used (the gcc and ASan builds that
 * CTest runs by default): every file named (or found in a directory named) on the command
 * line is run through LLVMFuzzerTestOneInput, and with --mutate N also N deterministic
 * mutants of each (bit flips, byte sets, truncation, duplication of a slice). A crash or a
 * sanitizer report fails the test; libFuzzer builds (make fuzz) search much further. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long inputs, mutants;
static int n_mutants;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void run(const uint8_t *p, size_t n) {
    uint8_t *copy = malloc(n ? n : 1); /* a heap copy: ASan sees reads past the end */
    if (!copy) abort();
    if (n) memcpy(copy, p, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
}

static void mutate_and_run(const uint8_t *p, size_t n) {
    size_t cap = n * 2 + 16;
    uint8_t *m = malloc(cap);
    if (!m) abort();
    for (int k = 0; k < n_mutants; k++) {
        size_t len = n;
        if (n) memcpy(m, p, n);
        int edits = 1 + (int)(next() % 4);
        for (int e = 0; e < edits; e++) {
            switch (next() % 4) {
            case 0: /* flip a bit */
                if (len) m[next() % len] ^= (uint8_t)(1u << (next() % 8));
                break;
            case 1: /* set a byte to an interesting value */
                if (len)
                    m[next() % len] = (uint8_t[]){0, 1, 0x7f, 0x80, 0xff, 0xc0, 0xdc}[next() % 7];
                break;
            case 2: /* truncate */
                if (len) len = next() % len;
                break;
            default: /* duplicate a slice at the end */
                if (len) {
                    size_t at = next() % len, l = next() % (len - at) + 1;
                    if (len + l <= cap) {
                        memmove(m + len, m + at, l);
                        len += l;
                    }
                }
            }
        }
        run(m, len);
        mutants++;
    }
    free(m);
}

static void one_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
        buf[n++] = (uint8_t)c;
    }
    fclose(f);
    run(buf, n);
    inputs++;
    mutate_and_run(buf, n);
    free(buf);
}

static void one_path(const char *path) {
    struct stat st;
    if (stat(path, &st)) {
        perror(path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        one_file(path);
        return;
    }
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        one_path(sub);
    }
    if (d) closedir(d);
}

int main(int argc, char **argv) {
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--mutate")) {
        n_mutants = atoi(argv[i + 1]);
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [--mutate N] FILE|DIR...\n", argv[0]);
        return 2;
    }
    for (; i < argc; i++)
        one_path(argv[i]);
    if (!inputs) {
        fprintf(stderr, "%s: no inputs found\n", argv[0]);
        return 1;
    }
    printf("%s: %lu inputs and %lu mutants ran without a crash\n", argv[0], inputs, mutants);
    return 0;
}
