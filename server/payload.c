/*
 * Payload decoding: a small strict JSON scanner specialised for SPEC §1's
 * flat objects. Nested values are skipped (and counted as bad members), so
 * the scanner still validates the whole document.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/clock.h"
#include "islewatch/payload.h"
#include "islewatch/topic.h"

static const char *const reject_names[IW_REJ_COUNT] = {
    [IW_REJ_NOT_JSON] = "not_json",       [IW_REJ_NOT_OBJECT] = "not_object",
    [IW_REJ_TOO_LARGE] = "too_large",     [IW_REJ_NON_FINITE] = "non_finite",
    [IW_REJ_TS_FUTURE] = "ts_future",     [IW_REJ_TS_TOO_OLD] = "ts_too_old",
    [IW_REJ_BAD_TS] = "bad_ts",           [IW_REJ_NO_SOURCE] = "no_source",
    [IW_REJ_BAD_LABEL] = "bad_label",     [IW_REJ_BAD_FLAG] = "bad_flag",
    [IW_REJ_BAD_EVENT] = "bad_event",     [IW_REJ_BAD_MEMBER] = "bad_member",
    [IW_REJ_TOO_MANY] = "too_many_members",
    [IW_REJ_SERIES_LIMIT] = "series_limit",
};

const char *iw_reject_name(enum iw_reject r)
{
    return (r >= 0 && r < IW_REJ_COUNT) ? reject_names[r] : "unknown";
}

bool iw_flag_valid(char c)
{
    return c != 0 && strchr("NMCDFTBS", c) != NULL;
}

struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(struct scan *sc, unsigned *out)
{
    unsigned v = 0;
    if (sc->end - sc->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(sc->p[i]);
        if (h < 0)
            return -1;
        v = (v << 4) | (unsigned)h;
    }
    sc->p += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * String at sc->p (which is at the opening quote). The decoded bytes go to
 * out[0..cap) when out is non-NULL (*len = decoded length; *fits = false when
 * it did not fit). Returns 0, or -1 for malformed JSON. Raw bytes are not
 * UTF-8-checked here: the caller decides whether invalidity rejects a label.
 */
static int scan_string(struct scan *sc, char *out, size_t cap, size_t *len, bool *fits)
{
    size_t n = 0;
    *fits = true;
    sc->p++;                                   /* opening quote */
    while (sc->p < sc->end) {
        unsigned char c = (unsigned char)*sc->p++;
        char tmp[4];
        size_t tl = 1;

        if (c == '"') {
            *len = n;
            return 0;
        }
        if (c < 0x20)
            return -1;                         /* control characters must be escaped */
        tmp[0] = (char)c;
        if (c == '\\') {
            if (sc->p >= sc->end)
                return -1;
            char e = *sc->p++;
            switch (e) {
            case '"': case '\\': case '/': tmp[0] = e; break;
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (read_hex4(sc, &cp) < 0)
                    return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF && sc->end - sc->p >= 6 && sc->p[0] == '\\'
                    && sc->p[1] == 'u') {
                    const char *at = sc->p;
                    sc->p += 2;
                    if (read_hex4(sc, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF)
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else
                        sc->p = at;            /* not its pair: read as an escape of its own */
                }
                /* A lone surrogate is valid JSON grammar (RFC 8259 section 8.2)
                 * but no character. Its three bytes (ED A0..BF ..) are invalid
                 * UTF-8, so the string is judged as raw invalid bytes are: a
                 * label or member name holding one is dropped, the rest of the
                 * message kept (SPEC section 1). */
                tl = put_utf8(tmp, cp);
                break;
            }
            default:
                return -1;
            }
        }
        if (out != NULL) {
            if (n + tl < cap)
                memcpy(out + n, tmp, tl);
            else
                *fits = false;
        }
        n += tl;
    }
    return -1;
}

enum num_kind { NUM_BAD = 0, NUM_INT, NUM_REAL, NUM_NONFINITE };

/*
 * A JSON number [s, s + len) too long for scan_number's buffer: its first 40
 * significant digits (more than a double can tell apart), the others carried
 * in the exponent, converted by strtod.
 */
static double long_number(const char *s, size_t len)
{
    char buf[64];
    size_t n = 0, kept = 0;
    long long exp10 = 0, e = 0;
    bool frac = false, eneg = false;
    const char *p = s, *end = s + len;

    if (*p == '-')
        buf[n++] = *p++;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') {
            frac = true;
        } else if (kept == 0 && *p == '0') {
            if (frac)                      /* a leading zero of the fraction */
                exp10--;
        } else if (kept < 40) {
            buf[n++] = *p;
            kept++;
            if (frac)
                exp10--;
        } else if (!frac) {
            exp10++;                       /* a dropped digit of the integer part */
        }
    }
    if (p < end) {
        p++;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        for (; p < end; p++)
            if (e < 100000000)             /* beyond that it is 0 or infinite anyway */
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    if (kept == 0)
        buf[n++] = '0';
    snprintf(buf + n, sizeof(buf) - n, "e%lld", exp10);
    return strtod(buf, NULL);
}

/* Exact powers of ten: every one up to 1e22 is a double without rounding. */
static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/*
 * Number at sc->p: strict JSON grammar; NaN/Infinity/-Infinity are accepted as
 * non-finite.
 *
 * Fast path (a sensor's "7.4", "0.82", "1764417600000"): the digits are
 * gathered into an integer m and a power of ten e while they are scanned. When
 * m <= 2^53 and |e| <= 22 both are exact doubles, so the one IEEE multiply or
 * divide m * 10^e rounds the exact decimal value once, correctly: the same
 * double strtod gives (Clinger's fast path; tests/unit/test_payload.c checks it
 * against strtod). Anything else (more digits, larger exponents) goes to
 * strtod. This needs double arithmetic without excess precision
 * (FLT_EVAL_METHOD 0, as on x86-64 and aarch64); elsewhere strtod does it all.
 */
static enum num_kind scan_number(struct scan *sc, double *v, long long *iv)
{
    const char *s = sc->p;
    bool real = false, neg = false, fast = FLT_EVAL_METHOD == 0;
    uint64_t m = 0;
    int sig = 0, frac = 0, e = 0;                     /* significant digits kept in m */

    if (sc->p < sc->end && (*sc->p == 'N' || *sc->p == 'I' || *sc->p == '-')) {
        static const char *const specials[] = { "NaN", "Infinity", "-Infinity" };
        for (size_t k = 0; k < 3; k++) {
            size_t l = strlen(specials[k]);
            if ((size_t)(sc->end - s) >= l && memcmp(s, specials[k], l) == 0) {
                sc->p += l;
                *v = NAN;
                return NUM_NONFINITE;
            }
        }
    }
    if (sc->p < sc->end && *sc->p == '-') {
        neg = true;
        sc->p++;
    }
    if (sc->p >= sc->end)
        return NUM_BAD;
    if (*sc->p == '0') {
        sc->p++;
    } else if (*sc->p >= '1' && *sc->p <= '9') {
        for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; sc->p++) {
            if (sig < 19) {                           /* 19 digits always fit in 64 bits */
                m = m * 10 + (uint64_t)(*sc->p - '0');
                sig++;
            } else {
                fast = false;
            }
        }
    } else {
        return NUM_BAD;
    }
    if (sc->p < sc->end && *sc->p == '.') {
        real = true;
        sc->p++;
        if (sc->p >= sc->end || *sc->p < '0' || *sc->p > '9')
            return NUM_BAD;
        for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; sc->p++) {
            if (m == 0 && *sc->p == '0') {
                frac++;                               /* a leading zero: scale only */
            } else if (sig < 19) {
                m = m * 10 + (uint64_t)(*sc->p - '0');
                sig++;
                frac++;
            } else {
                fast = false;
            }
        }
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        bool eneg = false;
        real = true;
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
            eneg = *sc->p++ == '-';
        if (sc->p >= sc->end || *sc->p < '0' || *sc->p > '9')
            return NUM_BAD;
        for (; sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9'; sc->p++)
            if (e < 10000)                            /* past that only strtod can say */
                e = e * 10 + (*sc->p - '0');
        if (e >= 10000)
            fast = false;
        if (eneg)
            e = -e;
    }
    e -= frac;
    if (fast && m <= (1ULL << 53) && e >= -22 && e <= 22) {
        double d = (double)m;
        d = e < 0 ? d / pow10_exact[-e] : d * pow10_exact[e];
        *v = neg ? -d : d;
        if (!real)                                    /* e == 0 here, and m < 2^63 */
            *iv = neg ? -(long long)m : (long long)m;
        return real ? NUM_REAL : NUM_INT;
    }

    char tmp[64];
    size_t l = (size_t)(sc->p - s);
    if (l >= sizeof(tmp)) {
        /* Long (many digits): still a valid JSON number, often a finite one. */
        *v = long_number(s, l);
        return isfinite(*v) ? NUM_REAL : NUM_NONFINITE;
    }
    memcpy(tmp, s, l);
    tmp[l] = '\0';
    errno = 0;
    *v = strtod(tmp, NULL);
    if (!isfinite(*v))
        return NUM_NONFINITE;
    if (!real) {
        errno = 0;
        *iv = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return NUM_REAL;                  /* integer beyond int64: keep the double */
        return NUM_INT;
    }
    return NUM_REAL;
}

/* A JSON scalar (string, literal or number): 0, or -1 when malformed. */
static int skip_scalar(struct scan *sc)
{
    double d;
    long long i;
    size_t l;
    bool f;

    switch (*sc->p) {
    case '"':
        return scan_string(sc, NULL, 0, &l, &f);
    case 't':
        if (sc->end - sc->p >= 4 && memcmp(sc->p, "true", 4) == 0) { sc->p += 4; return 0; }
        return -1;
    case 'f':
        if (sc->end - sc->p >= 5 && memcmp(sc->p, "false", 5) == 0) { sc->p += 5; return 0; }
        return -1;
    case 'n':
        if (sc->end - sc->p >= 4 && memcmp(sc->p, "null", 4) == 0) { sc->p += 4; return 0; }
        return -1;
    default:
        return scan_number(sc, &d, &i) == NUM_BAD ? -1 : 0;
    }
}

/* An object member's name and its colon. */
static int skip_key(struct scan *sc)
{
    size_t l;
    bool f;

    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p != '"' || scan_string(sc, NULL, 0, &l, &f) < 0)
        return -1;
    skip_ws(sc);
    if (sc->p >= sc->end || *sc->p++ != ':')
        return -1;
    return 0;
}

/*
 * Skip any JSON value (a nested member): 0, or -1 when it is not JSON. No
 * recursion, so a member nested 30,000 deep is a bad member like any other
 * (its good neighbours kept), not a stack overflow nor "not JSON": the open
 * containers are a bit each (1: object), a bit per byte of input at most.
 */
static int skip_value(struct scan *sc)
{
    uint8_t small[16], *bits = small;
    size_t depth = 0, cap = sizeof(small) * 8;
    int rc = -1;

    for (;;) {
        skip_ws(sc);                            /* a value is expected */
        if (sc->p >= sc->end)
            goto out;
        if (*sc->p == '{' || *sc->p == '[') {
            bool obj = *sc->p++ == '{';
            if (depth == cap) {
                uint8_t *nb = malloc(cap / 4);
                if (nb == NULL)
                    goto out;
                memcpy(nb, bits, cap / 8);
                if (bits != small)
                    free(bits);
                bits = nb;
                cap *= 2;
            }
            bits[depth / 8] = (uint8_t)((bits[depth / 8] & ~(1u << depth % 8))
                                        | ((unsigned)obj << depth % 8));
            depth++;
            skip_ws(sc);
            if (sc->p < sc->end && *sc->p == (obj ? '}' : ']')) {
                sc->p++;
                depth--;
            } else {
                if (obj && skip_key(sc) < 0)
                    goto out;
                continue;
            }
        } else if (skip_scalar(sc) < 0) {
            goto out;
        }
        for (;;) {                              /* after a value: ',' or a close */
            bool obj;
            if (depth == 0) {
                rc = 0;
                goto out;
            }
            obj = bits[(depth - 1) / 8] >> (depth - 1) % 8 & 1u;
            skip_ws(sc);
            if (sc->p >= sc->end)
                goto out;
            if (*sc->p == ',') {
                sc->p++;
                if (obj && skip_key(sc) < 0)
                    goto out;
                break;
            }
            if (*sc->p++ != (obj ? '}' : ']'))
                goto out;
            depth--;
        }
    }
out:
    if (bits != small)
        free(bits);
    return rc;
}

/* Per-metric flag members ("<metric>_flag") seen before their metric. */
struct pending_flag {
    const char *metric;
    size_t len;
    char flag;
};

static bool is_flag_suffix(const char *name, size_t len)
{
    return len > 5 && memcmp(name + len - 5, "_flag", 5) == 0;
}

/* One member dropped: counted by reason, and each reason's first time recorded
 * in payload order so the rejection the message is republished with does not
 * depend on enum order. */
static void drop_member(struct iw_decoded *out, enum iw_reject why)
{
    if (out->member_rejects[why]++ == 0)
        out->member_reasons[out->n_member_reasons++] = (uint8_t)why;
}

/*
 * A label's value (SPEC §1): valid UTF-8 without '/', '+', '#', the
 * characters that would break a topic level or a series name if the label
 * were ever used as one. Unlike a name (iw_label_valid) an empty value or
 * one with control characters is not rejected: SPEC §1 does not list them
 * and devices that send them today keep their samples.
 */
static bool label_value_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '+' || s[i] == '#')
            return false;
    return iw_utf8_valid(s, len);
}

/*
 * label_value_valid for a value too long for the name space, from its JSON
 * text [s, e) between the quotes (scan_string has checked its escapes). The
 * text is valid UTF-8 exactly when the value is (an escape is ASCII and
 * stands for whole characters), and the value has a '/', '+' or '#' exactly
 * when the text has one: as itself, as "\/", or as a "\u002F"-style escape.
 */
static bool label_text_valid(const char *s, const char *e)
{
    if (!iw_utf8_valid(s, (size_t)(e - s)))
        return false;
    for (const char *p = s; p < e; p++) {
        if (*p == '/' || *p == '+' || *p == '#')
            return false;
        if (*p == '\\' && p[1] == 'u') {
            struct scan hex = { p + 2, e };
            unsigned cp = 0, lo = 0;
            if (read_hex4(&hex, &cp) == 0 && (cp == '/' || cp == '+' || cp == '#'))
                return false;
            /* A lone surrogate is no character: invalid, as in a short value
             * (scan_string). A high one followed by its low half is one. */
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                bool paired = hex.p[0] == '\\' && hex.p[1] == 'u';   /* hex.p <= e, the quote */
                if (paired) {
                    hex.p += 2;
                    paired = read_hex4(&hex, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF;
                }
                if (!paired)
                    return false;
                p += 6;                        /* the low half */
            }
            p += 5;
        } else if (*p == '\\') {
            p++;                               /* the escaped character: "\/" is a '/' */
            if (*p == '/')
                return false;
        }
    }
    return true;
}

/* "<metric>_flag" = f ('?': malformed, the metric is dropped). The name stays
 * in out's name space: flags[] points at it. */
static void add_flag(struct pending_flag *flags, size_t *n_flags, struct iw_decoded *out,
                     const char *name, size_t nlen, char f)
{
    if (*n_flags == IW_PAYLOAD_MAX_SAMPLES)
        return;
    flags[*n_flags].metric = name;
    flags[*n_flags].len = nlen - 5;
    flags[*n_flags].flag = f;
    (*n_flags)++;
    out->names_used += nlen + 1;
}

int iw_payload_decode(const char *payload, size_t len, const struct iw_payload_opts *o,
                      struct iw_decoded *out)
{
    struct scan sc = { payload, payload + len };
    struct pending_flag flags[IW_PAYLOAD_MAX_SAMPLES];
    size_t n_flags = 0;
    const char *ev_type = NULL;
    int ev_state = -1;         /* 1 start, 0 stop */
    bool ev_bad = false;
    int reject_ts = -1;

    out->n = 0;
    out->has_ts = false;
    out->msg_flag = 0;
    out->names_used = 0;
    memset(out->member_rejects, 0, sizeof(out->member_rejects));
    out->n_member_reasons = 0;

    /* A UTF-8 byte order mark, which some device firmware writes: RFC 8259
     * section 8.1 lets a parser ignore it. */
    if (len >= 3 && memcmp(payload, "\xEF\xBB\xBF", 3) == 0)
        sc.p += 3;
    skip_ws(&sc);
    if (sc.p >= sc.end)
        return IW_REJ_NOT_JSON;
    if (*sc.p != '{') {
        /* Still tell "valid JSON but not an object" from garbage. */
        struct scan chk = sc;
        if (skip_value(&chk) == 0) {
            skip_ws(&chk);
            if (chk.p == chk.end)
                return IW_REJ_NOT_OBJECT;
        }
        return IW_REJ_NOT_JSON;
    }
    sc.p++;
    skip_ws(&sc);
    if (sc.p < sc.end && *sc.p == '}') {
        sc.p++;
        goto done;
    }
    for (;;) {
        char *name;
        size_t nlen;
        bool fits;

        skip_ws(&sc);
        if (sc.p >= sc.end || *sc.p != '"')
            return IW_REJ_NOT_JSON;
        name = out->names + out->names_used;
        if (scan_string(&sc, name, sizeof(out->names) - out->names_used, &nlen, &fits) < 0)
            return IW_REJ_NOT_JSON;
        skip_ws(&sc);
        if (sc.p >= sc.end || *sc.p++ != ':')
            return IW_REJ_NOT_JSON;
        skip_ws(&sc);
        if (sc.p >= sc.end)
            return IW_REJ_NOT_JSON;
        bool name_ok = fits && nlen < sizeof(out->names) - out->names_used;
        if (name_ok)
            name[nlen] = '\0';

        char c = *sc.p;
        if (name_ok && strcmp(name, o->ts_field) == 0) {
            /* The time of the samples: integer ms, seconds with a fraction, or RFC 3339. */
            if (c == '"') {
                char tbuf[64];
                size_t tl;
                bool tf;
                if (scan_string(&sc, tbuf, sizeof(tbuf), &tl, &tf) < 0)
                    return IW_REJ_NOT_JSON;
                if (!tf || iw_rfc3339_parse(tbuf, tl, &out->ts) != 0)
                    reject_ts = IW_REJ_BAD_TS;
                else
                    out->has_ts = true;
            } else if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
                double d;
                long long iv;
                enum num_kind k = scan_number(&sc, &d, &iv);
                if (k == NUM_BAD)
                    return IW_REJ_NOT_JSON;
                if (k == NUM_INT) {
                    out->ts = iv;
                    out->has_ts = true;
                } else if (k == NUM_REAL && fabs(d) >= 1e11 && fabs(d) < 9.2e18) {
                    /* Written as a real but milliseconds (1.7644176e12,
                     * 1764417600000.0): as seconds it would be past the
                     * year 5000, which no device means. A fraction of a
                     * millisecond is cut, as in an RFC 3339 time, so one
                     * instant written either way is one key (SPEC section 2). */
                    out->ts = (int64_t)floor(d);
                    out->has_ts = true;
                } else if (k == NUM_REAL && fabs(d) < 1e11) {
                    /* Seconds: to whole microseconds first (1764417600.123
                     * is 1764417600122.99998 ms as a double), then cut to
                     * the millisecond as above. */
                    long long us = llround(d * 1e6);
                    out->ts = (int64_t)(us >= 0 ? us / 1000 : -((-us + 999) / 1000));
                    out->has_ts = true;
                } else {
                    reject_ts = IW_REJ_BAD_TS;
                }
            } else {
                if (skip_value(&sc) < 0)
                    return IW_REJ_NOT_JSON;
                reject_ts = IW_REJ_BAD_TS;
            }
        } else if (c == '"') {
            /* String members: flags, event fields, otherwise labels. */
            char *val = name_ok ? name + nlen + 1 : NULL;
            size_t cap = name_ok ? sizeof(out->names) - out->names_used - nlen - 1 : 0;
            const char *text = sc.p + 1;       /* the value's JSON text, after the quote */
            size_t vlen;
            bool vf;
            if (scan_string(&sc, val, cap, &vlen, &vf) < 0)
                return IW_REJ_NOT_JSON;
            if (!name_ok) {
                drop_member(out, IW_REJ_TOO_MANY);
            } else if (strcmp(name, "flag") == 0 || is_flag_suffix(name, nlen)) {
                char f = (vf && vlen == 1) ? val[0] : 0;
                if (f >= 'a' && f <= 'z')
                    f = (char)(f - 'a' + 'A');
                if (!iw_flag_valid(f)) {
                    if (strcmp(name, "flag") == 0)
                        return IW_REJ_BAD_FLAG;
                    /* A bad per-metric flag: drop the metric too (see below). */
                    f = '?';
                    drop_member(out, IW_REJ_BAD_FLAG);
                }
                if (strcmp(name, "flag") == 0) {
                    out->msg_flag = f;     /* 'N' kept: a message of no sample saying normal */
                } else {
                    add_flag(flags, &n_flags, out, name, nlen, f);
                }
            } else if (o->event && (strcmp(name, "type") == 0 || strcmp(name, "state") == 0)) {
                if (!vf || !iw_label_valid(val, vlen)) {
                    ev_bad = true;
                } else {
                    val[vlen] = '\0';
                    if (name[0] == 't') {
                        ev_type = val;
                        out->names_used += nlen + 1 + vlen + 1;
                    } else if (strcmp(val, "start") == 0) {
                        ev_state = 1;
                    } else if (strcmp(val, "stop") == 0) {
                        ev_state = 0;
                    } else {
                        ev_bad = true;
                    }
                }
            } else if (o->event) {
                /* Not labels in an event source (SPEC §1): the event's own text. */
            } else if (!iw_label_valid(name, nlen) ||
                       !(vf ? label_value_valid(val, vlen) : label_text_valid(text, sc.p - 1))) {
                /* A value too long for the name space is checked on its text:
                 * its length alone does not make it a bad label. */
                drop_member(out, IW_REJ_BAD_LABEL);
            }
            /* Good labels are accepted; they are not stored as series. */
        } else if (c == '{' || c == '[' || c == 'n' || o->event) {
            /* An event is its type and state (SPEC section 1): any other
             * member of an event source (a channel number, a confidence) is
             * the event's own detail, neither a sample nor an event. */
            if (skip_value(&sc) < 0)
                return IW_REJ_NOT_JSON;
            if (!o->event)
                drop_member(out, IW_REJ_BAD_MEMBER);
        } else {
            double d = 0;
            long long iv;
            if (c == 't' || c == 'f') {
                if (skip_value(&sc) < 0)
                    return IW_REJ_NOT_JSON;
                d = c == 't' ? 1.0 : 0.0;
            } else {
                enum num_kind k = scan_number(&sc, &d, &iv);
                if (k == NUM_BAD)
                    return IW_REJ_NOT_JSON;
                if (k == NUM_NONFINITE) {
                    drop_member(out, IW_REJ_NON_FINITE);
                    goto next;
                }
            }
            if (name_ok && (strcmp(name, "flag") == 0 || is_flag_suffix(name, nlen))) {
                /* A flag is an HJ 212 letter: a number or boolean is a bad
                 * flag, as "Q" is, not a metric named "flag" (and ph_flag: 7
                 * must not leave ph unflagged). */
                if (strcmp(name, "flag") == 0)
                    return IW_REJ_BAD_FLAG;
                add_flag(flags, &n_flags, out, name, nlen, '?');
                drop_member(out, IW_REJ_BAD_FLAG);
            } else if (!name_ok || out->n == IW_PAYLOAD_MAX_SAMPLES) {
                drop_member(out, IW_REJ_TOO_MANY);
            } else if (!iw_label_valid(name, nlen)) {
                drop_member(out, IW_REJ_BAD_LABEL);
            } else {
                out->s[out->n].metric = name;
                out->s[out->n].value = d;
                out->s[out->n].flag = 0;
                out->n++;
                out->names_used += nlen + 1;
            }
        }
next:
        skip_ws(&sc);
        if (sc.p >= sc.end)
            return IW_REJ_NOT_JSON;
        if (*sc.p == ',') {
            sc.p++;
            continue;
        }
        if (*sc.p == '}') {
            sc.p++;
            break;
        }
        return IW_REJ_NOT_JSON;
    }
done:
    skip_ws(&sc);
    if (sc.p != sc.end)
        return IW_REJ_NOT_JSON;            /* trailing garbage */
    if (reject_ts >= 0)
        return reject_ts;
    if (!out->has_ts)
        out->ts = o->now_ms;
    else if (out->ts > o->now_ms + o->max_future_skew_ms)
        return IW_REJ_TS_FUTURE;
    else if (o->max_age_ms > 0 && out->ts < o->now_ms - o->max_age_ms)
        return IW_REJ_TS_TOO_OLD;

    if (o->event) {
        if (ev_bad || ev_type == NULL || ev_state < 0)
            return IW_REJ_BAD_EVENT;
        if (out->n == IW_PAYLOAD_MAX_SAMPLES)
            return IW_REJ_TOO_MANY;
        out->s[out->n].metric = ev_type;
        out->s[out->n].value = ev_state;
        out->s[out->n].flag = 0;
        out->n++;
    }

    /* Apply flags: per-metric first, else the message's. */
    for (size_t i = 0; i < out->n; i++) {
        out->s[i].flag = out->msg_flag == 'N' ? 0 : out->msg_flag;
        for (size_t k = 0; k < n_flags; k++) {
            if (strlen(out->s[i].metric) == flags[k].len &&
                memcmp(out->s[i].metric, flags[k].metric, flags[k].len) == 0)
                out->s[i].flag = flags[k].flag == 'N' ? 0 : flags[k].flag;
        }
    }
    /* Drop the metrics whose own flag was malformed (already counted). */
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++)
        if (out->s[i].flag != '?')
            out->s[w++] = out->s[i];
    out->n = w;
    return -1;
}
