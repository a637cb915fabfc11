/*
 * Source topic patterns (SPEC §1): "sensors/water/{site}/{device}" where each
 * {name} captures exactly one topic level. A compiled pattern gives the MQTT
 * subscription filter ("sensors/water/+/+") and matches incoming topics.
 *
 * Globs (rule `select`, CLI `series GLOB`, silences): '/'-separated levels,
 * '*' inside a level matches any run of characters within that level (so a
 * lone '*' is one whole level); '?' one character. A glob with fewer levels
 * than the name matches only when its last level is a double star, which
 * matches any number of remaining levels.
 */
#ifndef ISLEWATCH_TOPIC_H
#define ISLEWATCH_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include "islewatch/compiler.h"

#define IW_TOPIC_MAX_LEVELS 16
#define IW_TOPIC_MAX_CAPTURES 8

struct iw_topic_pattern {
    size_t n_levels;
    char  *levels[IW_TOPIC_MAX_LEVELS];   /* literal text, or the capture name */
    bool   capture[IW_TOPIC_MAX_LEVELS];
    int    site_level, device_level;      /* level index of {site}, {device} */
    char  *filter;                        /* subscription filter with '+' */
};

/* A match: captured values point into the topic string (not NUL-terminated). */
struct iw_topic_match {
    const char *site, *device;
    size_t site_len, device_len;
    size_t n_captures;
    const char *cap_name[IW_TOPIC_MAX_CAPTURES];
    const char *cap_val[IW_TOPIC_MAX_CAPTURES];
    size_t cap_len[IW_TOPIC_MAX_CAPTURES];
};

/* Compile. IW_E_INVAL with a reason in *why (static string) when malformed. */
IW_NODISCARD int iw_topic_compile(const char *pattern, struct iw_topic_pattern *out,
                                  const char **why);
void iw_topic_pattern_fini(struct iw_topic_pattern *p);

/*
 * Match a received topic (len bytes, need not be NUL-terminated).
 * Returns true when the levels match; the captured values are NOT yet
 * validated (see iw_label_valid).
 */
bool iw_topic_match(const struct iw_topic_pattern *p, const char *topic, size_t len,
                    struct iw_topic_match *m);

/*
 * A label or metric name: non-empty, at most IW_LABEL_MAX bytes, valid UTF-8,
 * no '/', '+', '#', no NUL/control chars. The bound is what the rule engine
 * and the alerts carry of each level of a series name (iw_name_split): a
 * longer name would be stored whole but cut in its alerts.
 */
#define IW_LABEL_MAX 255
bool iw_label_valid(const char *s, size_t len);
bool iw_utf8_valid(const char *s, size_t len);

/* Glob match over '/'-separated names (see above). */
bool iw_glob_match(const char *glob, const char *name);

/*
 * Does a rule's select (<source>/<site>/<device>[/<metric>], each level a
 * glob) cover the series <source>/<site>/<device>/<metric>? A 3-level select
 * covers every metric of the device. metric NULL: does it cover the device
 * (its first three levels)? More than four levels cover nothing.
 */
bool iw_select_match(const char *select, const char *source, const char *site,
                     const char *device, const char *metric);

#endif /* ISLEWATCH_TOPIC_H */
