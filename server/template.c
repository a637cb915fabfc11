/* SPDX-License-Identifier: Apache-2.0 */
/* Alert message templates: "{name}" substitution, see islewatch/template.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "islewatch/template.h"

static const char *const known_vars[] = {
    "rule", "site", "device", "source", "metric", "metric_name", "value", "threshold",
    "unit", "severity", "status", "class", "class_zh", "target", "target_zh", "aqi",
    "level", "level_zh", "level_en", "colour", "primary", "primary_zh", "summary",
};

static const struct iw_tmpl_var *find_var(const struct iw_tmpl_var *vars, size_t n,
                                          const char *name, size_t name_len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].name) == name_len && memcmp(vars[i].name, name, name_len) == 0)
            return &vars[i];
    return NULL;
}

/* Append at most what fits, never splitting a UTF-8 sequence. */
static void put(char *buf, size_t len, size_t *o, const char *s, size_t n)
{
    size_t room = len - 1 - *o;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(buf + *o, s, n);
    *o += n;
}

/* Drop a multi-byte character the byte-wise copy of literal text cut short. */
static void trim_partial_utf8(const char *buf, size_t *o)
{
    size_t start = *o, need;
    unsigned char lead;

    while (start > 0 && ((unsigned char)buf[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return;
    lead = (unsigned char)buf[start - 1];
    if (lead < 0xC0)
        return;
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (*o - (start - 1) < need)
        *o = start - 1;
}

size_t iw_template_render(const char *tmpl, const struct iw_tmpl_var *vars, size_t n_vars,
                          char *buf, size_t len)
{
    size_t o = 0;
    const char *p = tmpl;

    if (len == 0)
        return 0;
    while (*p && o < len - 1) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            put(buf, len, &o, p, 1);
            p += 2;
            continue;
        }
        if (*p == '{') {
            const char *end = strchr(p + 1, '}');
            const struct iw_tmpl_var *v = end ? find_var(vars, n_vars, p + 1, (size_t)(end - p - 1)) : NULL;
            if (v != NULL) {
                if (v->value != NULL)
                    put(buf, len, &o, v->value, strlen(v->value));
                p = end + 1;
                continue;
            }
        }
        put(buf, len, &o, p, 1);
        p++;
    }
    trim_partial_utf8(buf, &o);
    buf[o] = '\0';
    return o;
}

bool iw_template_check(const char *tmpl, const char **bad)
{
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '{' && p[1] == '{') {
            p++;
            continue;
        }
        if (*p != '{')
            continue;
        const char *end = strchr(p + 1, '}');
        bool known = false;
        for (size_t i = 0; end != NULL && i < sizeof(known_vars) / sizeof(known_vars[0]); i++)
            if (strlen(known_vars[i]) == (size_t)(end - p - 1)
                && memcmp(known_vars[i], p + 1, (size_t)(end - p - 1)) == 0)
                known = true;
        if (!known) {
            if (bad != NULL)
                *bad = p;
            return false;
        }
        p = end;
    }
    return true;
}

char *iw_template_num(double v, char *buf, size_t len)
{
    double a = fabs(v);

    if (len == 0)
        return buf;
    if (!isfinite(v) || a == 0 || a >= 1e15 || a < 1e-12 || (a >= 1e-4 && a < 1e6)) {
        snprintf(buf, len, "%.6g", v);                /* %g has no exponent here */
        return buf;
    }
    if (a >= 1e6) {
        snprintf(buf, len, "%.0f", v);                /* 2400000, not 2.4e+06 */
        return buf;
    }
    /* Below 1e-4: six significant digits as a plain fraction, zeros trimmed. */
    int dec = 5 - (int)floor(log10(a));
    snprintf(buf, len, "%.*f", dec, v);
    char *e = buf + strlen(buf);
    while (e > buf && e[-1] == '0')
        *--e = '\0';
    if (e > buf && e[-1] == '.')
        e[-1] = '\0';
    return buf;
}
