/* batpak — command-line tool over libbatpak: global options, dispatch, usage. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DIR "./batpak-data"

typedef struct cli_command {
    const char *name;
    cli_command_fn run;
    const char *usage; /* "batpak <usage>" lines, then what it does */
} cli_command;

static int cmd_completion(cli_ctx *c, int argc, char **argv);

static const cli_command COMMANDS[] = {
    {"init", cmd_init,
     "init [--seal]\n"
     "    Create the store in DIR (a no-op when it exists). Prints\n"
     "    {\"dir\",\"store_uuid\",\"created\",\"sealed\"}. --seal turns on crypto-shredding\n"
     "    for good: every payload written from then on is sealed with its entity's data\n"
     "    key (see forget).\n"},
    {"append", cmd_append,
     "append ENTITY SCOPE KIND [JSON] [--expect-clock N] [--idempotency-key K] [--no-sync] "
     "[--sign-key FILE]\n"
     "append --batch FILE|- [--sign-key FILE]\n"
     "    Append one event; the payload is JSON from the argument or, when absent, from\n"
     "    stdin, stored as MessagePack. KIND is 0x1001 or 4097. Prints the receipt as\n"
     "    JSON (doc/FORMAT.md \"Receipt JSON\"). --sign-key FILE (or $BATPAK_SIGNING_KEY)\n"
     "    signs it with that secret key (see keygen, verify-receipt).\n"
     "    --batch: NDJSON lines {\"entity\",\"scope\",\"kind\",\"payload\"} with optional\n"
     "    \"expect_clock\" and \"idempotency_key\", appended as one atomic batch; prints one\n"
     "    receipt per line. A bad line writes nothing.\n"},
    {"get", cmd_get,
     "get EVENT_ID\n"
     "    Print one event as JSON.\n"},
    {"stream", cmd_stream,
     "stream ENTITY [--limit N] [--after POS]\n"
     "    Print an entity's events in clock order, one JSON object per line.\n"
     "    Exit 2 when the entity has no events.\n"},
    {"entities", cmd_entities,
     "entities [--prefix P] [--after NAME] [--limit N]\n"
     "    Print the entities whose names begin with P, in bytewise order of their names,\n"
     "    with their published events and head clock (NDJSON {\"entity\",\"events\",\n"
     "    \"clock\"}); from the first after NAME; at most N. Reads no event.\n"},
    {"schema", cmd_schema,
     "schema [--json-schema NAME|KIND [--version V]] [--record FILE|-]\n"
     "    Print the payload types the store holds (recorded by bp_schema_record), one JSON\n"
     "    object per line ({\"name\",\"kind\",\"version\",\"fields\"}); with --json-schema, the\n"
     "    JSON Schema of that type's JSON form (its newest version, or V). append checks a\n"
     "    payload of a kind the store holds a type for against it (exit 1 naming the field).\n"
     "    --record records the descriptors of FILE (one per line, as this prints them).\n"},
    {"ui", cmd_ui,
     "ui [--listen HOST:PORT] [--allow-remote]\n"
     "    Serve a read-only web page of the store at http://127.0.0.1:8470/: its figures,\n"
     "    entities, streams with chain marks, a live tail, workers and relays with their\n"
     "    lag, verify, receipts; and its JSON endpoints (doc/GUIDE.md). Port 0 picks one.\n"
     "    Prints {\"url\"}; runs until interrupted. Loopback only, but with --allow-remote,\n"
     "    which prints {\"login\"}: a one-time URL that sets the cookie the page needs.\n"},
    {"query", cmd_query,
     "query [FILTERS]\n"
     "    Print the events matching the filters in global_seq order (NDJSON).\n"},
    {"tail", cmd_tail,
     "tail [-f] [--interval MS] [FILTERS]\n"
     "    Print the last --limit (default 10) matching events; with -f go on printing\n"
     "    new ones as the writer (another process) publishes them: it wakes this\n"
     "    reader at once. --interval MS (default 200): how often, while nothing comes,\n"
     "    it checks that its output is still open.\n"},
    {"verify", cmd_verify,
     "verify\n"
     "    Check every CRC, event hash, entity chain, footer and index.ckpt. Prints the\n"
     "    report as JSON (with problems found: \"problems_found\", the first problem of\n"
     "    each entity and those of no entity, at most 100); exit 0 when clean, 4 when\n"
     "    problems were found.\n"},
    {"stats", cmd_stats,
     "stats [--json | --prom]\n"
     "    Counts and sizes of the store, its writer's pid and its readers (read-only\n"
     "    handles in any process, this one included), what its open found, and a\n"
     "    summary of each segment. --json: the same as one JSON object (with the\n"
     "    diagnostics). --prom: Prometheus text-format metrics (bp_store_prometheus;\n"
     "    the counters and the latency histogram are this command's own read-only\n"
     "    handle's, so zero).\n"},
    {"dump", cmd_dump,
     "dump [--payloads]\n"
     "    Frame-by-frame NDJSON dump of STORE, index.ckpt and every segment, read from\n"
     "    the files as doc/FORMAT.md describes (works on a damaged store; takes no lock).\n"},
    {"snapshot", cmd_snapshot,
     "snapshot DEST\n"
     "    Copy the store into the new directory DEST: a consistent backup that opens and\n"
     "    verifies on its own (same store id and key registry). DEST is built aside and\n"
     "    appears only when complete. Prints {\"dest\",\"global_seq\",\"segments\",\n"
     "    \"bytes\",\"duration_us\"}. From a program, bp_store_snapshot does the same while\n"
     "    appends go on.\n"},
    {"compact", cmd_compact,
     "compact [--max-age DUR] [--keep-last N] [--tombstoned] [--dry-run]\n"
     "    Seal the active segment and rewrite the sealed ones into as few files as\n"
     "    segment_size allows, dropping the oldest events of each entity: those older\n"
     "    than DUR (90d, 12h, 30m, 45s, 500ms), all but the newest N, and (--tombstoned)\n"
     "    everything up to an entity's last tombstone. Kept events stay byte for byte;\n"
     "    each chain goes on from an anchor (DIR/ANCHORS) that verify checks. Crash-safe:\n"
     "    an interrupted compaction leaves the store as before or as after. Prints\n"
     "    {\"changed\",\"segments_before\",\"segments_after\",\"events_kept\",\n"
     "    \"events_removed\",\"bytes_before\",\"bytes_after\",...}.\n"},
    {"tombstone", cmd_tombstone,
     "tombstone ENTITY --scope SCOPE\n"
     "    Append a tombstone (kind 0x0003) to the entity: compact --tombstoned then drops\n"
     "    its events up to it. Prints {\"entity\",\"event_id\",\"global_seq\",\"clock\"}.\n"},
    {"forget", cmd_forget,
     "forget ENTITY\n"
     "    Destroy the entity's data key (a store made with init --seal): its payloads\n"
     "    become unreadable for good (shown as \"payload_forgotten\": true) while ids,\n"
     "    clocks and hashes stay and verify. Exit 2 when the entity has no key.\n"
     "    Prints {\"entity\",\"forgotten\"}.\n"},
    {"export", cmd_export,
     "export [--after SEQ]\n"
     "    Print every event (with global_seq > SEQ) as NDJSON with every field and the\n"
     "    payload in base64 (doc/FORMAT.md \"Export\"): what import reads back.\n"},
    {"import", cmd_import,
     "import FILE|-\n"
     "    Append the events of an export to the store in DIR (created when missing),\n"
     "    keeping ids, clocks, hlc and hashes. Every line is checked first: its hash, its\n"
     "    chain, its place; a bad one stops the import, naming its line (the lines before\n"
     "    it are imported, a batch only whole). Events the store holds already are\n"
     "    skipped, so an interrupted import can be run again. The export of a compacted\n"
     "    store starts with its anchors: it imports only into a new directory (and one\n"
     "    interrupted within the compacted range is started again there). Prints\n"
     "    {\"lines\",\"imported\",\"skipped\"}.\n"},
    {"relay", cmd_relay,
     "relay --nats URL --stream NAME [--subject-prefix P] [--checkpoint-id ID] [--batch N] "
     "[--until-caught-up] [FILTERS]\n"
     "    Publish the store's committed events, in order, to the JetStream stream NAME\n"
     "    (created when missing, subjects P.>; P defaults to batpak.NAME): one message per\n"
     "    event, subject P.KKKK (its kind), body the frame, Nats-Msg-Id the event id. The\n"
     "    position moves only after the server acknowledged a batch, and is kept in\n"
     "    DIR/cursors/ID.ckpt (ID: relay.NAME), so a relay killed at any moment resumes\n"
     "    without losing or reordering events; resends are dropped by the server.\n"
     "    Reconnects by itself. Runs until SIGINT/SIGTERM, or with --until-caught-up until\n"
     "    the events there were at its start are acknowledged. FILTERS (as query) relay a\n"
     "    part of the store: for consumers of your own, not for a follower. Prints\n"
     "    {\"stream\",\"position\",\"published\",\"duplicates\",\"retries\",...}.\n"},
    {"follow", cmd_follow,
     "follow --nats URL --stream NAME [--batch N] [--until-caught-up]\n"
     "    Build a read replica in DIR (created when missing) from a relay's stream: each\n"
     "    event keeps its id, clocks and hashes, and its hash and chain are checked on\n"
     "    arrival (a bad one stops the follower, exit 4, naming its stream sequence).\n"
     "    Resumes from DIR/follow/NAME.ckpt; events the replica holds are skipped. Between\n"
     "    bursts the replica is closed; batpak commands read it at any time (read-only\n"
     "    opens take no lock). Runs until SIGINT/SIGTERM, or\n"
     "    with --until-caught-up until the stream is drained. Prints\n"
     "    {\"replica\",\"stream\",\"messages\",\"applied\",\"skipped\",...}.\n"},
    {"ancestors", cmd_ancestors,
     "ancestors EVENT_ID [--causation] [--limit N]\n"
     "    Print the event's ancestors, nearest first, with their \"depth\" (NDJSON):\n"
     "    along its entity's hash chain (every link checked; exit 4 on a broken one),\n"
     "    or with --causation along causation links across entities. --limit N: at\n"
     "    most N (0: none, as --limit is everywhere).\n"},
    {"keygen", cmd_keygen,
     "keygen [--out PREFIX]\n"
     "    Make an Ed25519 key pair for signed receipts: PREFIX.key (secret, mode 0600)\n"
     "    and PREFIX.pub (default PREFIX: ./batpak-signing). Never overwrites a file.\n"
     "    Prints {\"secret_key\",\"public_key\",\"key_id\"}.\n"},
    {"verify-receipt", cmd_verify_receipt,
     "verify-receipt FILE|- [--pubkey KEYFILE]...\n"
     "    Check signed receipts (one JSON object per line, as append prints them)\n"
     "    against the given public keys, offline; without --pubkey, against the key\n"
     "    registry of the store in DIR. Prints one result per receipt; exit 0 when all\n"
     "    verify, 4 when one does not, 1 when the input is malformed.\n"},
    {"demo", cmd_demo,
     "demo\n"
     "    Run a small bank on DIR (default here: ./demo-data): appends with CAS, an\n"
     "    idempotent retry, a transfer through a gate as one atomic batch, a denial\n"
     "    recorded, a projection, a paged query, a durable cursor worker and verify,\n"
     "    printing what happened and how long each step took. Re-runnable: a second run\n"
     "    resumes the worker where the first left it.\n"},
    {"completion", cmd_completion,
     "completion bash\n"
     "    Print a bash completion script for batpak (commands, their options, file\n"
     "    names where a command takes a file). Try it: source <(batpak completion bash);\n"
     "    keep it: batpak completion bash > /etc/bash_completion.d/batpak. cmake --install\n"
     "    installs it as share/bash-completion/completions/batpak.\n"},
    {NULL, NULL, NULL},
};

static const char FILTERS_HELP[] =
    "Filters (query, tail):\n"
    "  --entity E  --entity-prefix P  --scope S  --kind K (repeatable)  --category C\n"
    "  --from-seq N  --to-seq N  --since T  --until T  --limit N  --after POS\n"
    "  T is RFC 3339 (2026-01-02T03:04:05Z, 2026-01-02T05:04:05.250+02:00, 2026-01-02)\n"
    "  or Unix milliseconds; --after resumes a listing after the global_seq POS.\n";

static const char GLOBAL_HELP[] =
    "Global options:\n"
    "  --dir DIR    store directory (default: $BATPAK_DIR, else " DEFAULT_DIR ")\n"
    "  --accept-loss  open a store even though files hold less than its records\n"
    "               say (a segment removed or cut, an older backup of the segments):\n"
    "               the loss is recorded, then the store opens with what is left.\n"
    "               Without it such a store is refused (exit 4) and nothing is written\n"
    "  --salvage    open a store whose newest segment (or one that must be scanned) is\n"
    "               damaged in the middle: keep the valid events before the damage. A\n"
    "               command that writes moves the rest to DIR/quarantine/ (the open\n"
    "               report counts it); a read-only one only shows the prefix\n"
    "  --help       this text; 'batpak help COMMAND' for one command\n"
    "  --version    print the version\n"
    "Exit codes: 0 ok, 1 usage or invalid input, 2 not found, 3 denied or CAS conflict,\n"
    "            4 corruption found, 5 I/O error or store locked.\n";

static void print_usage(FILE *out) {
    fputs("usage: batpak [--dir DIR] COMMAND [ARGS]\n\nCommands:\n", out);
    for (const cli_command *c = COMMANDS; c->name; c++) {
        const char *line = c->usage;
        while (*line) { /* the "batpak ..." lines, up to the indented description */
            const char *end = strchr(line, '\n');
            if (line[0] == ' ') break;
            fprintf(out, "  batpak %.*s\n", (int)(end - line), line);
            line = end + 1;
        }
    }
    fprintf(out, "\n%s\n%s", FILTERS_HELP, GLOBAL_HELP);
}

static void print_command_usage(const cli_command *c) {
    const char *line = c->usage;
    while (*line) {
        const char *end = strchr(line, '\n');
        fprintf(stdout, "%s%.*s\n", line[0] == ' ' ? "" : "usage: batpak [--dir DIR] ",
                (int)(end - line), line);
        line = end + 1;
    }
    if (!strcmp(c->name, "query") || !strcmp(c->name, "tail") || !strcmp(c->name, "relay"))
        fprintf(stdout, "\n%s", FILTERS_HELP);
}

/* The options named in c's usage lines ("--name" and "-x" words), space-separated, plus
 * the region filters for query and tail. */
static void command_options(const cli_command *c, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (const char *line = c->usage; *line && line[0] != ' ';) {
        const char *end = strchr(line, '\n');
        for (const char *p = line; p < end; p++) {
            if (p[0] != '-' || (p > line && p[-1] != '[' && p[-1] != ' ')) continue;
            size_t k = 1;
            while (p + k < end && (p[k] == '-' || (p[k] >= 'a' && p[k] <= 'z')))
                k++;
            char word[48];
            if (k < 2 || k >= sizeof word) continue;
            snprintf(word, sizeof word, "%.*s", (int)k, p);
            bool dup = false; /* "append" names --sign-key twice */
            for (const char *q = strstr(out, word); q && !dup; q = strstr(q + 1, word))
                dup = (q == out || q[-1] == ' ') && (q[k] == ' ' || q[k] == '\0');
            if (!dup && n + k + 2 < cap)
                n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "", word);
            p += k - 1;
        }
        line = end + 1;
    }
    if (!strcmp(c->name, "query") || !strcmp(c->name, "tail") || !strcmp(c->name, "relay"))
        snprintf(out + n, cap - n,
                 "%s--entity --entity-prefix --scope --kind --category "
                 "--from-seq --to-seq --since --until --limit --after",
                 n ? " " : "");
}

static int cmd_completion(cli_ctx *c, int argc, char **argv) {
    if (argc != 1 || strcmp(argv[0], "bash"))
        return cli_fail(c, CLI_EUSAGE,
                        "usage: batpak completion bash (bash is the one shell "
                        "supported)");
    fputs(
        "# bash completion for batpak, made by `batpak completion bash` (batpak " BP_VERSION_STRING
        ")\n"
        "_batpak() {\n"
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i\n"
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        "        case ${COMP_WORDS[i]} in\n"
        "            --dir) ((i++)) ;;\n"
        "            -*) ;;\n"
        "            *) cmd=${COMP_WORDS[i]}; break ;;\n"
        "        esac\n"
        "    done\n"
        "    case $prev in\n"
        "        --dir|--out|--sign-key|--pubkey|--batch)\n"
        "            compopt -o filenames 2>/dev/null\n"
        "            COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
        "    esac\n"
        "    if [[ -z $cmd ]]; then\n"
        "        COMPREPLY=($(compgen -W \"--dir --accept-loss --salvage --help --version help "
        "version",
        stdout);
    for (const cli_command *k = COMMANDS; k->name; k++)
        printf(" %s", k->name);
    fputs("\" -- \"$cur\")); return\n"
          "    fi\n"
          "    local opts=\n"
          "    case $cmd in\n",
          stdout);
    for (const cli_command *k = COMMANDS; k->name; k++) {
        char opts[512];
        command_options(k, opts, sizeof opts);
        printf("        %s) opts=\"%s\" ;;\n", k->name, opts);
    }
    fputs("        help) COMPREPLY=($(compgen -W \"", stdout);
    for (const cli_command *k = COMMANDS; k->name; k++)
        printf("%s%s", k == COMMANDS ? "" : " ", k->name);
    fputs("\" -- \"$cur\")); return ;;\n"
          "    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$opts --dir --accept-loss --salvage --help\" -- "
          "\"$cur\"))\n"
          "    else\n"
          "        case $cmd in\n"
          "            import|verify-receipt|snapshot)\n"
          "                compopt -o filenames 2>/dev/null\n"
          "                COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
          "            completion) COMPREPLY=($(compgen -W bash -- \"$cur\")) ;;\n"
          "        esac\n"
          "    fi\n"
          "}\n"
          "complete -F _batpak batpak\n",
          stdout);
    return CLI_OK;
}

static const cli_command *find_command(const char *name) {
    for (const cli_command *c = COMMANDS; c->name; c++)
        if (!strcmp(c->name, name)) return c;
    return NULL;
}

/* True when the command's arguments ask for help (before any "--"). */
static bool wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) return false;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    }
    return false;
}

static int print_version(void) {
    printf("batpak %s (libbatpak %s)\n", BP_VERSION_STRING, bp_version());
    return cli_finish_output(NULL, CLI_OK);
}

static int run_help(cli_ctx *ctx, int argc, char **argv) {
    ctx->cmd = "help";
    if (argc == 0) {
        print_usage(stdout);
        return cli_finish_output(ctx, CLI_OK);
    }
    if (argc > 1) return cli_fail(ctx, CLI_EUSAGE, "takes at most one command name");
    const cli_command *c = find_command(argv[0]);
    if (!c)
        return cli_fail(ctx, CLI_EUSAGE, "'%s': no such command (try 'batpak --help')", argv[0]);
    print_command_usage(c);
    return cli_finish_output(ctx, CLI_OK);
}

/* Global options before the command. Returns -1 to go on, else an exit code. */
static int parse_global(cli_ctx *ctx, int argc, char **argv, int *i) {
    for (; *i < argc && argv[*i][0] == '-'; (*i)++) {
        const char *a = argv[*i];
        if (!strcmp(a, "--")) {
            (*i)++;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            return cli_finish_output(ctx, CLI_OK);
        }
        if (!strcmp(a, "--version") || !strcmp(a, "-V")) return print_version();
        if (ctx->dir_option && !strncmp(a, "--dir", 5) && (a[5] == '=' || !a[5])) {
            return cli_fail(ctx, CLI_EUSAGE, "--dir: given twice (give it once)");
        } else if (!strncmp(a, "--dir=", 6)) {
            ctx->dir = a + 6;
            ctx->dir_given = ctx->dir_option = true;
        } else if (!strcmp(a, "--accept-loss")) {
            ctx->accept_loss = true;
        } else if (!strcmp(a, "--salvage")) {
            ctx->salvage = true;
        } else if (!strcmp(a, "--dir")) {
            if (*i + 1 >= argc) return cli_fail(ctx, CLI_EUSAGE, "--dir: needs a value");
            ctx->dir = argv[++*i];
            ctx->dir_given = ctx->dir_option = true;
        } else {
            return cli_fail(ctx, CLI_EUSAGE, "%s: unknown option (try 'batpak --help')", a);
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    const char *env = getenv("BATPAK_DIR");
    const char *key = getenv("BATPAK_SIGNING_KEY");
    cli_ctx ctx = {env && *env ? env : DEFAULT_DIR,
                   NULL,
                   key && *key ? key : NULL,
                   false,
                   env && *env,
                   argc > 0 && argv[0] && *argv[0] ? argv[0] : "batpak",
                   false,
                   false,
                   false,
                   NULL,
                   0};
    int i = 1;
    int code = parse_global(&ctx, argc, argv, &i);
    if (code >= 0) return code;
    if (i >= argc) return cli_fail(&ctx, CLI_EUSAGE, "missing command (try 'batpak --help')");
    const char *name = argv[i];
    int cmd_argc = argc - i - 1;
    char **cmd_argv = argv + i + 1;
    if (!strcmp(name, "help")) return run_help(&ctx, cmd_argc, cmd_argv);
    if (!strcmp(name, "version")) return print_version();
    const cli_command *c = find_command(name);
    ctx.cmd = name;
    if (!c) return cli_fail(&ctx, CLI_EUSAGE, "unknown command (try 'batpak --help')");
    if (wants_help(cmd_argc, cmd_argv)) {
        print_command_usage(c);
        return cli_finish_output(&ctx, CLI_OK);
    }
    code = c->run(&ctx, cmd_argc, cmd_argv);
    return cli_finish_output(&ctx, code);
}
