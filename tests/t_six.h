/* t_six.h — test helpers for segment index files (DIR/segments/NNNNNN.fidx). */
#ifndef BP_T_SIX_H
#define BP_T_SIX_H

#include "format/six.h"
#include "t.h"

/* The file's bytes (malloc'd) and size, or NULL. */
static inline uint8_t *t_slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Is segment segno of the store at dir indexed by a current index file: header and every
 * block intact, naming the segment file as it is (size, footer offset, footer CRC)? With
 * keep, the file's bytes stay in *keep (x points into them). */
static inline bool t_six_current(const char *dir, uint32_t segno, bp_six *x, uint8_t **keep) {
    char sp[1200], ip[1200];
    snprintf(sp, sizeof sp, "%s/segments/%06u.fbat", dir, segno);
    snprintf(ip, sizeof ip, "%s/segments/%06u.fidx", dir, segno);
    size_t sn = 0, in = 0;
    uint8_t *seg = t_slurp(sp, &sn), *ix = t_slurp(ip, &in);
    bool ok = seg && ix && sn > 20 && bp_six_open(x, ix, in, ip) == BP_OK &&
              bp_six_check_all(x, ip) == BP_OK && x->pair.segno == segno &&
              x->pair.seg_size == sn && x->pair.footer_crc == bp_get_be32(seg + sn - 20) &&
              x->pair.frames_end == bp_get_be64(seg + sn - 16);
    free(seg);
    if (ok && keep)
        *keep = ix;
    else
        free(ix);
    return ok;
}

/* Every segment of the store at dir but the newest (the active one, unsealed) has a
 * current index file; the segments are numbered from the lowest NNNNNN.fbat up. After a
 * writable open or a clean close this holds. */
static inline bool t_six_all_current(const char *dir) {
    char segdir[1200];
    snprintf(segdir, sizeof segdir, "%s/segments", dir);
    DIR *d = opendir(segdir);
    if (!d) return false;
    uint32_t lo = UINT32_MAX, hi = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned v;
        char tail[16];
        if (sscanf(de->d_name, "%u.%15s", &v, tail) == 2 && !strcmp(tail, "fbat")) {
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    }
    closedir(d);
    for (uint32_t k = lo; lo != UINT32_MAX && k < hi; k++) {
        bp_six x;
        if (!t_six_current(dir, k, &x, NULL)) {
            fprintf(stderr, "%s: segment %06u has no current index file\n", dir, k);
            return false;
        }
    }
    return true;
}

/* Re-sign an index file's pages, blocks and header after an edit (what a crafted file would
 * do). */
static inline void t_six_reseal(uint8_t *b, size_t n) {
    bp_six_reseal(b, n);
}

#endif
