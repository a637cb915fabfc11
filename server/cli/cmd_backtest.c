/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `islewatch backtest FILE --from T --to T` (SPEC §6): the rules of FILE over
 * stored history, read from a database directory (--db PATH, or FILE's
 * storage.path when neither --db nor --url is given), opened read-only
 * (beside a running daemon is fine), or through a running daemon's HTTP API
 * (--url URL: /api/v1/series, then /api/v1/query for the points, fetched a
 * time window at a time, and for the history that primes the rules' windows).
 * Both feed the same merge, so they print the same result for the same data.
 * Every series a rule could read is replayed, all of them merged by
 * time (a k-way merge over per-series chunks, so memory stays bounded by the
 * number of series, not the length of the range), through one rule engine
 * (server/replay.c) whose wall clock is the sample time. Samples of one device
 * with the same time are one message, as the daemon sees them.
 *
 * What the daemon would have seen and a backtest cannot know: the receipt
 * time (taken = the sample time, so nothing is late), rule state from before
 * --from (the engine starts empty at --from; windows are primed from the
 * stored history before it; absence rules know the devices stored before
 * --from or declared by the inventory from --from on, as a daemon whose rules
 * took effect then, and the others once they report in the range), and the
 * derived series (water class, aqi), which the daemon writes but never feeds
 * to its rules: they are not replayed.
 *
 * Exit status: 0 done (whatever fired), 2 usage error or invalid FILE,
 * 3 the store cannot be read, or out of memory.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "islewatch/cli.h"
#include "islewatch/clock.h"
#include "islewatch/config.h"
#include "islewatch/http_client.h"
#include "islewatch/replay.h"
#include "islewatch/store.h"
#include "cli_int.h"

#define MERGE_BUDGET (1u << 20)     /* points buffered over all series */
#define MAX_GROUP 256               /* samples in one message */

static void backtest_usage(FILE *f)
{
    fprintf(f,
            "Usage: islewatch backtest FILE --from T [--to T] [--db PATH | --url URL] [--rule NAME]\n"
            "                          [--format table|csv|json]\n"
            "\n"
            "Run the rules of the config FILE over stored history and print the alerts\n"
            "they would have raised: per rule (fired, resolved, total firing time) and as a\n"
            "timeline. The history is read through a running daemon (--url) or from a\n"
            "database opened read-only (--db, or FILE's storage.path), which works beside a\n"
            "running daemon. Rule state starts empty at --from, as for a daemon started\n"
            "then; windows are filled from the history before it; absence rules know the\n"
            "devices stored before --from and those of the inventory from --from on, and\n"
            "the others once they report in the range. The simulated wall clock\n"
            "is the sample time (absence, auto_resolve and close_after run on it), and\n"
            "nothing is late. Derived series (water class, aqi) are not replayed: the\n"
            "daemon writes them but never feeds them to its rules.\n"
            "\n"
            "  --from T        start of the range (RFC 3339, epoch ms, or relative: -7d)\n"
            "  --to T          end of the range, inclusive (default now)\n"
            "  --db PATH       read this database directory directly\n"
            "  --url URL       read through the daemon's HTTP API (e.g. " IW_HTTP_DEFAULT_URL ")\n"
            "                  With neither, FILE's storage.path is read directly.\n"
            "  --rule NAME     only this rule (a glob: 'camera-*')\n"
            "  --format F      table (default), csv (the timeline, one alert per row) or\n"
            "                  json (the alerts as SPEC section 5 objects)\n"
            "\n"
            "A progress bar is shown on stderr when it is a terminal.\n"
            "Exit status: 0 done, 2 usage error or invalid FILE, 3 the database or the daemon\n"
            "cannot be read.\n"
            "\n"
            "Example:\n"
            "  $ islewatch backtest config/islewatch.yaml --from 2026-11-01T00:00:00Z \\\n"
            "        --to 2026-11-30T00:00:00Z --rule nh3n-high --db /var/lib/islewatch\n"
            "  $ islewatch backtest candidate.yaml --from -7d --url " IW_HTTP_DEFAULT_URL "\n");
}

/* ==========================================================================
 * The k-way merge
 * ======================================================================== */

struct cursor {
    uint32_t id;
    char *name;
    struct iw_rsample s;            /* source/site/device/metric point into buf */
    char *buf;
    struct iw_point *pts;
    size_t n, pos, cap;
    int64_t next_from;              /* where the next chunk starts */
    int64_t first, last;            /* of the whole series */
    uint64_t count;
    int64_t win;                    /* --url: time window of one request */
    bool done, oom;
};

struct merge {
    struct iw_store *st;            /* NULL: read through url */
    const char *url;
    const struct iw_config *cfg;
    struct iw_replay *r;
    int64_t from, to;
    struct cursor *cur;
    size_t n_cur, cap_cur;
    struct cursor **heap;
    size_t heap_n;
    double estimate;                /* points expected in range */
    uint64_t done_points;
    int rc;
};

static int collect_cb(void *ctx, const struct iw_point *p)
{
    struct cursor *c = ctx;
    c->pts[c->n++] = *p;
    return c->n == c->cap;          /* stop when the chunk is full */
}

/* ---- --url: points through GET /api/v1/query ---------------------------------- */

/*
 * Points of the series `name` with from <= ts <= to from the daemon at url,
 * in time order, to cb (non-zero stops). IW_OK, or IW_E_IO after cli_fetch
 * printed what failed.
 */
static int fetch_points(const char *url, const char *name, bool device, int64_t from, int64_t to,
                        iw_rules_point_cb cb, void *cbctx)
{
    struct cli_source src = { .url = url };
    char path[2048], enc[1600];
    const cJSON *s, *p;
    cJSON *doc;
    int exit_code;

    if (!cli_urlenc(enc, sizeof(enc), name))
        return IW_E_INVAL;
    snprintf(path, sizeof(path), "/api/v1/query?series=%s&from=%" PRId64 "&to=%" PRId64 "%s",
             enc, from, to, device ? "&devices=1" : "");
    if ((doc = cli_fetch(&src, path, NULL, NULL, &exit_code)) == NULL)
        return IW_E_IO;
    cJSON_ArrayForEach(s, doc) {
        const char *sname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "series"));
        if (sname == NULL || strcmp(sname, name) != 0)     /* a '*' in a name is a glob */
            continue;
        const cJSON *fcur = NULL;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(s, "points")) {
            const cJSON *t = cJSON_GetArrayItem(p, 0), *v = cJSON_GetArrayItem(p, 1);
            if (!cJSON_IsNumber(t) || !cJSON_IsNumber(v))
                continue;
            const char *f = cli_point_flag(s, (int64_t)t->valuedouble, &fcur);
            if (cb(cbctx, (int64_t)t->valuedouble, v->valuedouble, f ? f[0] : 0) != 0)
                break;
        }
    }
    cJSON_Delete(doc);
    return IW_OK;
}

static int append_cb(void *ctx, int64_t ts, double value, char flag)
{
    struct cursor *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct iw_point *p = realloc(c->pts, cap * sizeof(*p));
        if (p == NULL) {
            c->oom = true;
            return 1;
        }
        c->pts = p;
        c->cap = cap;
    }
    c->pts[c->n++] = (struct iw_point){ .ts = ts, .value = value, .flag = flag };
    return 0;
}

/* The next window of the cursor's series that holds points; false when none is left.
 * Windows cover only [first, last] of the series: the range around it has no
 * points, and windows sized for the series' density would cross it in
 * thousands of empty requests. */
static bool refill_url(struct merge *m, struct cursor *c)
{
    int64_t to = c->last < m->to ? c->last : m->to;

    while (c->n == 0 && !c->done && m->rc == IW_OK) {
        int64_t end = to - c->next_from < c->win ? to : c->next_from + c->win - 1;
        if (fetch_points(m->url, c->name, c->s.alive, c->next_from, end, append_cb, c) != IW_OK)
            m->rc = IW_E_IO;
        else if (c->oom)
            m->rc = IW_E_NOMEM;
        if (end == to)
            c->done = true;
        else
            c->next_from = end + 1;
    }
    return c->n > 0;
}

/* History for the rules' windows (iw_replay_opts.read_history). */
struct url_history {
    const char *url;
    int rc;                         /* the first failure: the backtest is void */
};

static int read_history(void *ctx, const char *series, int64_t from, int64_t to,
                        iw_rules_point_cb cb, void *cbctx)
{
    struct url_history *h = ctx;
    int rc = fetch_points(h->url, series, false, from, to, cb, cbctx);
    if (rc != IW_OK && h->rc == IW_OK)
        h->rc = rc;
    return rc;
}

/* Load the cursor's next chunk; false when the series has no more points in range. */
static bool refill(struct merge *m, struct cursor *c)
{
    c->n = c->pos = 0;
    if (c->done || c->next_from > m->to)
        return false;
    if (m->st == NULL)
        return refill_url(m, c);
    if (iw_store_read_points(m->st, c->id, c->next_from, m->to + 1, collect_cb, c) != IW_OK)
        m->rc = IW_E_STORE;
    if (c->n == 0) {
        c->done = true;
        return false;
    }
    c->next_from = c->pts[c->n - 1].ts + 1;
    return true;
}

/* Heap order: time, then name, so one device's series at one time are adjacent. */
static bool before(const struct cursor *a, const struct cursor *b)
{
    int64_t ta = a->pts[a->pos].ts, tb = b->pts[b->pos].ts;
    return ta != tb ? ta < tb : strcmp(a->name, b->name) < 0;
}

static void sift_down(struct merge *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < m->heap_n && before(m->heap[l], m->heap[best]))
            best = l;
        if (r < m->heap_n && before(m->heap[r], m->heap[best]))
            best = r;
        if (best == i)
            return;
        struct cursor *t = m->heap[i];
        m->heap[i] = m->heap[best];
        m->heap[best] = t;
        i = best;
    }
}

/* A series to replay when a rule wants it and it has points in range; non-zero stops. */
static int add_series(struct merge *m, const char *name, uint32_t id, int64_t first, int64_t last,
                      uint64_t count)
{
    struct cursor *c;
    size_t len = strlen(name) + 1;

    if (count == 0 || last < m->from || first > m->to || !iw_replay_wants(m->r, name))
        return 0;
    if (m->n_cur == m->cap_cur) {
        size_t cap = m->cap_cur ? m->cap_cur * 2 : 64;
        struct cursor *p = realloc(m->cur, cap * sizeof(*p));
        if (p == NULL) {
            m->rc = IW_E_NOMEM;
            return 1;
        }
        m->cur = p;
        m->cap_cur = cap;
    }
    c = &m->cur[m->n_cur];
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->first = first;
    c->last = last;
    c->count = count;
    c->name = strdup(name);
    c->buf = malloc(len);
    if (c->name == NULL || c->buf == NULL) {
        free(c->name);
        free(c->buf);
        m->rc = IW_E_NOMEM;
        return 1;
    }
    /* A series, or a device's own entry (3 levels: its messages without samples). */
    if (iw_replay_split(name, c->buf, len, &c->s) != IW_OK
        && iw_replay_split_device(name, c->buf, len, &c->s) != IW_OK) {
        free(c->name);
        free(c->buf);
        return 0;
    }
    c->s.is_event = iw_replay_is_event_source(m->cfg, c->s.source);
    c->next_from = first > m->from ? first : m->from;
    m->n_cur++;
    /* Expected points in range, assuming an even spread over the series' life. */
    if (last > first) {
        int64_t lo = first > m->from ? first : m->from;
        int64_t hi = last < m->to ? last : m->to;
        m->estimate += (double)count * (double)(hi - lo + 1) / (double)(last - first + 1);
    } else {
        m->estimate += (double)count;
    }
    return 0;
}

/*
 * Every stored series and every device's own entry (its messages without
 * samples), with its raw range: from the store, or GET /api/v1/series and
 * /api/v1/series?devices=1. cb returns non-zero to stop.
 */
typedef int (*listed_cb)(void *ctx, const char *name, uint32_t id, int64_t first, int64_t last,
                         uint64_t count);

struct listed {
    listed_cb cb;
    void *ctx;
};

static int listed_store_cb(void *ctx, const struct iw_series_info *si)
{
    const struct listed *l = ctx;
    return l->cb(l->ctx, si->series->name, si->series->id, si->first, si->last, si->count);
}

static int each_listed(struct iw_store *st, const char *url, listed_cb cb, void *ctx)
{
    static const char *const paths[] = { "/api/v1/series", "/api/v1/series?devices=1" };
    struct listed l = { cb, ctx };
    struct cli_source src = { .url = url };
    int exit_code, rc;

    if (st != NULL)
        return (rc = iw_store_series_list(st, NULL, listed_store_cb, &l)) != IW_OK
                   ? rc : iw_store_device_list(st, NULL, listed_store_cb, &l);
    for (size_t i = 0; i < IW_ARRAY_LEN(paths); i++) {
        const cJSON *it;
        cJSON *doc = cli_fetch(&src, paths[i], NULL, NULL, &exit_code);
        if (doc == NULL)
            return IW_E_IO;
        cJSON_ArrayForEach(it, doc) {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "series"));
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "first");
            const cJSON *la = cJSON_GetObjectItemCaseSensitive(it, "last");
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "count");
            if (name == NULL || !cJSON_IsNumber(f) || !cJSON_IsNumber(la) || !cJSON_IsNumber(n))
                continue;
            if (cb(ctx, name, 0, (int64_t)f->valuedouble, (int64_t)la->valuedouble,
                   (uint64_t)n->valuedouble) != 0)
                break;
        }
        cJSON_Delete(doc);
    }
    return IW_OK;
}

static int series_cb(void *ctx, const char *name, uint32_t id, int64_t first, int64_t last,
                     uint64_t count)
{
    return add_series(ctx, name, id, first, last, count);
}

/* ---- the devices known before --from ------------------------------------------ */

/*
 * The series with points before --from. The daemon knows the devices of its
 * store when its rules take effect; so does the replay's engine at --from, so
 * a device that went silent before the range raises its absence alert at
 * --from + after, as a daemon started then would, instead of never.
 */
struct known {
    char **names;
    size_t n, cap;
    int64_t from;
    bool oom;
};

static void known_add(struct known *k, const char *name, int64_t first)
{
    if (k->oom || first >= k->from)
        return;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        char **v = realloc(k->names, cap * sizeof(*v));
        if (v == NULL) {
            k->oom = true;
            return;
        }
        k->names = v;
        k->cap = cap;
    }
    if ((k->names[k->n] = strdup(name)) == NULL)
        k->oom = true;
    else
        k->n++;
}

static int known_cb(void *ctx, const char *name, uint32_t id, int64_t first, int64_t last,
                    uint64_t count)
{
    (void)id;
    (void)last;
    (void)count;
    known_add(ctx, name, first);
    return 0;
}

/* Fill k (each_listed); IW_OK, IW_E_IO (printed), IW_E_NOMEM. */
static int known_list(struct known *k, struct iw_store *st, const char *url)
{
    int rc = each_listed(st, url, known_cb, k);
    return rc == IW_OK && k->oom ? IW_E_NOMEM : rc;
}

/* iw_replay_opts.each_series over the known series and device entries (metric ""), as the
 * daemon's shards list them (pipeline.c); other names skipped. */
static int known_each(void *ctx, int (*cb)(void *cbctx, const char *source, const char *site,
                                           const char *device, const char *metric),
                      void *cbctx)
{
    const struct known *k = ctx;
    char buf[1024];
    struct iw_rsample s;

    for (size_t i = 0; i < k->n; i++)
        if ((iw_replay_split(k->names[i], buf, sizeof(buf), &s) == IW_OK
             || iw_replay_split_device(k->names[i], buf, sizeof(buf), &s) == IW_OK)
            && cb(cbctx, s.source, s.site, s.device, s.metric) != 0)
            break;
    return IW_OK;
}

static void known_fini(struct known *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->names[i]);
    free(k->names);
}

/* ---- progress on a terminal --------------------------------------------------- */

struct progress {
    bool on;
    int64_t next_ns;
};

static void progress_show(struct progress *p, const struct merge *m, bool final)
{
    double frac;
    int filled;
    int64_t now;

    if (!p->on)
        return;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    now = iw_mono_ns();
    if (now < p->next_ns)
        return;
    p->next_ns = now + 100 * 1000000LL;
    frac = m->estimate > 0 ? (double)m->done_points / m->estimate : 0;
    if (frac > 1)
        frac = 1;
    filled = (int)(frac * 30);
    fprintf(stderr, "\rbacktest [%.*s%.*s] %3d%%  %" PRIu64 " / ~%.0f points", filled,
            "##############################", 30 - filled, "..............................",
            (int)(frac * 100), m->done_points, m->estimate);
    fflush(stderr);
}

/* Replay every point of every cursor, one message at a time. */
static int run_merge(struct merge *m, bool show_progress)
{
    struct iw_rsample group[MAX_GROUP];
    struct progress prog = { show_progress, 0 };
    size_t chunk;

    chunk = m->n_cur ? MERGE_BUDGET / m->n_cur : 0;
    chunk = chunk < 16 ? 16 : chunk > 4096 ? 4096 : chunk;
    m->heap = calloc(m->n_cur ? m->n_cur : 1, sizeof(*m->heap));
    if (m->heap == NULL)
        return IW_E_NOMEM;
    for (size_t i = 0; i < m->n_cur; i++) {
        struct cursor *c = &m->cur[i];
        c->cap = chunk;
        c->pts = malloc(chunk * sizeof(*c->pts));
        if (c->pts == NULL)
            return IW_E_NOMEM;
        /* --url: a window expected to hold about one chunk (at least a second). */
        double span = (double)(c->last - c->first) + 1;
        double win = span * (double)chunk / (double)c->count;
        c->win = win >= (double)INT64_MAX / 2 ? INT64_MAX / 2 : win < 1000 ? 1000 : (int64_t)win;
        if (refill(m, c))
            m->heap[m->heap_n++] = c;
    }
    for (size_t i = m->heap_n / 2 + 1; i-- > 0;)
        sift_down(m, i);
    while (m->heap_n > 0 && m->rc == IW_OK) {
        const struct cursor *first = m->heap[0];
        /* A device's own entry (alive: a message without samples) is a message alone. */
        bool alone = first->s.alive;
        size_t n = 0, dev_len = alone ? 0 : (size_t)(first->s.metric - first->s.source);
        int64_t ts = first->pts[first->pos].ts;
        char dev[1024];

        /* The device prefix "source/site/device/" of the message. */
        snprintf(dev, sizeof(dev), "%.*s", (int)dev_len, first->name);
        while (m->heap_n > 0 && n < MAX_GROUP) {
            struct cursor *c = m->heap[0];
            const struct iw_point *p = &c->pts[c->pos];
            if (p->ts != ts || (alone ? n > 0 : c->s.alive || strncmp(c->name, dev, dev_len) != 0))
                break;
            group[n] = c->s;
            group[n].ts = group[n].recv_ms = p->ts;
            group[n].value = p->value;
            group[n].flag = p->flag;
            n++;
            if (++c->pos == c->n && !refill(m, c))
                m->heap[0] = m->heap[--m->heap_n];
            if (m->heap_n > 0)
                sift_down(m, 0);
        }
        iw_replay_feed(m->r, group, n);
        m->done_points += n;
        progress_show(&prog, m, false);
    }
    progress_show(&prog, m, true);
    return m->rc;
}

static void merge_fini(struct merge *m)
{
    for (size_t i = 0; i < m->n_cur; i++) {
        free(m->cur[i].name);
        free(m->cur[i].buf);
        free(m->cur[i].pts);
    }
    free(m->cur);
    free(m->heap);
}

/* ==========================================================================
 * Output
 * ======================================================================== */

struct aref {
    const struct iw_alert *a;
    size_t i;                       /* emission order */
};

static int cmp_time(const void *pa, const void *pb)
{
    const struct aref *a = pa, *b = pb;
    if (a->a->ts != b->a->ts)
        return a->a->ts < b->a->ts ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

static int cmp_episode(const void *pa, const void *pb)
{
    const struct aref *a = pa, *b = pb;
    int c = strcmp(a->a->id, b->a->id);
    return c ? c : cmp_time(pa, pb);
}

struct rule_sum {
    uint64_t fired, resolved, escalated, open;      /* escalated: severity changes, up or down */
    int64_t firing_ms;
};

/* Per rule: FIRE and RESOLVE messages, and the time between them (open episodes up to --to). */
static void summarize(struct iw_replay *r, struct aref *refs, size_t n, int64_t to, struct rule_sum *sum)
{
    size_t nr = iw_replay_rule_count(r);

    iw_sort(refs, n, sizeof(*refs), cmp_episode);
    for (size_t i = 0; i < n;) {
        size_t j = i, k;
        int64_t fired_at = INT64_MIN;

        for (k = 0; k < nr && strcmp(iw_replay_rule(r, k)->name, refs[i].a->rule) != 0; k++)
            ;
        while (j < n && strcmp(refs[j].a->id, refs[i].a->id) == 0) {
            const struct iw_alert *a = refs[j++].a;
            if (k == nr)
                continue;
            if (a->reason == IW_ALERT_FIRE) {
                sum[k].fired++;
                fired_at = a->ts;
            } else if (a->reason == IW_ALERT_ESCALATE) {
                sum[k].escalated++;
            } else if (a->reason == IW_ALERT_RESOLVE) {
                sum[k].resolved++;
                if (fired_at != INT64_MIN)
                    sum[k].firing_ms += a->ts - fired_at;
                fired_at = INT64_MIN;
            }
        }
        if (k < nr && fired_at != INT64_MIN) {
            sum[k].open++;
            sum[k].firing_ms += to > fired_at ? to - fired_at : 0;
        }
        i = j;
    }
    iw_sort(refs, n, sizeof(*refs), cmp_time);
}

static const char *fmt_dur(int64_t ms, char *buf, size_t len)
{
    int64_t s = ms / 1000, d = s / 86400, h = s % 86400 / 3600, mi = s % 3600 / 60, se = s % 60;
    if (d > 0)
        snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h%02" PRId64 "m", d, h, mi);
    else if (h > 0)
        snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m%02" PRId64 "s", h, mi, se);
    else if (mi > 0)
        snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", mi, se);
    else
        snprintf(buf, len, "%" PRId64 "s", se);
    return buf;
}

static void print_instance(const struct iw_alert *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s/%s%s%s", a->source, a->site, a->device, a->metric ? "/" : "",
             a->metric ? a->metric : "");
}

static void print_table(const char *file, struct iw_replay *r, const struct merge *m,
                        const struct aref *refs, size_t n, const struct rule_sum *sum)
{
    char t1[40], t2[40], d[32], inst[512], num[40];
    size_t nr = iw_replay_rule_count(r);

    printf("Backtest of %s: %zu rule%s, %s .. %s\n", file, nr, nr == 1 ? "" : "s",
           cli_time(m->from, t1, sizeof(t1)), cli_time(m->to, t2, sizeof(t2)));
    printf("Replayed %zu series, %" PRIu64 " points; %zu alert message%s.\n\n", m->n_cur,
           m->done_points, n, n == 1 ? "" : "s");
    printf("%-28s %7s %9s %10s %13s %13s\n", "RULE", "FIRED", "RESOLVED", "SEV CHANGE", "FIRING TIME",
           "OPEN AT END");
    for (size_t k = 0; k < nr; k++)
        printf("%-28s %7" PRIu64 " %9" PRIu64 " %10" PRIu64 " %13s %13" PRIu64 "\n",
               iw_replay_rule(r, k)->name, sum[k].fired, sum[k].resolved, sum[k].escalated,
               fmt_dur(sum[k].firing_ms, d, sizeof(d)), sum[k].open);
    if (n == 0)
        return;
    printf("\nTIMELINE\n");
    for (size_t i = 0; i < n; i++) {
        const struct iw_alert *a = refs[i].a;
        print_instance(a, inst, sizeof(inst));
        /* As `islewatch alerts` marks them: the daemon would have recorded these so. */
        printf("%s  %-8s %-8s %-20s %-36s %10s  %s%s%s\n", cli_time(a->ts, t1, sizeof(t1)),
               iw_alert_status_name(a->status), iw_severity_name(a->severity), a->rule, inst,
               a->has_value ? cli_num(a->value, num, sizeof(num)) : "-", a->late ? "[late] " : "",
               a->silenced ? "[silenced] " : "", a->message ? a->message : "");
    }
}

static void print_csv(const struct aref *refs, size_t n)
{
    char t[40], num[40];

    printf("ts,status,severity,rule,source,site,device,metric,value,message,late,silenced\n");
    for (size_t i = 0; i < n; i++) {
        const struct iw_alert *a = refs[i].a;
        printf("%s,%s,%s,", cli_time(a->ts, t, sizeof(t)), iw_alert_status_name(a->status),
               iw_severity_name(a->severity));
        cli_csv_field(a->rule);
        putchar(',');
        cli_csv_field(a->source);
        putchar(',');
        cli_csv_field(a->site);
        putchar(',');
        cli_csv_field(a->device);
        putchar(',');
        cli_csv_field(a->metric ? a->metric : "");
        printf(",%s,", a->has_value ? cli_num(a->value, num, sizeof(num)) : "");
        cli_csv_field(a->message ? a->message : "");
        printf(",%s,%s\n", a->late ? "true" : "false", a->silenced ? "true" : "false");
    }
}

/* SPEC §5 objects; seq numbers the backtest's messages in time order. */
static int print_json(const struct aref *refs, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        struct iw_alert a = *refs[i].a;
        char *js;
        size_t len;
        a.seq = i + 1;
        if (iw_alert_to_json(&a, &js, &len) != IW_OK) {
            fprintf(stderr, "islewatch backtest: cannot encode the alert of rule %s as JSON\n", a.rule);
            return 3;
        }
        if (i > 0)
            putchar(',');
        fwrite(js, 1, len, stdout);
        free(js);
    }
    printf("]\n");
    return 0;
}

/* ==========================================================================
 * The command
 * ======================================================================== */

static const struct option bt_opts[] = {
    { "from", required_argument, NULL, 'F' },
    { "to", required_argument, NULL, 'T' },
    { "db", required_argument, NULL, 'd' },
    { "url", required_argument, NULL, 'u' },
    { "rule", required_argument, NULL, 'R' },
    { "format", required_argument, NULL, 'f' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

struct bt_args {
    const char *file, *db, *url, *rule;
    int64_t from, to;
    bool has_from;
    int format;
};

static int parse_args(int argc, char **argv, struct bt_args *a)
{
    int64_t now = iw_now_ms();
    int c;

    memset(a, 0, sizeof(*a));
    a->to = now;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", bt_opts, NULL)) != -1) {
        switch (c) {
        case 'F': case 'T': {
            int64_t *t = c == 'F' ? &a->from : &a->to;
            if (iw_time_arg_parse(optarg, now, t) != IW_OK) {
                fprintf(stderr, "islewatch backtest: --%s %s: use RFC 3339 (2026-11-01T00:00:00Z), "
                        "epoch ms, or relative (-7d, now)\n", c == 'F' ? "from" : "to", optarg);
                return 2;
            }
            a->has_from = a->has_from || c == 'F';
            break;
        }
        case 'd': a->db = optarg; break;
        case 'u': a->url = optarg; break;
        case 'R': a->rule = optarg; break;
        case 'f':
            if ((a->format = cli_format_parse(optarg)) < 0) {
                fprintf(stderr, "islewatch backtest: --format %s: use table, csv or json\n", optarg);
                return 2;
            }
            break;
        case 'h':
            backtest_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "islewatch backtest: try 'islewatch backtest --help'\n");
            return 2;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "islewatch backtest: expected one FILE (try 'islewatch backtest --help')\n");
        return 2;
    }
    a->file = argv[optind];
    if (!a->has_from) {
        fprintf(stderr, "islewatch backtest: --from is required (e.g. --from -7d)\n");
        return 2;
    }
    if (a->from > a->to) {
        char t1[40], t2[40];
        fprintf(stderr, "islewatch backtest: --from %s is after --to %s: swap them (-2h is "
                "before -1h)\n", cli_time(a->from, t1, sizeof(t1)),
                cli_time(a->to, t2, sizeof(t2)));
        return 2;
    }
    if (a->db != NULL && a->url != NULL) {
        fprintf(stderr, "islewatch backtest: pass --db PATH (read the database directly) or "
                "--url URL (ask the daemon), not both\n");
        return 2;
    }
    return -1;
}

/* Replay and print; st NULL: read through a->url. */
static int replay_store(const struct bt_args *a, const struct iw_config *cfg, struct iw_store *st)
{
    const char *globs[1] = { a->rule };
    struct url_history hist = { .url = a->url };
    struct known known = { .from = a->from };
    struct iw_replay_opts o = { .cfg = cfg, .store = st, .start_ms = a->from,
                                .rules = a->rule ? globs : NULL, .n_rules = a->rule ? 1 : 0,
                                .drop_derived = true,
                                .read_history = st ? NULL : read_history, .history_ctx = &hist,
                                .each_series = known_each, .series_ctx = &known };
    struct merge m = { .st = st, .url = a->url, .cfg = cfg, .from = a->from, .to = a->to };
    struct iw_replay *r = NULL;
    struct aref *refs = NULL;
    struct rule_sum *sum = NULL;
    size_t n = 0;
    int rc;

    if ((rc = known_list(&known, st, a->url)) != IW_OK) {
        if (rc != IW_E_IO)          /* cli_fetch printed what failed */
            fprintf(stderr, "islewatch backtest: listing the series of %s failed: %s\n",
                    st == NULL ? a->url : a->db ? a->db : cfg->storage.path, iw_strerror(rc));
        known_fini(&known);
        return 3;
    }
    if (iw_replay_new(&o, &r) != IW_OK) {
        fprintf(stderr, "islewatch backtest: out of memory\n");
        known_fini(&known);
        return 3;
    }
    if (iw_replay_rule_count(r) == 0) {
        fprintf(stderr, "islewatch backtest: %s has no rule%s%s%s\n", a->file,
                a->rule ? " matching \"" : "", a->rule ? a->rule : "", a->rule ? "\"" : "");
        iw_replay_free(r);
        known_fini(&known);
        return 2;
    }
    m.r = r;
    rc = each_listed(m.st, m.url, series_cb, &m);
    if (rc == IW_OK && m.rc == IW_OK)
        rc = run_merge(&m, isatty(STDERR_FILENO) != 0);
    if (rc == IW_OK && m.rc != IW_OK)
        rc = m.rc;
    if (rc == IW_OK) {
        iw_replay_advance(r, a->to);
        iw_replay_finish(r);
        rc = iw_replay_status(r);
    }
    if (rc == IW_OK)
        rc = hist.rc;
    if (rc != IW_OK) {
        fprintf(stderr, "islewatch backtest: reading %s failed: %s\n",
                st == NULL ? a->url : a->db ? a->db : cfg->storage.path, iw_strerror(rc));
        rc = 3;
        goto out;
    }
    n = iw_replay_alert_count(r);
    refs = calloc(n ? n : 1, sizeof(*refs));
    sum = calloc(iw_replay_rule_count(r), sizeof(*sum));
    if (refs == NULL || sum == NULL) {
        fprintf(stderr, "islewatch backtest: out of memory\n");
        rc = 3;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct aref){ iw_replay_alert(r, i), i };
    summarize(r, refs, n, a->to, sum);
    if (a->format == FMT_JSON)
        rc = print_json(refs, n);
    else if (a->format == FMT_CSV)
        print_csv(refs, n);
    else
        print_table(a->file, r, &m, refs, n, sum);
out:
    free(refs);
    free(sum);
    merge_fini(&m);
    iw_replay_free(r);
    known_fini(&known);
    return rc;
}

int iw_cmd_backtest(int argc, char **argv)
{
    struct bt_args a;
    struct iw_config *cfg = NULL;
    struct iw_diag diag = { 0 };
    struct iw_store *st = NULL;
    struct iw_store_opts so = { .read_only = true };
    int rc = parse_args(argc, argv, &a);

    if (rc >= 0)
        return rc;
    rc = iw_config_load(a.file, &cfg, &diag);
    for (size_t i = 0; i < diag.n; i++)
        fprintf(stderr, "%s\n", diag.lines[i]);
    if (rc != IW_OK) {
        if (rc == IW_E_CONFIG)
            fprintf(stderr, "islewatch backtest: %s is not a valid config; fix it first "
                    "(islewatch check %s)\n", a.file, a.file);
        else if (diag.n == 0)
            fprintf(stderr, "islewatch backtest: %s: %s\n", a.file, iw_strerror(rc));
        iw_diag_fini(&diag);
        return 2;
    }
    iw_diag_fini(&diag);
    if (a.url != NULL) {
        rc = replay_store(&a, cfg, NULL);
        iw_config_free(cfg);
        fflush(stdout);
        return rc;
    }
    so.path = a.db ? a.db : cfg->storage.path;
    if (iw_store_open(&so, &st, &diag) != IW_OK) {
        fprintf(stderr, "islewatch backtest: %s\n", iw_diag_first(&diag));
        iw_diag_fini(&diag);
        iw_config_free(cfg);
        return 3;
    }
    iw_diag_fini(&diag);
    rc = replay_store(&a, cfg, st);
    iw_store_close(st);
    iw_config_free(cfg);
    fflush(stdout);
    return rc;
}
