/*
 * cli.h — shared pieces of the `batpak` command-line tool (doc/batpak.1).
 *
 * The tool talks to the store only through the public headers, except `dump`,
 * which reads the files without opening a store and decodes them with the
 * format layer (src/format/format.h). Every command
 * function returns a process exit code (enum cli_exit) and prints at most one
 * error line, "batpak: <command>: <message>", to stderr — the function that
 * detects an error prints it and every caller above only passes the code up.
 */
#ifndef BATPAK_CLI_H
#define BATPAK_CLI_H

#include <batpak/batpak.h>
#include <jansson.h>
#include <signal.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Exit codes (doc/batpak.1, EXIT STATUS). */
enum cli_exit {
    CLI_OK = 0,
    CLI_EUSAGE = 1,    /**< usage error or invalid input; nothing was written */
    CLI_ENOTFOUND = 2, /**< no such event, entity or store */
    CLI_EDENIED = 3,   /**< denied, or CAS / idempotency conflict */
    CLI_ECORRUPT = 4,  /**< corruption found */
    CLI_EIO = 5        /**< I/O error, store locked, fail-stopped, anything else */
};

/** What a command runs against. dir is never NULL. */
typedef struct cli_ctx {
    const char *dir;      /**< store directory: --dir, else $BATPAK_DIR, else ./batpak-data */
    const char *cmd;      /**< command name for error lines; NULL before one is known */
    const char *sign_key; /**< secret key file that signs receipts of writes: append's
                               --sign-key, else $BATPAK_SIGNING_KEY; NULL: unsigned */
    bool seal;            /**< init --seal: turn on crypto-shredding (seal_payloads) */
    bool dir_given;       /**< dir came from --dir or $BATPAK_DIR, not the default */
    const char *prog;     /**< how the tool was invoked (argv[0]), for hints it prints */
    bool accept_loss;     /**< --accept-loss: open a store whose files lost data it held
                               (bp_open_options.accept_loss) */
    bool salvage;         /**< --salvage: keep the valid prefix of a segment damaged in the
                               middle (bp_open_options.salvage) */
    bool dir_option;      /**< --dir was given on the command line (twice is refused) */
    char *errbuf;         /**< NULL, or where cli_fail puts its message instead of stderr
                               (batpak ui: the message goes into an HTTP reply) */
    size_t errcap;        /**< bytes at errbuf */
} cli_ctx;

/* ------------------------------------------------------------ util.c: errors */

/** Exit code for a library status. */
int cli_exit_code(bp_status rc);

/** Print "batpak: <cmd>: <message>" (one line: control characters are escaped); return code.
 * With c->errbuf set, the message goes there (NUL-terminated, cut to fit) and nothing is
 * printed. */
int cli_fail(const cli_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** cli_fail with bp_last_error() (or bp_strerror(rc) when empty); returns cli_exit_code(rc). */
int cli_fail_status(const cli_ctx *c, bp_status rc);

/** When standard input is a terminal, say on stderr that the command reads `what` from it
 * (else it would wait without a word). */
void cli_stdin_hint(const cli_ctx *c, const char *what);

/** Standard output is a pipe or socket that nobody reads any more (`tail -f | head -1` after
 * head exits): a command that waits for something to write stops at once instead of at its
 * next write. */
bool cli_output_gone(void);

/** Microseconds of the monotonic clock, for durations the tool prints. */
uint64_t cli_now_us(void);

/** Print an out-of-memory line and exit(CLI_EIO). For allocation failures in the tool itself. */
_Noreturn void cli_oom(void);

/** Flush stdout. If code is CLI_OK and writing failed, report it and return CLI_EIO. */
int cli_finish_output(const cli_ctx *c, int code);

/* ---------------------------------------------------------- util.c: arguments */

/** A command's option: "--name" alone, or "--name VALUE" / "--name=VALUE" when has_value. */
typedef struct cli_option {
    const char *name; /**< without the leading "--"; a one-letter name is also "-x" */
    bool has_value;   /**< takes a value; such an option given twice is refused, naming it,
                           rather than keeping the last, but for the lists --kind and
                         --pubkey */
} cli_option;

/** Walks a command's arguments. --dir DIR, --accept-loss and --salvage are accepted by every
 * command. */
typedef struct cli_args {
    cli_ctx *ctx;
    int argc;
    char **argv;
    int next;          /**< index of the next argv element to look at */
    bool options_done; /**< "--" was seen: the rest is positional */
    uint64_t seen;     /**< bit i: opts[i] was given (the first 64 options) */
} cli_args;

/** One argument: an option (name set, value when it takes one) or a positional (name NULL). */
typedef struct cli_arg {
    const char *name;
    const char *value;
} cli_arg;

/**
 * Next argument of a.  opts ends with {NULL, false}.
 * Returns 1 with *out filled, 0 at the end, -1 after printing a usage error
 * (unknown option, missing value, value given to a flag).
 */
int cli_next_arg(cli_args *a, const cli_option *opts, cli_arg *out);

/** For a command without arguments: accepts only --dir. Returns an exit code. */
int cli_no_arguments(cli_ctx *c, int argc, char **argv);

/** True when arg is the option called name. */
bool cli_arg_is(const cli_arg *arg, const char *name);

/* ------------------------------------------------------------ util.c: numbers */

/** Parse decimal or 0x-hex digits only (no sign, no spaces) into 0..max. False when not. */
bool cli_parse_u64(const char *text, uint64_t max, uint64_t *out);

/** cli_parse_u64 that prints "<what>: '<text>' is not a number in 0..max" on failure. */
int cli_parse_number(const cli_ctx *c, const char *what, const char *text, uint64_t max,
                     uint64_t *out);

/** Parse a kind (0x1001 or 4097, 0..0xFFFF). Prints the error; returns an exit code. */
int cli_parse_kind(const cli_ctx *c, const char *text, uint16_t *out);

/* -------------------------------------------------- util.c: stores and input */

/** CLI_EUSAGE (printed) when c->dir is empty. */
int cli_check_dir(const cli_ctx *c);

/** Open the existing store at c->dir read-only (no writes, no open event). */
int cli_open_read(const cli_ctx *c, bp_store **out);

/** Register the payload types this program knows (the demo's), so that output
 * renders them by their registered JSON form. Done by cli_open_read/write. */
bp_status cli_register_types(bp_store *s);

/** Open the store at c->dir for writing; it signs receipts with c->sign_key when set. A
 * missing store is not created (exit 2, "batpak init creates one": a typo in --dir must not
 * make a new store). A short-lived command appends no SYSTEM_OPEN_COMPLETED event (append,
 * compact, tombstone, forget...: the store holds what the user put in). */
int cli_open_write(const cli_ctx *c, bp_store **out);
/** The open options every command starts from: the defaults, and the global --accept-loss and
 * --salvage. */
bp_open_options cli_open_options(const cli_ctx *c);
/** cli_open_write that creates the store when missing (init). */
int cli_open_create(const cli_ctx *c, bp_store **out);
/** cli_open_write for the long-running commands (relay; demo, which creates its store when
 * create), which log their open in batpak:store / batpak:lifecycle like a program. */
int cli_open_write_lifecycle(const cli_ctx *c, bp_store **out, bool create);

/**
 * Close s. When code is CLI_OK and the close fails, report it and return its
 * exit code; otherwise return code (an earlier error was already reported).
 */
int cli_close(const cli_ctx *c, bp_store *s, int code);

/* A progress bar on stderr for a long operation (a bp_progress_fn; ctx is the
 * label). Draws only when stderr is a terminal; erases itself at the end. */
void cli_progress(void *label, uint64_t done, uint64_t total);

/** cli_progress counting events instead of bytes. */
void cli_progress_events(void *label, uint64_t done, uint64_t total);

/**
 * Read all of path ("-" = stdin) into a NUL-terminated heap buffer (free()).
 * More than max bytes is an input error. Returns an exit code.
 */
int cli_read_input(const cli_ctx *c, const char *path, size_t max, char **data, size_t *len);

/**
 * Check a coordinate the way an append will, before anything is opened.
 * prefix starts the error message ("" or "line 3: ").
 */
int cli_check_coord(const cli_ctx *c, const char *prefix, const char *entity, const char *scope);

/* ------------------------------------------------------------------ json.c */

/** Set obj[key] = value (steals value); cli_oom() on failure. */
void cli_json_set(json_t *obj, const char *key, json_t *value);

/** JSON for a u64: an integer up to INT64_MAX, else its decimal text. */
json_t *cli_json_u64(uint64_t v);
json_t *cli_json_id(const bp_id *id);
json_t *cli_json_hash(const bp_hash *h);
json_t *cli_json_hex(const uint8_t *p, size_t n);
/** A JSON string for bytes that should be UTF-8; invalid bytes are shown as \xNN. */
json_t *cli_json_text(const char *s, size_t n);

/** Print v compactly (keys in insertion order) plus a newline to stdout; decrefs v. */
void cli_print_json(json_t *v);

/**
 * Parse JSON text (any value) into MessagePack appended to out. Objects become
 * maps, arrays arrays, strings str, integers int, reals float64, true/false/null.
 * where names the input in the error ("payload", "line 3: payload").
 * Returns an exit code (CLI_EUSAGE with the error printed for invalid JSON).
 */
int cli_json_text_to_msgpack(const cli_ctx *c, const char *where, const char *text, size_t len,
                             msgpack_sbuffer *out);

/** Append the MessagePack encoding of a JSON value to out. */
void cli_json_to_msgpack(const json_t *v, msgpack_sbuffer *out);

/**
 * Set obj["payload"] to ev's payload as JSON (bp_event_json: the
 * registered type's form when s knows the kind; s may be NULL), or
 * obj["payload_hex"] when it has no JSON form. When the registered type does
 * not read the payload, obj["payload_error"] says why and the payload is shown
 * in its generic form.
 */
void cli_json_set_payload(json_t *obj, bp_store *s, const bp_event *ev);

/**
 * One event as a JSON object with keys event_id, entity, scope, kind,
 * global_seq, clock, hlc, prev_hash, event_hash, correlation_id, causation_id,
 * then payload (or payload_hex) when the event carries its payload.
 */
json_t *cli_event_json(bp_store *s, const bp_event *ev);

/** A receipt as bp_receipt_to_json gives it (doc/FORMAT.md "Receipt JSON"). */
json_t *cli_receipt_json(const bp_receipt *r);

/* -------------------------------------------------------------- cmd_keys.c */

/** Check the receipt JSON text[0..len) (as append prints it) with s's key registry, or kr
 * when s is NULL. False when it is not a receipt (*rc, its message in bp_last_error(); o as
 * it was). Else o gets {"valid","type","key_id","event_id","entity","global_seq"} and *rc is
 * the verification's status (BP_OK: valid; else its message in bp_last_error()). */
bool cli_receipt_check(json_t *o, const char *text, size_t len, bp_store *s, const bp_keyring *kr,
                       bp_status *rc);

/* ------------------------------------------------------------ cmd_verify.c */

/** bp_store_verify of s (progress: NULL or its callback), and the report as `batpak verify`
 * prints it: {"clean","segments","frames","events","entities","problems","first_problem"},
 * with "problems_found" (the first of each entity, at most 100) when there are problems and
 * "loss" (clean false) when the open went past a loss (*orep). NULL when *rc is neither BP_OK
 * nor BP_ECORRUPT (the message in bp_last_error()). *rep and *orep start from their INITs. */
json_t *cli_verify_run(bp_store *s, bp_progress_fn progress, void *progress_ctx,
                       bp_verify_report *rep, bp_store_open_report *orep, bp_status *rc);
/** Every durable position of s (bp_checkpoints_list, however many): *out heap (free()). */
bp_status cli_checkpoints_list(bp_store *s, bp_checkpoint_info **out, size_t *n);
/** A bp_store_open_report as stats --json prints it ("open", "writer_open"). */
json_t *cli_open_report_json(const bp_store_open_report *r);

/* ---------------------------------------------------------------- region.c */

#define CLI_MAX_KINDS 64

/** A region filter plus the listing controls shared by query and tail. */
typedef struct cli_region {
    bp_region r;
    uint16_t kinds[CLI_MAX_KINDS];
    uint64_t limit; /**< UINT64_MAX unless --limit */
    bool has_limit;
    uint64_t from_seq; /**< --from-seq as given */
    uint64_t after;    /**< --after as given, when has_after */
    bool has_after;
} cli_region;

/** The region options, to put inside a command's cli_option table. */
#define CLI_REGION_OPTIONS                                                                         \
    {"entity", true}, {"entity-prefix", true}, {"scope", true}, {"kind", true},                    \
        {"category", true}, {"from-seq", true}, {"to-seq", true}, {"since", true},                 \
        {"until", true}, {"limit", true}, {                                                        \
        "after", true                                                                              \
    }

void cli_region_init(cli_region *q);

/** Apply arg if it is a region option: 1 applied, 0 not a region option, -1 error printed. */
int cli_region_option(const cli_ctx *c, cli_region *q, const cli_arg *arg);

/** Parse a duration: a decimal number and a unit, ms, s, m, h or d ("90d", "1500ms"). */
bool cli_parse_duration_ms(const char *text, uint64_t *ms);

/** Parse RFC 3339 (2026-01-02T03:04:05.123+02:00) or Unix milliseconds. */
bool cli_parse_time_ms(const char *text, uint64_t *ms);

/** Called for each event of a listing; returns CLI_OK to go on, anything else to stop. */
typedef int (*cli_event_fn)(void *user, const bp_event *ev);

/**
 * One page: call fn for at most max events matching r with global_seq > *pos,
 * in global_seq order. *pos becomes the last event's global_seq, *count the
 * number seen. Returns an exit code (errors printed).
 */
int cli_query_page(const cli_ctx *c, bp_store *s, const bp_region *r, unsigned flags, uint64_t max,
                   cli_event_fn fn, void *user, uint64_t *pos, uint64_t *count);

/**
 * Every event matching r (at most limit: UINT64_MAX for all), fetched page by page with
 * resumable positions. Returns an exit code (errors printed).
 */
int cli_query_all(const cli_ctx *c, bp_store *s, const bp_region *r, unsigned flags, uint64_t limit,
                  cli_event_fn fn, void *user);

/** *seq = the global_seq of the newest event matching r (0 when none), from the index.
 * Returns an exit code (errors printed). */
int cli_region_last_seq(const cli_ctx *c, bp_store *s, const bp_region *r, uint64_t *seq);

/** cli_event_fn that prints the event as one NDJSON line. */
int cli_print_event(void *user, const bp_event *ev);

/* ------------------------------------------------------------- cmd_dump.c */

/**
 * Frame-by-frame NDJSON dump of DIR/STORE, DIR/index.ckpt and every segment,
 * read straight from the files as doc/FORMAT.md describes (no store open, no
 * lock: it works on a damaged store). with_payloads adds each payload.
 * Returns an exit code: CLI_ECORRUPT when something did not parse.
 */
int cli_dump_segments(const char *dir, bool with_payloads);

/* --------------------------------------------------------------- commands */

typedef int (*cli_command_fn)(cli_ctx *c, int argc, char **argv);

int cmd_init(cli_ctx *c, int argc, char **argv);
int cmd_append(cli_ctx *c, int argc, char **argv);
int cmd_get(cli_ctx *c, int argc, char **argv);
int cmd_stream(cli_ctx *c, int argc, char **argv);
int cmd_query(cli_ctx *c, int argc, char **argv);
int cmd_tail(cli_ctx *c, int argc, char **argv);
int cmd_verify(cli_ctx *c, int argc, char **argv);
int cmd_stats(cli_ctx *c, int argc, char **argv);
int cmd_entities(cli_ctx *c, int argc, char **argv);
int cmd_schema(cli_ctx *c, int argc, char **argv);
int cmd_ui(cli_ctx *c, int argc, char **argv);
int cmd_dump(cli_ctx *c, int argc, char **argv);
int cmd_demo(cli_ctx *c, int argc, char **argv);
int cmd_keygen(cli_ctx *c, int argc, char **argv);
int cmd_verify_receipt(cli_ctx *c, int argc, char **argv);
int cmd_snapshot(cli_ctx *c, int argc, char **argv);
int cmd_compact(cli_ctx *c, int argc, char **argv);
int cmd_tombstone(cli_ctx *c, int argc, char **argv);
int cmd_forget(cli_ctx *c, int argc, char **argv);
int cmd_ancestors(cli_ctx *c, int argc, char **argv);
int cmd_export(cli_ctx *c, int argc, char **argv);
int cmd_import(cli_ctx *c, int argc, char **argv);
int cmd_relay(cli_ctx *c, int argc, char **argv);
int cmd_follow(cli_ctx *c, int argc, char **argv);

/* SIGINT and SIGTERM set cli_stop_flag and cli_stop_int (what bp_follow watches) instead of
 * killing: the long-running commands (relay, follow, tail -f) stop cleanly. */
extern volatile sig_atomic_t cli_stop_flag;
extern volatile int cli_stop_int;
void cli_catch_stop_signals(void);
/* A read-only handle: a writer holds the store (its pid into *pid) but shares no live page
 * (DIR/LIVE: a batpak before 1.3, or one that could not set the file up), so that this handle
 * sees neither its new events nor its figures. st: the handle's stats when the caller has them
 * (NULL: read here). */
bool cli_writer_unshared(bp_store *s, const bp_store_stats *st, uint32_t *pid);

#endif
