/* Shared plumbing of the CLI: error lines and exit codes, argument walking,
 * number parsing, opening stores, reading input. */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ errors */

int cli_exit_code(bp_status rc) {
    switch (rc) {
    case BP_OK:
    case BP_DONE:
    case BP_UNCHANGED:
        return CLI_OK;
    case BP_EINVAL:
    case BP_ETOOBIG:
    case BP_EEXIST:
        return CLI_EUSAGE;
    case BP_ENOTFOUND:
        return CLI_ENOTFOUND;
    case BP_ECONFLICT:
    case BP_EDENIED:
        return CLI_EDENIED;
    case BP_ECORRUPT:
    case BP_EVERSION:
    case BP_ESIGNATURE:
        return CLI_ECORRUPT;
    default:
        return CLI_EIO;
    }
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when it is not one (a stray
 * continuation byte, a truncated or overlong sequence, a surrogate, above U+10FFFF). */
static size_t utf8_len(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    size_t n;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0; /* the NUL at the end stops here too */
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* Write s to stderr with control characters and bytes that are not UTF-8 escaped as \xNN
 * (a name from the command line or a file may be any bytes), so an error is one line of
 * valid text. */
static void put_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0 || *p < 0x20 || *p == 0x7f) {
            fprintf(stderr, "\\x%02x", *p);
            p++;
        } else {
            fwrite(p, 1, n, stderr);
            p += n;
        }
    }
}

int cli_fail(const cli_ctx *c, int code, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c && c->errbuf) {
        snprintf(c->errbuf, c->errcap, "%s", msg);
        return code;
    }
    fflush(stdout); /* keep the order of output and error when both go to one file */
    fputs("batpak: ", stderr);
    if (c && c->cmd) {
        put_escaped(c->cmd);
        fputs(": ", stderr);
    }
    put_escaped(msg);
    fputc('\n', stderr);
    return code;
}

int cli_fail_status(const cli_ctx *c, bp_status rc) {
    const char *msg = bp_last_error();
    size_t n = c->cmd ? strlen(c->cmd) : 0;
    /* (a library message that names the call as the command does: said once) */
    if (msg && n && strncmp(msg, c->cmd, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    return cli_fail(c, cli_exit_code(rc), "%s", msg && *msg ? msg : bp_strerror(rc));
}

_Noreturn void cli_oom(void) {
    fputs("batpak: out of memory\n", stderr);
    exit(CLI_EIO);
}

int cli_finish_output(const cli_ctx *c, int code) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (code == CLI_OK) return cli_fail(c, CLI_EIO, "writing output: %s", strerror(errno));
    }
    return code;
}

/* --------------------------------------------------------------- arguments */

static const cli_option *find_option(const cli_option *opts, const char *name, size_t len) {
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && memcmp(opts->name, name, len) == 0) return opts;
    return NULL;
}

/* Take the value of an option: after '=' in the same argument, else the next argument. */
static int take_value(cli_args *a, const char *arg, const char *eq, const cli_option *o,
                      cli_arg *out) {
    if (!o->has_value) {
        if (eq) return cli_fail(a->ctx, -1, "%s: takes no value", arg);
        out->value = NULL;
        return 1;
    }
    if (eq) {
        out->value = eq + 1;
        return 1;
    }
    if (a->next >= a->argc) return cli_fail(a->ctx, -1, "%s: needs a value", arg);
    out->value = a->argv[a->next++];
    return 1;
}

int cli_next_arg(cli_args *a, const cli_option *opts, cli_arg *out) {
    static const cli_option dir_option[] = {{"dir", true}, {NULL, false}};
    for (;;) {
        if (a->next >= a->argc) return 0;
        const char *arg = a->argv[a->next++];
        out->name = NULL;
        out->value = arg;
        if (a->options_done || arg[0] != '-' || arg[1] == '\0') return 1; /* "-" is stdin */
        if (strcmp(arg, "--") == 0) {
            a->options_done = true;
            continue;
        }
        bool is_long = arg[1] == '-';
        const char *name = arg + (is_long ? 2 : 1);
        const char *eq = is_long ? strchr(name, '=') : NULL;
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_option *o = find_option(opts, name, len);
        if (!is_long && len != 1) o = NULL; /* short options are single letters */
        if (!o && is_long && len == 11 && !strncmp(name, "accept-loss", 11) && !eq) {
            a->ctx->accept_loss = true;
            continue;
        }
        if (!o && is_long && len == 7 && !strncmp(name, "salvage", 7) && !eq) {
            a->ctx->salvage = true;
            continue;
        }
        if (!o && is_long && (o = find_option(dir_option, name, len))) {
            if (a->ctx->dir_option)
                return cli_fail(a->ctx, -1, "--dir: given twice (give it once)");
            if (take_value(a, arg, eq, o, out) < 0) return -1;
            a->ctx->dir_option = true;
            a->ctx->dir = out->value;
            a->ctx->dir_given = true;
            continue;
        }
        if (!o)
            return cli_fail(a->ctx, -1, "%s: unknown option (see 'batpak help %s')", arg,
                            a->ctx->cmd);
        out->name = o->name;
        size_t bit = (size_t)(o - opts);
        /* lists: --kind A --kind B (either), --pubkey K1 --pubkey K2 (any) */
        bool repeat = strcmp(o->name, "kind") == 0 || strcmp(o->name, "pubkey") == 0;
        if (o->has_value && !repeat && bit < 64) {
            if (a->seen >> bit & 1)
                return cli_fail(a->ctx, -1, "--%s: given twice (it takes one value; give it once)",
                                o->name);
            a->seen |= (uint64_t)1 << bit;
        }
        return take_value(a, arg, eq, o, out);
    }
}

bool cli_arg_is(const cli_arg *arg, const char *name) {
    return arg->name && strcmp(arg->name, name) == 0;
}

/* ----------------------------------------------------------------- numbers */

static int digit_value(char ch, unsigned base) {
    int d = -1;
    if (ch >= '0' && ch <= '9')
        d = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
        d = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
        d = ch - 'A' + 10;
    return d >= 0 && (unsigned)d < base ? d : -1;
}

bool cli_parse_u64(const char *text, uint64_t max, uint64_t *out) {
    if (!text) return false;
    unsigned base = 10;
    const char *p = text;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (!*p) return false;
    uint64_t v = 0;
    for (; *p; p++) {
        int d = digit_value(*p, base);
        if (d < 0) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / base) return false;
        v = v * base + (uint64_t)d;
    }
    if (v > max) return false;
    *out = v;
    return true;
}

int cli_parse_number(const cli_ctx *c, const char *what, const char *text, uint64_t max,
                     uint64_t *out) {
    if (cli_parse_u64(text, max, out)) return CLI_OK;
    return cli_fail(c, CLI_EUSAGE, "%s: '%s' is not a number in 0..%llu", what, text,
                    (unsigned long long)max);
}

int cli_parse_kind(const cli_ctx *c, const char *text, uint16_t *out) {
    uint64_t v;
    if (!cli_parse_u64(text, 0xFFFF, &v))
        return cli_fail(c, CLI_EUSAGE, "kind: '%s' is not a number in 0..0xFFFF (e.g. 0x1001)",
                        text);
    *out = (uint16_t)v;
    return CLI_OK;
}

/* ------------------------------------------------------------------ stores */

int cli_check_dir(const cli_ctx *c) {
    if (!*c->dir) return cli_fail(c, CLI_EUSAGE, "--dir: is empty");
    return CLI_OK;
}

bool cli_output_gone(void) {
    /* the write end of a pipe (or socket) whose reader has gone polls as an error; a file or
     * a terminal never does */
    struct pollfd p = {.fd = STDOUT_FILENO, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

uint64_t cli_now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

bp_open_options cli_open_options(const cli_ctx *c) {
    bp_open_options o = BP_OPEN_OPTIONS_INIT;
    o.accept_loss = c->accept_loss;
    o.salvage = c->salvage;
    return o;
}

int cli_open_read(const cli_ctx *c, bp_store **out) {
    if (cli_check_dir(c)) return CLI_EUSAGE;
    bp_open_options o = cli_open_options(c);
    o.create = false;
    o.read_only = true;
    o.no_open_event = true;
    bp_status rc = bp_store_open(out, c->dir, &o); /* (beside a writer too: no lock) */
    if (!rc && (rc = cli_register_types(*out))) {
        bp_store_close(*out);
        *out = NULL;
    }
    return rc ? cli_fail_status(c, rc) : CLI_OK;
}

/* No store at dir: the directory is missing, or holds no STORE file. */
static bool store_missing(const char *dir) {
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/STORE", dir);
    if (stat(dir, &st)) return errno == ENOENT;
    return S_ISDIR(st.st_mode) && stat(path, &st) && errno == ENOENT;
}

static int open_write(const cli_ctx *c, bp_store **out, bool lifecycle, bool create) {
    if (cli_check_dir(c)) return CLI_EUSAGE;
    bp_open_options o = cli_open_options(c);
    o.no_open_event = !lifecycle;
    o.create = create; /* (a typo in --dir must not make a new store: init, import do) */
    bp_signing_key key;
    bp_status rc = BP_OK;
    if (c->sign_key) {
        if ((rc = bp_signing_key_load(&key, c->sign_key))) return cli_fail_status(c, rc);
        o.signing_key = &key;
    }
    o.seal_payloads = c->seal;
    rc = bp_store_open(out, c->dir, &o);
    if (c->sign_key) bp_signing_key_wipe(&key);
    if (!rc && (rc = cli_register_types(*out))) {
        bp_store_close(*out);
        *out = NULL;
    }
    if (!rc && c->salvage) { /* what the salvage moved aside: said, never silent */
        bp_store_open_report r = BP_STORE_OPEN_REPORT_INIT;
        bp_store_open_report_get(*out, &r);
        if (r.loss_note[0])
            fprintf(stderr,
                    "batpak: %s: %s: %llu event(s) from global_seq %llu (and %llu bytes) are "
                    "in %s/quarantine/ now\n",
                    c->cmd ? c->cmd : "batpak", r.loss_note, (unsigned long long)r.events_lost,
                    (unsigned long long)r.first_lost_seq, (unsigned long long)r.bytes_cut, c->dir);
    }
    if (rc == BP_ENOTFOUND && !create && store_missing(c->dir))
        return cli_fail(c, CLI_ENOTFOUND, "%s (batpak init creates one; nothing was written)",
                        bp_last_error());
    return rc ? cli_fail_status(c, rc) : CLI_OK;
}

int cli_open_write(const cli_ctx *c, bp_store **out) {
    return open_write(c, out, false, false);
}

int cli_open_create(const cli_ctx *c, bp_store **out) {
    return open_write(c, out, false, true);
}

int cli_open_write_lifecycle(const cli_ctx *c, bp_store **out, bool create) {
    return open_write(c, out, true, create);
}

int cli_close(const cli_ctx *c, bp_store *s, int code) {
    bp_status rc = bp_store_close(s);
    if (rc && code == CLI_OK) return cli_fail_status(c, rc);
    return code;
}

/* ------------------------------------------------------------------- input */

void cli_stdin_hint(const cli_ctx *c, const char *what) {
    if (isatty(STDIN_FILENO)) /* (never silence: a terminal would wait with no word) */
        fprintf(stderr, "batpak: %s: reading %s from standard input (end it with Ctrl-D)\n",
                c->cmd ? c->cmd : "batpak", what);
}

int cli_read_input(const cli_ctx *c, const char *path, size_t max, char **data, size_t *len) {
    bool is_stdin = strcmp(path, "-") == 0;
    if (is_stdin) cli_stdin_hint(c, "the input");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return cli_fail(c, errno == ENOENT ? CLI_ENOTFOUND : CLI_EUSAGE, "%s: %s", path,
                        strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) cli_oom();
    int code = CLI_OK;
    for (;;) {
        if (n == cap) {
            if (cap > max) break;
            cap *= 2;
            buf = realloc(buf, cap + 1);
            if (!buf) cli_oom();
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || feof(f) || ferror(f)) break; /* (one Ctrl-D on a terminal ends it) */
    }
    if (ferror(f))
        code = cli_fail(c, CLI_EIO, "reading %s: %s", is_stdin ? "stdin" : path, strerror(errno));
    else if (n > max)
        code = cli_fail(c, CLI_EUSAGE, "%s: input larger than %zu bytes", is_stdin ? "stdin" : path,
                        max);
    if (!is_stdin) fclose(f);
    if (code != CLI_OK) {
        free(buf);
        return code;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return CLI_OK;
}

int cli_check_coord(const cli_ctx *c, const char *prefix, const char *entity, const char *scope) {
    bp_status rc = bp_coord_validate("entity", entity);
    if (!rc) rc = bp_coord_validate("scope", scope);
    if (rc) return cli_fail(c, CLI_EUSAGE, "%s%s", prefix, bp_last_error());
    if (strncmp(entity, BP_RESERVED_PREFIX, strlen(BP_RESERVED_PREFIX)) == 0)
        return cli_fail(c, CLI_EUSAGE, "%sentity '%s': the prefix '%s' is reserved for the library",
                        prefix, entity, BP_RESERVED_PREFIX);
    return CLI_OK;
}

int cli_no_arguments(cli_ctx *c, int argc, char **argv) {
    static const cli_option none[] = {{NULL, false}};
    cli_args a = {c, argc, argv, 0, false, 0};
    cli_arg arg;
    int r = cli_next_arg(&a, none, &arg);
    if (r < 0) return CLI_EUSAGE;
    if (r > 0) return cli_fail(c, CLI_EUSAGE, "'%s': unexpected argument", arg.value);
    return CLI_OK;
}

static const char *last_label; /* the bar drawn last, and where it stood */
static unsigned last_permille = UINT32_MAX;

static void progress_draw(const char *label, uint64_t done, uint64_t total, bool bytes) {
    static int tty = -1;
    if (tty < 0) tty = isatty(STDERR_FILENO);
    if (!tty || !total) return;
    if (done >= total) {
        fputs("\r\033[K", stderr); /* erase the bar: the result follows */
        last_label = NULL;
        return;
    }
    unsigned permille = (unsigned)(done * 1000 / total); /* redraw only when it moved */
    if (label == last_label && permille == last_permille) return;
    last_label = label;
    last_permille = permille;
    enum { WIDTH = 30 };
    unsigned fill = (unsigned)(done * WIDTH / total);
    char bar[WIDTH + 1];
    for (unsigned i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = '\0';
    if (bytes)
        fprintf(stderr, "\r%s [%s] %3u%%  %.1f / %.1f MiB", label, bar,
                (unsigned)(done * 100 / total), (double)done / 1048576.0,
                (double)total / 1048576.0);
    else
        fprintf(stderr, "\r%s [%s] %3u%%  %llu / %llu events", label, bar,
                (unsigned)(done * 100 / total), (unsigned long long)done,
                (unsigned long long)total);
    fflush(stderr);
}

void cli_progress(void *label, uint64_t done, uint64_t total) {
    progress_draw(label, done, total, true);
}

void cli_progress_events(void *label, uint64_t done, uint64_t total) {
    progress_draw(label, done, total, false);
}

volatile sig_atomic_t cli_stop_flag;
volatile int cli_stop_int;

static void on_stop_signal(int sig) {
    (void)sig;
    cli_stop_flag = 1;
    cli_stop_int = 1;
}

bool cli_writer_unshared(bp_store *s, const bp_store_stats *st, uint32_t *pid) {
    bp_store_stats own = BP_STORE_STATS_INIT;
    bp_store_open_report wr = BP_STORE_OPEN_REPORT_INIT;
    *pid = 0;
    if (!st && bp_store_stats_get(s, &own)) return false;
    if (!st) st = &own;
    if (!st->read_only || !st->writer_pid) return false;
    *pid = st->writer_pid;
    return bp_store_writer_report(s, &wr) == BP_ENOTFOUND;
}

void cli_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
