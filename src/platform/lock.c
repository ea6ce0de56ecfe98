/* POSIX implementation of the platform layer: the store's locks (doc/FORMAT.md "Processes"):
 * the writer's flock and byte-0 lock on DIR/LOCK, the readers' byte locks, their count. */
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* An open-file-description lock request of type on [start, start + len) of fd. */
static int ofd_lock(int fd, int cmd, short type, off_t start, off_t len, struct flock *out) {
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = start;
    l.l_len = len;
    int rc = fcntl(fd, cmd, &l);
    if (out) *out = l;
    return rc;
}

/* The pid the writer wrote into the LOCK file open at fd, 0 when there is none yet. */
static long read_pid(int fd) {
    char buf[32] = {0};
    return pread(fd, buf, sizeof buf - 1, 0) > 0 ? strtol(buf, NULL, 10) : 0;
}

int bp_pf_lock(bp_file *f, const char *path, long *holder_pid) {
    *holder_pid = 0;
    f->fault = NULL;
    f->slot = -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        *holder_pid = read_pid(fd);
        close(fd);
        return e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
    }
    /* the mark readers see (bp_pf_lock_writer): flock's lock is not visible to fcntl. Only a
     * mark: where byte locks are not supported (some network filesystems), readers see no
     * writer, and the flock alone keeps writers out */
    (void)ofd_lock(fd, F_OFD_SETLK, F_WRLCK, 0, 1, NULL);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* the pid is only for error messages; the lock itself is held */
    }
    f->fd = fd;
    return 0;
}

long bp_pf_lock_writer(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct flock l;
    long pid = 0;
    if (ofd_lock(fd, F_OFD_GETLK, F_RDLCK, 0, 1, &l) == 0 && l.l_type != F_UNLCK) {
        pid = read_pid(fd);
        /* held, by a pid not written yet: the file is empty, or still names the previous
         * holder (a writer killed a moment ago), whose DIR/LIVE page is not the new one's */
        if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) pid = -1;
    }
    close(fd);
    return pid;
}

int bp_pf_lock_slot(bp_file *f, const char *path, uint32_t base, uint32_t n) {
    f->fault = NULL;
    f->slot = -1;
    f->fd = -1;
    int fd = open(path, O_RDWR | O_CLOEXEC); /* (no O_CREAT: a reader makes no file) */
    if (fd < 0) return -errno;
    uint32_t start = (uint32_t)getpid() % n; /* readers spread over the bytes */
    for (uint32_t i = 0; i < n; i++) {
        off_t at = (off_t)base + (off_t)((start + i) % n);
        if (ofd_lock(fd, F_OFD_SETLK, F_WRLCK, at, 1, NULL) == 0) {
            f->fd = fd;
            return 0;
        }
        if (errno != EAGAIN && errno != EACCES) {
            int e = -errno;
            close(fd);
            return e;
        }
    }
    close(fd);
    return -EAGAIN;
}

/* The locks of other descriptions than fd's on bytes [at, end): F_OFD_GETLK names one of
 * them, not the lowest, so the bytes on each side of it are counted in turn. */
static uint32_t count_locks(int fd, off_t at, off_t end) {
    struct flock l;
    if (at >= end || ofd_lock(fd, F_OFD_GETLK, F_WRLCK, at, end - at, &l) != 0 ||
        l.l_type == F_UNLCK)
        return 0;
    off_t lo = l.l_start > at ? l.l_start : at;
    off_t hi = l.l_len > 0 && l.l_start + l.l_len < end ? l.l_start + l.l_len : end;
    return 1 + count_locks(fd, at, lo) + count_locks(fd, hi, end);
}

uint32_t bp_pf_lock_count(bp_file *f, const char *path, uint32_t base, uint32_t n) {
    int fd = f && f->fd >= 0 ? f->fd : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    uint32_t count = count_locks(fd, (off_t)base, (off_t)base + n);
    if (!f || f->fd < 0) close(fd);
    return count;
}

void bp_pf_unlock(bp_file *f) {
    if (f->fd >= 0) {
        flock(f->fd, LOCK_UN);
        close(f->fd);
        f->fd = -1;
    }
}
