/*
 * platform.h — the only code in batpak that calls OS file, sync, lock, clock
 * and random functions. Every other module goes through these wrappers.
 *
 * Fault injection (tests): a bp_fault, passed in bp_open_options.fault, makes
 * the Nth write, sync, rename, open or read-only mapping fail, short-writes, and records how much
 * of each file was durable so that bp_fault_power_loss() can drop everything not yet fsynced — the
 * state a power cut would leave. Counters count calls made through a store opened with that
 * bp_fault (1-based: fail_write_at = 1 fails the first write). A NULL bp_fault costs one branch per
 * call.
 *
 * Errors: every function returns 0 or -errno, and never sets the last error
 * itself; callers add context (path, offset) with bp_err_sys().
 */
#ifndef BP_PLATFORM_H
#define BP_PLATFORM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <pthread.h>
#include <sys/types.h>

#define BP_FAULT_MAX_FILES 256

typedef struct bp_fault {
    pthread_mutex_t mu;
    /* configuration: 0 = never */
    uint64_t fail_write_at;  /* the Nth write/pwrite fails with fail_errno */
    uint64_t fail_sync_at;   /* the Nth fdatasync/fsync fails with fail_errno */
    uint64_t fail_rename_at; /* the Nth rename fails */
    uint64_t fail_open_at;   /* the Nth open (file create or open for write) fails */
    uint64_t short_write_at; /* the Nth write writes only half its bytes, then fails */
    uint64_t fail_mmap_at;   /* the Nth read-only mapping fails (readers fall back to pread) */
    int fail_errno;          /* EIO unless set (ENOSPC, ...) */
    bool sticky;             /* once tripped, every later call of that type fails too */
    uint32_t sync_delay_us;  /* each sync sleeps this long first (widens group-commit windows) */
    /* counters */
    uint64_t writes, syncs, renames, opens, mmaps;
    uint64_t tripped; /* number of injected failures so far */
    /* durability tracking for bp_fault_power_loss: per path, the size at last sync */
    struct {
        char path[512];
        int64_t durable_size; /* -1: never synced since creation (file may vanish) */
        bool dir_synced;      /* its directory entry was made durable */
    } files[BP_FAULT_MAX_FILES];
    int n_files;
    /* writes over bytes that were durable (the zeros a segment is filled with ahead of its
     * end), not yet synced: the bytes they replaced, which a power cut brings back */
    struct bp_fault_undo {
        int slot;
        uint64_t seq; /* undo_seq when written: a sync started after it covers it */
        uint64_t off;
        size_t len;
        uint8_t *old;
    } * undo;
    size_t n_undo, undo_cap;
    uint64_t undo_seq;
} bp_fault;

/** Initialise a fault plan with nothing configured. */
void bp_fault_init(bp_fault *f);
void bp_fault_destroy(bp_fault *f);
/**
 * Simulate a power cut on the files written through f: undo every write over bytes
 * that were durable and not synced since, and truncate each tracked file to its size
 * at its last successful sync (files never synced are removed when their directory
 * entry was never synced, else truncated to 0). Call it
 * only after the store was abandoned (bp__store_crash) or closed.
 * Returns the number of bytes dropped.
 */
int64_t bp_fault_power_loss(bp_fault *f);

/* ------------------------------------------------------------- files */
typedef struct bp_file {
    int fd;
    bp_fault *fault;
    int slot; /* index into fault->files, -1 if untracked */
} bp_file;

#define BP_FILE_INIT                                                                               \
    { -1, NULL, -1 }

/* flags: BP_O_READ, BP_O_RDWR | BP_O_CREATE | BP_O_EXCL | BP_O_TRUNC | BP_O_APPEND */
#define BP_O_READ 0x0
#define BP_O_RDWR 0x1
#define BP_O_CREATE 0x2
#define BP_O_EXCL 0x4
#define BP_O_TRUNC 0x8

int bp_pf_open(bp_file *f, bp_fault *fault, const char *path, int flags);
int bp_pf_close(bp_file *f);
/* A second descriptor of f's open file (the same file whatever its name becomes), for
 * reading: closed on its own. 0 or -errno. */
int bp_pf_dup(const bp_file *f, bp_file *out);
/* write/pread/pwrite loop over EINTR and short transfers; return 0 or -errno.
 * bp_pf_pread returns the number of bytes read (short at EOF) or -errno. */
int bp_pf_pwrite(bp_file *f, const void *buf, size_t len, uint64_t off);
ssize_t bp_pf_pread(bp_file *f, void *buf, size_t len, uint64_t off);
int bp_pf_datasync(bp_file *f);
/* Start writing f's dirty pages in [off, off + len) to the device, without waiting and
 * without making anything durable (a later bp_pf_datasync then has less to wait for).
 * Advice: nothing happens where the system has no such call, or when it fails. */
void bp_pf_writeback(bp_file *f, uint64_t off, uint64_t len);
int bp_pf_fsync(bp_file *f);
int bp_pf_truncate(bp_file *f, uint64_t size);
/* Map len bytes of f from offset 0, read-only and shared, so later writes to the
 * file show through. len may exceed the file's size: the caller must not touch
 * bytes past the end of the file (that raises SIGBUS). */
int bp_pf_map_read(bp_file *f, uint64_t len, const uint8_t **out);
void bp_pf_unmap(const uint8_t *p, uint64_t len);
/** Ask for huge pages under the memory [p, p + len) (heap memory about to be filled: fewer
 * page faults). Advice only: nothing happens where the system has none. */
void bp_pf_advise_huge(void *p, size_t len);

/* A whole file's bytes for reading: mapped when it can be, else read into memory (an empty
 * file, or a failed mapping: bp_pf_view_copy). f is the open file. Release with
 * bp_pf_view_release; f may be closed meanwhile. */
typedef struct bp_view {
    const uint8_t *p;
    uint64_t len;
    uint8_t *copy; /* the malloc'd bytes when not mapped (then p == copy), else NULL */
} bp_view;
int bp_pf_view(bp_file *f, bp_view *v); /* 0 or -errno */
/* The same, always read into memory (pread until the end, which may come early): for a
 * file another process may truncate meanwhile, where a mapping's pages past the new end
 * would fault (SIGBUS). */
int bp_pf_view_copy(bp_file *f, bp_view *v); /* 0 or -errno */
/* The same, with only the bytes [0, head) and [from, end) read: the others are zeros (memory
 * the system gives on first touch, so a reader that needs the file's end alone pays for it
 * alone). */
int bp_pf_view_copy_part(bp_file *f, bp_view *v, uint64_t head, uint64_t from);
void bp_pf_view_release(bp_view *v);
int bp_pf_size(bp_file *f, uint64_t *size);
/* The size of the file at path (stat), without opening it. */
int bp_pf_path_size(const char *path, uint64_t *size);
/* The soft limit on open descriptors (RLIMIT_NOFILE); UINT64_MAX when unlimited. */
uint64_t bp_pf_nofile_limit(void);

/* --------------------------------------------------------- directories */
int bp_pf_mkdir(const char *path); /* 0 if created or exists */
/* The absolute path of path with every link resolved (realpath) into out: 0 or -errno. */
int bp_pf_realpath(const char *path, char *out, size_t cap);
/* mkdir with mode 0700: 1 if created, 0 if it exists, or -errno. */
int bp_pf_mkdir_private(const char *path);
int bp_pf_fsync_dir(bp_fault *fault, const char *path);
int bp_pf_rename(bp_fault *fault, const char *from, const char *to);
int bp_pf_unlink(const char *path);
int bp_pf_exists(const char *path); /* 1, 0, or -errno */
/* List names in dir ending with suffix, sorted ascending; *out is malloc'd
 * array of malloc'd strings. */
int bp_pf_list(const char *dir, const char *suffix, char ***out, size_t *n);
void bp_pf_list_free(char **names, size_t n);

/** Create dst exclusively, copy the first len bytes of src into it, fsync it (not its
 * directory). -ENODATA when src is shorter. On failure dst may be left behind. */
int bp_pf_copy_prefix(bp_fault *fault, bp_file *src, const char *dst, uint64_t len);
/** mkdir that fails with -EEXIST when path exists. */
int bp_pf_mkdir_new(const char *path);
/** Remove path and everything under it (0 if it does not exist). */
int bp_pf_rmtree(const char *path);

/** Write a whole file atomically: path.tmp, write, fsync, rename, fsync dir. */
int bp_pf_write_atomic(bp_fault *fault, const char *dir, const char *name, const void *buf,
                       size_t len);
/** The same without any fsync: for a cache whose every part carries a checksum (a segment
 * index file), which a crash may leave missing, old, or with parts that fail their checks,
 * never read as valid. Readers that mapped the old file keep it (rename over). */
int bp_pf_write_cache(bp_fault *fault, const char *dir, const char *name, const void *buf,
                      size_t len);
/** Create path exclusively (-EEXIST if it exists) with permission bits mode, write buf,
 * fsync it and its directory. On failure the file is removed. Used for key files. */
int bp_pf_write_new(const char *path, const void *buf, size_t len, unsigned mode);
/** Permission bits of path (st_mode & 07777). */
int bp_pf_mode(const char *path, unsigned *mode);
/** Read a whole file into a malloc'd buffer. */
int bp_pf_read_all(const char *path, uint8_t **buf, size_t *len);

/* ---------------------------------------------------------------- lock */
/* Exclusive, non-blocking flock on DIR/LOCK, and an open-file-description write lock on its
 * byte 0 (what bp_pf_lock_writer sees); writes our pid into it.
 * -EWOULDBLOCK when held: *holder_pid gets the pid written by the holder (0 unknown). */
int bp_pf_lock(bp_file *f, const char *path, long *holder_pid);
void bp_pf_unlock(bp_file *f);
/* The pid a live holder of bp_pf_lock wrote into path, or 0 when no one holds it (or the
 * file cannot be read). Takes nothing. */
long bp_pf_lock_writer(const char *path);
/* Register a reader on path (an existing file; nothing is created or written): an
 * open-file-description write lock on one free byte of [base, base + n), kept while *f is
 * open (bp_pf_unlock lets it go). 0, or -errno (-EAGAIN: every byte taken; -ENOENT,
 * -EROFS, -EACCES: the file is missing or cannot be opened for writing). */
int bp_pf_lock_slot(bp_file *f, const char *path, uint32_t base, uint32_t n);
/* How many bytes of [base, base + n) of path other descriptions than f's hold a lock on (f:
 * an open descriptor of path, or NULL: path is opened for the count). */
uint32_t bp_pf_lock_count(bp_file *f, const char *path, uint32_t base, uint32_t n);

/* -------------------------------------------------------- time, random */
uint64_t bp_pf_wall_ms(void); /* CLOCK_REALTIME, milliseconds */
uint64_t bp_pf_mono_us(void); /* CLOCK_MONOTONIC, microseconds */
/* A condition variable timed on CLOCK_MONOTONIC (bp_pf_mono_us), and a wait on
 * it until deadline_us. The wait returns 0 when signalled or timed out. */
int bp_pf_cond_init(pthread_cond_t *c);
int bp_pf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, uint64_t deadline_us);
int bp_pf_random(void *buf, size_t len);
long bp_pf_getpid(void);
void bp_pf_yield(void);           /* give the CPU to another runnable thread */
void bp_pf_heap_trim(void);       /* give the heap's free pages back to the system (glibc) */
void bp_pf_sleep_us(uint64_t us); /* at least us microseconds (EINTR resumes) */
/* A wait word shared by the threads of one process (a Linux futex): bp_pf_word_wait
 * sleeps while *w still holds `seen` (it may return early: callers re-check); a thread
 * that changes *w (an atomic store) then calls bp_pf_word_wake_all to wake every sleeper.
 * No mutex is involved, so a wake does not make the woken threads queue on one. */
void bp_pf_word_wait(const uint32_t *w, uint32_t seen);
void bp_pf_word_wake_all(uint32_t *w);
/* The same across processes, for a word in a shared mapping of a file (bp_pf_map_shared):
 * bp_pf_shared_wait sleeps while *w holds `seen`, for at most timeout_us (it may return
 * early); bp_pf_shared_wake wakes every sleeper of every process. A read-only mapping is
 * enough to wait on. */
void bp_pf_shared_wait(const uint32_t *w, uint32_t seen, uint64_t timeout_us);
void bp_pf_shared_wake(uint32_t *w);
/* Map len bytes of f from offset 0, shared with every process that maps the file, writable
 * or read-only (bp_pf_unmap undoes it). 0 or -errno. */
int bp_pf_map_shared(bp_file *f, uint64_t len, bool writable, uint8_t **out);

#endif
