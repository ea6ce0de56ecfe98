/* POSIX implementation of the platform layer, with optional fault injection. */
#include "platform/platform.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sched.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ faults */

void bp_fault_init(bp_fault *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->fail_errno = EIO;
}

static void undo_clear(bp_fault *f) {
    for (size_t i = 0; i < f->n_undo; i++)
        free(f->undo[i].old);
    free(f->undo);
    f->undo = NULL;
    f->n_undo = f->undo_cap = 0;
}

void bp_fault_destroy(bp_fault *f) {
    if (!f) return;
    undo_clear(f);
    pthread_mutex_destroy(&f->mu);
}

/* [f->mu] Before a write of len bytes at off through slot: keep the durable bytes it
 * replaces. A record that cannot be kept (out of memory) is dropped: the model then
 * keeps that write, as a disk may. */
static void undo_note(bp_fault *f, int fd, int slot, size_t len, uint64_t off) {
    int64_t durable = f->files[slot].durable_size;
    if (durable <= 0 || off >= (uint64_t)durable) return;
    if ((uint64_t)durable - off < len) len = (size_t)((uint64_t)durable - off);
    if (f->n_undo == f->undo_cap) {
        size_t nc = f->undo_cap ? f->undo_cap * 2 : 16;
        struct bp_fault_undo *v = realloc(f->undo, nc * sizeof *v);
        if (!v) return;
        f->undo = v;
        f->undo_cap = nc;
    }
    uint8_t *old = malloc(len);
    if (!old || pread(fd, old, len, (off_t)off) != (ssize_t)len) {
        free(old);
        return;
    }
    f->undo[f->n_undo++] = (struct bp_fault_undo){slot, f->undo_seq++, off, len, old};
}

/* [f->mu] A sync of slot that started at undo_seq `from` succeeded: the writes before it
 * are durable. */
static void undo_synced(bp_fault *f, int slot, uint64_t from) {
    size_t k = 0;
    for (size_t i = 0; i < f->n_undo; i++) {
        if (f->undo[i].slot == slot && f->undo[i].seq < from)
            free(f->undo[i].old);
        else
            f->undo[k++] = f->undo[i];
    }
    f->n_undo = k;
}

/* Count one call of a type; returns -errno to inject, 0 to proceed. */
static int fault_tick(bp_fault *f, uint64_t *counter, uint64_t at) {
    if (!f) return 0;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    uint64_t n = ++*counter;
    if ((at && n == at) || (at && f->sticky && n > at)) {
        f->tripped++;
        rc = -(f->fail_errno ? f->fail_errno : EIO);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int fault_slot(bp_fault *f, const char *path, bool created) {
    for (int i = 0; i < f->n_files; i++)
        if (strcmp(f->files[i].path, path) == 0) {
            if (created) {
                f->files[i].durable_size = -1;
                f->files[i].dir_synced = false;
                undo_synced(f, i, UINT64_MAX); /* the old file's bytes are gone */
            }
            return i;
        }
    if (f->n_files >= BP_FAULT_MAX_FILES || strlen(path) >= sizeof f->files[0].path) return -1;
    int i = f->n_files++;
    snprintf(f->files[i].path, sizeof f->files[i].path, "%s", path);
    if (created) {
        f->files[i].durable_size = -1;
        f->files[i].dir_synced = false;
    } else {
        struct stat st;
        f->files[i].durable_size = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
        f->files[i].dir_synced = true;
    }
    return i;
}

int64_t bp_fault_power_loss(bp_fault *f) {
    int64_t dropped = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = f->n_undo; i-- > 0;) { /* newest first: the oldest bytes win */
        const struct bp_fault_undo *u = &f->undo[i];
        int fd = open(f->files[u->slot].path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) continue;
        if (pwrite(fd, u->old, u->len, (off_t)u->off) == (ssize_t)u->len)
            dropped += (int64_t)u->len;
        close(fd);
    }
    undo_clear(f);
    for (int i = 0; i < f->n_files; i++) {
        struct stat st;
        if (stat(f->files[i].path, &st) != 0) continue;
        int64_t keep = f->files[i].durable_size < 0 ? 0 : f->files[i].durable_size;
        if (f->files[i].durable_size < 0 && !f->files[i].dir_synced) {
            dropped += st.st_size;
            unlink(f->files[i].path);
            continue;
        }
        if (st.st_size > keep) {
            dropped += st.st_size - keep;
            if (truncate(f->files[i].path, keep) != 0) continue;
        }
    }
    f->n_files = 0;
    pthread_mutex_unlock(&f->mu);
    return dropped;
}

/* ------------------------------------------------------------- files */

int bp_pf_open(bp_file *f, bp_fault *fault, const char *path, int flags) {
    int of = O_CLOEXEC;
    of |= (flags & BP_O_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & BP_O_CREATE) of |= O_CREAT;
    if (flags & BP_O_EXCL) of |= O_EXCL;
    if (flags & BP_O_TRUNC) of |= O_TRUNC;
    f->fd = -1;
    f->fault = fault;
    f->slot = -1;
    bool existed = true;
    if (fault && (flags & BP_O_RDWR)) {
        int rc = fault_tick(fault, &fault->opens, fault->fail_open_at);
        if (rc) return rc;
        existed = access(path, F_OK) == 0;
    }
    int fd;
    do
        fd = open(path, of, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    f->fd = fd;
    if (fault && (flags & BP_O_RDWR)) {
        pthread_mutex_lock(&fault->mu);
        f->slot = fault_slot(fault, path, !existed || (flags & BP_O_TRUNC));
        pthread_mutex_unlock(&fault->mu);
    }
    return 0;
}

int bp_pf_dup(const bp_file *f, bp_file *out) {
    *out = (bp_file)BP_FILE_INIT;
    int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -errno;
    out->fd = fd;
    out->fault = f->fault; /* (its mappings fail where the test says; not a file it tracks) */
    return 0;
}

int bp_pf_close(bp_file *f) {
    if (!f || f->fd < 0) return 0;
    int rc = close(f->fd);
    f->fd = -1;
    return rc == 0 || errno == EINTR ? 0 : -errno;
}

int bp_pf_pwrite(bp_file *f, const void *buf, size_t len, uint64_t off) {
    const uint8_t *p = buf;
    if (f->fault) {
        int rc = fault_tick(f->fault, &f->fault->writes, f->fault->fail_write_at);
        if (rc) return rc;
        pthread_mutex_lock(&f->fault->mu);
        bool shortw = f->fault->short_write_at && f->fault->writes == f->fault->short_write_at;
        if (shortw) f->fault->tripped++;
        if (f->slot >= 0 && f->slot < f->fault->n_files)
            undo_note(f->fault, f->fd, f->slot, len, off);
        pthread_mutex_unlock(&f->fault->mu);
        if (shortw) {
            size_t half = len / 2;
            if (half && pwrite(f->fd, p, half, (off_t)off) < 0) return -errno;
            return -(f->fault->fail_errno ? f->fault->fail_errno : EIO);
        }
    }
    while (len) {
        ssize_t n = pwrite(f->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

ssize_t bp_pf_pread(bp_file *f, void *buf, size_t len, uint64_t off) {
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(f->fd, p + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

void bp_pf_advise_huge(void *p, size_t len) {
#ifdef MADV_HUGEPAGE
    uintptr_t page = 4096, lo = ((uintptr_t)p + page - 1) & ~(page - 1),
              hi = ((uintptr_t)p + len) & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

int bp_pf_map_read(bp_file *f, uint64_t len, const uint8_t **out) {
    *out = NULL;
    if (f->fault) {
        int rc = fault_tick(f->fault, &f->fault->mmaps, f->fault->fail_mmap_at);
        if (rc) return rc;
    }
    if (len == 0 || len > (uint64_t)SIZE_MAX) return -EINVAL;
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

void bp_pf_unmap(const uint8_t *p, uint64_t len) {
    if (p) munmap((void *)p, (size_t)len);
}

int bp_pf_view(bp_file *f, bp_view *v) {
    memset(v, 0, sizeof *v);
    uint64_t size;
    int e = bp_pf_size(f, &size);
    if (e) return e;
    if (size && bp_pf_map_read(f, size, &v->p) == 0) {
        v->len = size;
        return 0;
    }
    return bp_pf_view_copy(f, v);
}

int bp_pf_view_copy_part(bp_file *f, bp_view *v, uint64_t head, uint64_t from) {
    memset(v, 0, sizeof *v);
    uint64_t size;
    int e = bp_pf_size(f, &size);
    if (e) return e;
    if (size > SIZE_MAX - 1) return -EFBIG;
    if (head > size) head = size;
    if (from < head) from = head;
    uint8_t *p = from > head ? calloc(1, size ? (size_t)size : 1) : malloc(size ? (size_t)size : 1);
    if (!p) return -ENOMEM;
    ssize_t got = head ? bp_pf_pread(f, p, (size_t)head, 0) : 0;
    ssize_t rest = got == (ssize_t)head && from < size
                       ? bp_pf_pread(f, p + from, (size_t)(size - from), from)
                       : 0;
    if (got < 0 || rest < 0) {
        free(p);
        return (int)(got < 0 ? got : rest);
    }
    v->p = v->copy = p;
    /* (short when the file was cut meanwhile) */
    v->len = got < (ssize_t)head ? (uint64_t)got : from < size ? from + (uint64_t)rest : size;
    return 0;
}

int bp_pf_view_copy(bp_file *f, bp_view *v) {
    return bp_pf_view_copy_part(f, v, UINT64_MAX, 0);
}

void bp_pf_view_release(bp_view *v) {
    if (v->copy)
        free(v->copy);
    else
        bp_pf_unmap(v->p, v->len);
    memset(v, 0, sizeof *v);
}

static int do_sync(bp_file *f, bool data_only) {
    uint64_t from = 0;
    if (f->fault) {
        pthread_mutex_lock(&f->fault->mu);
        from = f->fault->undo_seq; /* the writes before this sync starts */
        pthread_mutex_unlock(&f->fault->mu);
        int rc = fault_tick(f->fault, &f->fault->syncs, f->fault->fail_sync_at);
        if (rc) return rc;
        if (f->fault->sync_delay_us) bp_pf_sleep_us(f->fault->sync_delay_us);
    }
    int rc = data_only ? fdatasync(f->fd) : fsync(f->fd);
    if (rc != 0) return -errno;
    if (f->fault && f->slot >= 0) {
        struct stat st;
        if (fstat(f->fd, &st) == 0) {
            pthread_mutex_lock(&f->fault->mu);
            if (f->slot < f->fault->n_files) {
                f->fault->files[f->slot].durable_size = st.st_size;
                undo_synced(f->fault, f->slot, from);
            }
            pthread_mutex_unlock(&f->fault->mu);
        }
    }
    return 0;
}

int bp_pf_datasync(bp_file *f) {
    return do_sync(f, true);
}

void bp_pf_writeback(bp_file *f, uint64_t off, uint64_t len) {
#ifdef __linux__
    (void)sync_file_range(f->fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
#else
    (void)f, (void)off, (void)len;
#endif
}

int bp_pf_fsync(bp_file *f) {
    return do_sync(f, false);
}

int bp_pf_truncate(bp_file *f, uint64_t size) {
    if (ftruncate(f->fd, (off_t)size) != 0) return -errno;
    if (f->fault && f->slot >= 0) {
        pthread_mutex_lock(&f->fault->mu);
        if (f->slot < f->fault->n_files && f->fault->files[f->slot].durable_size > (int64_t)size)
            f->fault->files[f->slot].durable_size = (int64_t)size;
        pthread_mutex_unlock(&f->fault->mu);
    }
    return 0;
}

int bp_pf_size(bp_file *f, uint64_t *size) {
    struct stat st;
    if (fstat(f->fd, &st) != 0) return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

int bp_pf_path_size(const char *path, uint64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

uint64_t bp_pf_nofile_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
    return (uint64_t)rl.rlim_cur;
}

/* ------------------------------------------------------- directories */

int bp_pf_mkdir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -errno;
}

int bp_pf_mkdir_private(const char *path) {
    if (mkdir(path, 0700) == 0) return 1;
    return errno == EEXIST ? 0 : -errno;
}

int bp_pf_fsync_dir(bp_fault *fault, const char *path) {
    if (fault) {
        int rc = fault_tick(fault, &fault->syncs, fault->fail_sync_at);
        if (rc) return rc;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 && fault) {
        size_t n = strlen(path);
        pthread_mutex_lock(&fault->mu);
        for (int i = 0; i < fault->n_files; i++) {
            const char *p = fault->files[i].path;
            const char *slash = strrchr(p, '/');
            if (slash && (size_t)(slash - p) == n && strncmp(p, path, n) == 0)
                fault->files[i].dir_synced = true;
        }
        pthread_mutex_unlock(&fault->mu);
    }
    return rc;
}

int bp_pf_rename(bp_fault *fault, const char *from, const char *to) {
    if (fault) {
        int rc = fault_tick(fault, &fault->renames, fault->fail_rename_at);
        if (rc) return rc;
    }
    if (rename(from, to) != 0) return -errno;
    if (fault) {
        pthread_mutex_lock(&fault->mu);
        int src = -1;
        for (int i = 0; i < fault->n_files; i++) {
            if (strcmp(fault->files[i].path, to) == 0) fault->files[i].path[0] = '\0';
            if (strcmp(fault->files[i].path, from) == 0) src = i;
        }
        if (src >= 0 && strlen(to) < sizeof fault->files[src].path) {
            snprintf(fault->files[src].path, sizeof fault->files[src].path, "%s", to);
            fault->files[src].dir_synced = false;
        }
        pthread_mutex_unlock(&fault->mu);
    }
    return 0;
}

int bp_pf_unlink(const char *path) {
    return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}

int bp_pf_exists(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) return 1;
    return errno == ENOENT ? 0 : -errno;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int bp_pf_list(const char *dir, const char *suffix, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return -errno;
    size_t cap = 0, cnt = 0, sl = strlen(suffix);
    char **names = NULL;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -ENOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[cnt] = strdup(e->d_name))) {
            rc = -ENOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc) {
        bp_pf_list_free(names, cnt);
        return rc;
    }
    if (cnt) qsort(names, cnt, sizeof *names, cmp_names);
    *out = names;
    *n = cnt;
    return 0;
}

void bp_pf_list_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* NAME.tmp written (and synced with sync), renamed over NAME (and the directory synced). */
static int write_replace(bp_fault *fault, const char *dir, const char *name, const void *buf,
                         size_t len, bool sync) {
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= sizeof tmp ||
        (size_t)snprintf(dst, sizeof dst, "%s/%s", dir, name) >= sizeof dst)
        return -ENAMETOOLONG;
    bp_file f;
    int rc = bp_pf_open(&f, fault, tmp, BP_O_RDWR | BP_O_CREATE | BP_O_TRUNC);
    if (rc) return rc;
    rc = bp_pf_pwrite(&f, buf, len, 0);
    if (!rc && sync) rc = bp_pf_fsync(&f);
    int crc = bp_pf_close(&f);
    if (!rc) rc = crc;
    if (!rc) rc = bp_pf_rename(fault, tmp, dst);
    if (!rc && sync) rc = bp_pf_fsync_dir(fault, dir);
    if (rc) bp_pf_unlink(tmp);
    return rc;
}

int bp_pf_write_atomic(bp_fault *fault, const char *dir, const char *name, const void *buf,
                       size_t len) {
    return write_replace(fault, dir, name, buf, len, true);
}

int bp_pf_write_cache(bp_fault *fault, const char *dir, const char *name, const void *buf,
                      size_t len) {
    return write_replace(fault, dir, name, buf, len, false);
}

int bp_pf_write_new(const char *path, const void *buf, size_t len, unsigned mode) {
    int fd;
    do
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    bp_file f = {fd, NULL, -1};
    int rc = fchmod(fd, (mode_t)mode) != 0 ? -errno : 0; /* the umask may have narrowed it */
    if (!rc) rc = bp_pf_pwrite(&f, buf, len, 0);
    if (!rc) rc = bp_pf_fsync(&f);
    int crc = bp_pf_close(&f);
    if (!rc) rc = crc;
    if (!rc) {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if ((size_t)(slash - path) >= sizeof dir)
            rc = -ENAMETOOLONG;
        else
            snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        if (!rc) rc = bp_pf_fsync_dir(NULL, dir);
    }
    if (rc) unlink(path);
    return rc;
}

int bp_pf_mode(const char *path, unsigned *mode) {
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    *mode = (unsigned)(st.st_mode & 07777);
    return 0;
}

int bp_pf_read_all(const char *path, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        close(fd);
        return -ENOMEM;
    }
    bp_file f = {fd, NULL, -1};
    ssize_t got = bp_pf_pread(&f, p, n, 0);
    close(fd);
    if (got < 0) {
        free(p);
        return (int)got;
    }
    *buf = p;
    *len = (size_t)got;
    return 0;
}

/* ------------------------------------------------------ time, random */

uint64_t bp_pf_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t bp_pf_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int bp_pf_cond_init(pthread_cond_t *c) {
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return -rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

int bp_pf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, uint64_t deadline_us) {
    struct timespec ts = {(time_t)(deadline_us / 1000000u), (long)(deadline_us % 1000000u) * 1000L};
    int rc = pthread_cond_timedwait(c, mu, &ts);
    return rc == ETIMEDOUT ? 0 : -rc;
}

int bp_pf_random(void *buf, size_t len) {
    uint8_t *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long bp_pf_getpid(void) {
    return (long)getpid();
}

void bp_pf_sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void bp_pf_yield(void) {
    sched_yield();
}

void bp_pf_heap_trim(void) {
#ifdef __GLIBC__
    (void)malloc_trim(0); /* (freed blocks below the heap's top stay resident otherwise) */
#endif
}

#ifdef __linux__
void bp_pf_word_wait(const uint32_t *w, uint32_t seen) {
    /* EAGAIN (already changed), EINTR and spurious wakes all return: callers loop */
    (void)syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}
void bp_pf_word_wake_all(uint32_t *w) {
    (void)syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}
void bp_pf_shared_wait(const uint32_t *w, uint32_t seen, uint64_t timeout_us) {
    struct timespec ts = {(time_t)(timeout_us / 1000000u), (long)(timeout_us % 1000000u) * 1000};
    (void)syscall(SYS_futex, w, FUTEX_WAIT, seen, &ts, NULL, 0);
}
void bp_pf_shared_wake(uint32_t *w) {
    (void)syscall(SYS_futex, w, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}
#else /* no futex: poll, sleeping 50 us between looks */
void bp_pf_word_wait(const uint32_t *w, uint32_t seen) {
    if (__atomic_load_n(w, __ATOMIC_ACQUIRE) == seen) usleep(50);
}
void bp_pf_word_wake_all(uint32_t *w) {
    (void)w;
}
void bp_pf_shared_wait(const uint32_t *w, uint32_t seen, uint64_t timeout_us) {
    if (__atomic_load_n(w, __ATOMIC_ACQUIRE) == seen) usleep(timeout_us < 1000 ? timeout_us : 1000);
}
void bp_pf_shared_wake(uint32_t *w) {
    (void)w;
}
#endif

int bp_pf_map_shared(bp_file *f, uint64_t len, bool writable, uint8_t **out) {
    *out = NULL;
    if (len == 0 || len > (uint64_t)SIZE_MAX) return -EINVAL;
    void *p =
        mmap(NULL, (size_t)len, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

int bp_pf_copy_prefix(bp_fault *fault, bp_file *src, const char *dst, uint64_t len) {
    bp_file out;
    int rc = bp_pf_open(&out, fault, dst, BP_O_RDWR | BP_O_CREATE | BP_O_EXCL);
    if (rc) return rc;
    size_t cap = 1u << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) rc = -ENOMEM;
    for (uint64_t off = 0; !rc && off < len;) {
        size_t want = len - off < cap ? (size_t)(len - off) : cap;
        ssize_t got = bp_pf_pread(src, buf, want, off);
        if (got < 0)
            rc = (int)got;
        else if ((size_t)got < want)
            rc = -ENODATA; /* the source is shorter than it should be */
        else
            rc = bp_pf_pwrite(&out, buf, want, off);
        off += want;
    }
    free(buf);
    if (!rc) rc = bp_pf_fsync(&out);
    int crc = bp_pf_close(&out);
    if (!rc) rc = crc;
    return rc;
}

int bp_pf_mkdir_new(const char *path) {
    return mkdir(path, 0755) == 0 ? 0 : -errno;
}

int bp_pf_rmtree(const char *path) {
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", path, e->d_name) >= sizeof p) {
            rc = -ENAMETOOLONG;
            continue;
        }
        struct stat st;
        if (lstat(p, &st) != 0) {
            rc = -errno;
            continue;
        }
        int r = S_ISDIR(st.st_mode) ? bp_pf_rmtree(p) : (unlink(p) == 0 ? 0 : -errno);
        if (r && !rc) rc = r;
    }
    closedir(d);
    if (rmdir(path) != 0 && !rc) rc = -errno;
    return rc;
}

int bp_pf_realpath(const char *path, char *out, size_t cap) {
    char *r = realpath(path, NULL);
    if (!r) return -errno;
    int rc = strlen(r) < cap ? 0 : -ENAMETOOLONG;
    if (!rc) memcpy(out, r, strlen(r) + 1);
    free(r);
    return rc;
}
