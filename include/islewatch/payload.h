/*
 * Payload decoding (SPEC §1). A purpose-built scanner for the flat JSON
 * objects devices send: it allocates nothing, keeps the raw number text (so
 * "ts": 1764417600000 is milliseconds and 1764417600.5 is seconds), and
 * rejects single members (a non-finite number, a bad name, a bad flag) while
 * keeping the good ones, which general JSON libraries cannot do: they fail
 * the whole document. ARCHITECTURE.md has the benchmark behind the choice.
 */
#ifndef ISLEWATCH_PAYLOAD_H
#define ISLEWATCH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "islewatch/compiler.h"

/* Why a message or a member was rejected; names are the `reason` label in /metrics. */
enum iw_reject {
    IW_REJ_NOT_JSON = 0,     /* payload is not JSON */
    IW_REJ_NOT_OBJECT,       /* JSON, but not an object */
    IW_REJ_TOO_LARGE,        /* larger than max_payload */
    IW_REJ_NON_FINITE,       /* NaN, Infinity, or a number that overflows a double */
    IW_REJ_TS_FUTURE,        /* ts further than max_future_skew ahead */
    IW_REJ_TS_TOO_OLD,       /* ts older than raw retention */
    IW_REJ_BAD_TS,           /* ts present but not a number or RFC 3339 string */
    IW_REJ_NO_SOURCE,        /* topic matches no source */
    IW_REJ_BAD_LABEL,        /* label/metric name not UTF-8 or containing / + # */
    IW_REJ_BAD_FLAG,         /* flag not one of N M C D F T B S */
    IW_REJ_BAD_EVENT,        /* event payload without a valid type/state */
    IW_REJ_BAD_MEMBER,       /* nested object/array or null: not a sample */
    IW_REJ_TOO_MANY,         /* more members than one message may carry */
    IW_REJ_SERIES_LIMIT,     /* a new series, and the series dictionary is full (ingest.c) */
    IW_REJ_COUNT
};
const char *iw_reject_name(enum iw_reject r);

#define IW_PAYLOAD_MAX_SAMPLES 128
#define IW_PAYLOAD_NAME_SPACE  8192

struct iw_psample {
    const char *metric;      /* NUL-terminated, in iw_decoded.names */
    double value;
    char   flag;             /* 0: none; else an HJ 212 letter (N counts as none) */
};

struct iw_payload_opts {
    const char *ts_field;    /* "ts" */
    bool   event;            /* format: event */
    int64_t now_ms;
    int64_t max_future_skew_ms;
    int64_t max_age_ms;      /* raw retention; 0: no limit */
};

struct iw_decoded {
    int64_t ts;              /* sample time (receipt time when absent) */
    bool    has_ts;
    char    msg_flag;        /* message-level flag, 0 when none ('N' when normal; the
                              * samples carry 0 for it) */
    size_t  n;
    struct iw_psample s[IW_PAYLOAD_MAX_SAMPLES];
    uint32_t member_rejects[IW_REJ_COUNT];  /* members dropped, by reason */
    /* Each reason members were dropped for, once, in the order first met in the
     * payload: the ingest path counts a message once per reason and republishes
     * it with the first as its "reason" (SPEC §1, §7). */
    uint8_t member_reasons[IW_REJ_COUNT];
    uint8_t n_member_reasons;
    size_t  names_used;
    char    names[IW_PAYLOAD_NAME_SPACE];
};

/*
 * Decode one payload. Returns -1 when the message is accepted (possibly
 * with some members dropped: see member_rejects and member_reasons), or the
 * enum iw_reject reason that rejects the whole message. An accepted message
 * may hold zero samples (only labels, or every sample member dropped).
 * A string member is a label: its name must pass iw_label_valid and its value
 * must be valid UTF-8 without '/', '+', '#', else it is dropped as bad_label.
 */
int iw_payload_decode(const char *payload, size_t len, const struct iw_payload_opts *o,
                      struct iw_decoded *out);

/* True for an HJ 212-2017 data flag letter: N M C D F T B S. */
bool iw_flag_valid(char c);

#endif /* ISLEWATCH_PAYLOAD_H */
