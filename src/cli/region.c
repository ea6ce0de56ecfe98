/* Region filters shared by query and tail, time parsing, and paged listings. */
#include "cli/cli.h"

#include <string.h>

/* Events fetched per iterator; a listing resumes from the last position page by page. */
#define CLI_PAGE_SIZE 1024

void cli_region_init(cli_region *q) {
    bp_region init = BP_REGION_INIT;
    memset(q, 0, sizeof *q);
    q->r = init;
    q->r.kinds = q->kinds;
    q->limit = UINT64_MAX;
}

/* ------------------------------------------------------------------- time */

/* Exactly n decimal digits at *p. */
static bool take_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9') return false;
        v = v * 10 + (ch - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take_char(const char **p, const char *allowed) {
    if (**p && strchr(allowed, **p)) {
        (*p)++;
        return true;
    }
    return false;
}

static bool is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (y >= 1). */
static int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int64_t era = y / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "HH:MM:SS[.fraction]" into milliseconds of the day. */
static bool take_time_of_day(const char **p, int64_t *ms) {
    int h, mi, s;
    if (!take_digits(p, 2, &h) || !take_char(p, ":") || !take_digits(p, 2, &mi) ||
        !take_char(p, ":") || !take_digits(p, 2, &s))
        return false;
    if (h > 23 || mi > 59 || s > 60) return false;
    if (s == 60) s = 59; /* a leap second counts as the second before it */
    int frac_ms = 0;
    if (take_char(p, ".")) {
        int scale = 100, n = 0;
        for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
            frac_ms += scale * (**p - '0');
            scale /= 10;
        }
        if (n == 0) return false;
    }
    *ms = ((int64_t)h * 3600 + mi * 60 + s) * 1000 + frac_ms;
    return true;
}

/* "Z" or "+HH:MM" / "-HH:MM" into milliseconds east of UTC. */
static bool take_offset(const char **p, int64_t *ms) {
    if (take_char(p, "Zz")) {
        *ms = 0;
        return true;
    }
    char sign = **p;
    int h, m;
    if (!take_char(p, "+-") || !take_digits(p, 2, &h) || !take_char(p, ":") ||
        !take_digits(p, 2, &m) || h > 23 || m > 59)
        return false;
    *ms = ((int64_t)h * 60 + m) * 60000 * (sign == '-' ? -1 : 1);
    return true;
}

bool cli_parse_duration_ms(const char *text, uint64_t *ms) {
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    size_t digits = strspn(text, "0123456789");
    if (!digits || digits > 15) return false;
    char num[16];
    memcpy(num, text, digits);
    num[digits] = '\0';
    uint64_t v;
    if (!cli_parse_u64(num, UINT64_MAX, &v)) return false;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcmp(text + digits, units[i].unit)) {
            if (v > UINT64_MAX / units[i].ms) return false;
            *ms = v * units[i].ms;
            return true;
        }
    return false;
}

bool cli_parse_time_ms(const char *text, uint64_t *ms) {
    if (text[0] && strspn(text, "0123456789") == strlen(text)) /* Unix ms: decimal only */
        return cli_parse_u64(text, UINT64_MAX, ms);
    const char *p = text;
    int y, mo, d;
    if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) ||
        !take_char(&p, "-") || !take_digits(&p, 2, &d))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
    int64_t day_ms = 0, offset_ms = 0;
    if (*p) { /* a full date-time; a bare date means midnight UTC */
        if (!take_char(&p, "Tt ") || !take_time_of_day(&p, &day_ms) || !take_offset(&p, &offset_ms))
            return false;
    }
    if (*p) return false;
    int64_t v = days_from_civil(y, mo, d) * 86400000 + day_ms - offset_ms;
    if (v < 0) return false;
    *ms = (uint64_t)v;
    return true;
}

/* ----------------------------------------------------------------- options */

static int region_time(const cli_ctx *c, const char *opt, const char *text, uint64_t *ms) {
    if (cli_parse_time_ms(text, ms)) return 1;
    cli_fail(c, CLI_EUSAGE,
             "--%s: '%s' is neither RFC 3339 (2026-01-02T03:04:05Z) nor Unix milliseconds", opt,
             text);
    return -1;
}

static int region_number(const cli_ctx *c, const char *opt, const char *text, uint64_t max,
                         uint64_t *out) {
    char what[32];
    snprintf(what, sizeof what, "--%s", opt);
    return cli_parse_number(c, what, text, max, out) == CLI_OK ? 1 : -1;
}

static int region_kind(const cli_ctx *c, cli_region *q, const char *text) {
    if (q->r.n_kinds == CLI_MAX_KINDS) {
        cli_fail(c, CLI_EUSAGE, "--kind: at most %d kinds", CLI_MAX_KINDS);
        return -1;
    }
    if (cli_parse_kind(c, text, &q->kinds[q->r.n_kinds]) != CLI_OK) return -1;
    q->r.n_kinds++;
    return 1;
}

/* The listing starts at the later of --from-seq N and --after POS (POS + 1), in any order. */
static void region_apply_start(cli_region *q) {
    q->r.from_seq = q->from_seq;
    if (q->has_after && q->after + 1 > q->r.from_seq) q->r.from_seq = q->after + 1;
}

int cli_region_option(const cli_ctx *c, cli_region *q, const cli_arg *arg) {
    const char *n = arg->name, *v = arg->value;
    uint64_t num;
    if (!n) return 0;
    if (!strcmp(n, "entity"))
        q->r.entity = v;
    else if (!strcmp(n, "entity-prefix"))
        q->r.entity_prefix = v;
    else if (!strcmp(n, "scope"))
        q->r.scope = v;
    else if (!strcmp(n, "kind"))
        return region_kind(c, q, v);
    else if (!strcmp(n, "category")) {
        if (region_number(c, n, v, 15, &num) < 0) return -1;
        q->r.category = (int)num;
    } else if (!strcmp(n, "from-seq")) {
        if (region_number(c, n, v, UINT64_MAX, &q->from_seq) < 0) return -1;
        region_apply_start(q);
    } else if (!strcmp(n, "to-seq"))
        return region_number(c, n, v, UINT64_MAX, &q->r.to_seq);
    else if (!strcmp(n, "since"))
        return region_time(c, n, v, &q->r.since_ms);
    else if (!strcmp(n, "until"))
        return region_time(c, n, v, &q->r.until_ms);
    else if (!strcmp(n, "limit")) {
        q->has_limit = true;
        return region_number(c, n, v, UINT64_MAX, &q->limit);
    } else if (!strcmp(n, "after")) {
        if (region_number(c, n, v, UINT64_MAX - 1, &q->after) < 0) return -1;
        q->has_after = true;
        region_apply_start(q);
    } else
        return 0;
    return 1;
}

/* ---------------------------------------------------------------- listings */

int cli_query_page(const cli_ctx *c, bp_store *s, const bp_region *r, unsigned flags, uint64_t max,
                   cli_event_fn fn, void *user, uint64_t *pos, uint64_t *count) {
    *count = 0;
    if (*pos == UINT64_MAX || max == 0) return CLI_OK;
    bp_region page = *r;
    if (*pos + 1 > page.from_seq) page.from_seq = *pos + 1;
    if (page.to_seq && page.from_seq > page.to_seq) return CLI_OK;
    bp_iter *it;
    bp_status rc = bp_query(s, &it, &page, flags);
    if (rc) return cli_fail_status(c, rc);
    int code = CLI_OK;
    while (code == CLI_OK && *count < max) {
        const bp_event *ev;
        rc = bp_iter_next(it, &ev);
        if (rc == BP_DONE) break;
        if (rc != BP_OK) {
            code = cli_fail_status(c, rc);
            break;
        }
        *pos = ev->global_seq;
        (*count)++;
        code = fn(user, ev);
    }
    bp_iter_free(it);
    return code;
}

int cli_query_all(const cli_ctx *c, bp_store *s, const bp_region *r, unsigned flags, uint64_t limit,
                  cli_event_fn fn, void *user) {
    uint64_t pos = 0, count = 0;
    int code = CLI_OK;
    do {
        uint64_t want = limit < CLI_PAGE_SIZE ? limit : CLI_PAGE_SIZE;
        code = cli_query_page(c, s, r, flags, want, fn, user, &pos, &count);
        limit -= count;
    } while (code == CLI_OK && count == CLI_PAGE_SIZE && limit > 0);
    return code;
}

int cli_print_event(void *user, const bp_event *ev) {
    cli_print_json(cli_event_json(user, ev));
    return CLI_OK;
}

static int keep_seq(void *user, const bp_event *ev) {
    *(uint64_t *)user = ev->global_seq;
    return CLI_OK;
}

int cli_region_last_seq(const cli_ctx *c, bp_store *s, const bp_region *r, uint64_t *seq) {
    *seq = 0;
    return cli_query_all(c, s, r, BP_READ_INDEX_ONLY, UINT64_MAX, keep_seq, seq);
}
