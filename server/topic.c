/* Topic patterns, label validation and globs. */
#include <stdlib.h>
#include <string.h>

#include "islewatch/err.h"
#include "islewatch/topic.h"

void iw_topic_pattern_fini(struct iw_topic_pattern *p)
{
    for (size_t i = 0; i < p->n_levels; i++)
        free(p->levels[i]);
    free(p->filter);
    memset(p, 0, sizeof(*p));
}

int iw_topic_compile(const char *pattern, struct iw_topic_pattern *out, const char **why)
{
    const char *p = pattern, *slash;
    size_t flen = 0;

    memset(out, 0, sizeof(*out));
    out->site_level = out->device_level = -1;
    *why = NULL;
    do {
        slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (out->n_levels == IW_TOPIC_MAX_LEVELS) {
            *why = "too many topic levels (at most 16)";
            goto fail;
        }
        if (len == 0) {
            *why = "empty topic level";
            goto fail;
        }
        bool cap = len > 2 && p[0] == '{' && p[len - 1] == '}';
        const char *txt = cap ? p + 1 : p;
        size_t tlen = cap ? len - 2 : len;
        if (memchr(txt, '{', tlen) || memchr(txt, '}', tlen)) {
            *why = "a {name} capture must be a whole topic level";
            goto fail;
        }
        if (memchr(txt, '+', tlen) || memchr(txt, '#', tlen)) {
            *why = "a source pattern names captures as {name}, not with + or #";
            goto fail;
        }
        out->levels[out->n_levels] = strndup(txt, tlen);
        out->capture[out->n_levels] = cap;
        if (cap && strcmp(out->levels[out->n_levels], "site") == 0)
            out->site_level = (int)out->n_levels;
        if (cap && strcmp(out->levels[out->n_levels], "device") == 0)
            out->device_level = (int)out->n_levels;
        flen += (cap ? 1 : tlen) + 1;
        out->n_levels++;
        p = slash ? slash + 1 : NULL;
    } while (p != NULL);

    if (out->site_level < 0 || out->device_level < 0) {
        *why = "a source pattern needs both {site} and {device}";
        goto fail;
    }
    out->filter = malloc(flen + 1);
    if (out->filter == NULL) {
        *why = "out of memory";
        goto fail;
    }
    out->filter[0] = '\0';
    for (size_t i = 0; i < out->n_levels; i++) {
        if (i > 0)
            strcat(out->filter, "/");
        strcat(out->filter, out->capture[i] ? "+" : out->levels[i]);
    }
    return IW_OK;
fail:
    iw_topic_pattern_fini(out);
    return IW_E_INVAL;
}

bool iw_topic_match(const struct iw_topic_pattern *p, const char *topic, size_t len,
                    struct iw_topic_match *m)
{
    const char *s = topic, *end = topic + len;
    size_t lvl = 0;

    m->n_captures = 0;
    for (;;) {
        const char *slash = memchr(s, '/', (size_t)(end - s));
        const char *lend = slash ? slash : end;
        size_t l = (size_t)(lend - s);

        if (lvl >= p->n_levels)
            return false;
        if (p->capture[lvl]) {
            if (m->n_captures < IW_TOPIC_MAX_CAPTURES) {
                m->cap_name[m->n_captures] = p->levels[lvl];
                m->cap_val[m->n_captures] = s;
                m->cap_len[m->n_captures] = l;
                m->n_captures++;
            }
            if ((int)lvl == p->site_level) {
                m->site = s;
                m->site_len = l;
            } else if ((int)lvl == p->device_level) {
                m->device = s;
                m->device_len = l;
            }
        } else if (strlen(p->levels[lvl]) != l || memcmp(p->levels[lvl], s, l) != 0) {
            return false;
        }
        lvl++;
        if (slash == NULL)
            break;
        s = slash + 1;
    }
    return lvl == p->n_levels;
}

bool iw_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        size_t n;
        unsigned cp;

        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return false;
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        /* overlong, surrogate and out-of-range forms */
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool iw_label_valid(const char *s, size_t len)
{
    if (len == 0 || len > IW_LABEL_MAX || !iw_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == '+' || c == '#' || c < 0x20 || c == 0x7F)
            return false;
    }
    return true;
}

/*
 * Match one level [g, gend) against [s, send): '*' any run, '?' one char.
 * The glob's '*' is tested first: it is a wildcard even where the name has a
 * '*' of its own (a topic level may hold one).
 */
static bool level_match(const char *g, const char *gend, const char *s, const char *send)
{
    const char *star_g = NULL, *star_s = NULL;

    while (s < send) {
        if (g < gend && *g == '*') {
            star_g = g++;
            star_s = s;
        } else if (g < gend && (*g == '?' || *g == *s)) {
            g++;
            s++;
        } else if (star_g != NULL) {
            g = star_g + 1;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (g < gend && *g == '*')
        g++;
    return g == gend;
}

bool iw_glob_match(const char *glob, const char *name)
{
    const char *g = glob, *s = name;

    for (;;) {
        const char *gslash = strchr(g, '/');
        const char *gend = gslash ? gslash : g + strlen(g);
        if (gend - g == 2 && g[0] == '*' && g[1] == '*' && gslash == NULL)
            return true;                        /* trailing "**": any rest */
        const char *sslash = strchr(s, '/');
        const char *send = sslash ? sslash : s + strlen(s);
        if (!level_match(g, gend, s, send))
            return false;
        if (gslash == NULL || sslash == NULL)
            return gslash == NULL && sslash == NULL;
        g = gslash + 1;
        s = sslash + 1;
    }
}

bool iw_select_match(const char *select, const char *source, const char *site,
                     const char *device, const char *metric)
{
    const char *name[4] = { source, site, device, metric };
    char level[256];
    const char *p = select;

    for (size_t n = 0; n < 4; n++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 3 && name[3] == NULL)
            return true;                /* the device is covered; its metrics are not asked */
        if (len >= sizeof(level))
            return false;
        memcpy(level, p, len);
        level[len] = '\0';
        if (!iw_glob_match(level, name[n]))
            return false;
        if (slash == NULL)
            return n + 1 >= 3;          /* 3 levels: every metric of the device */
        p = slash + 1;
    }
    return false;                       /* more than four levels: matches nothing */
}
