/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template — alert message templates (SPEC §4 `message:`).
 *
 * "{name}" is replaced by the value of the variable `name`; "{{" and "}}" are
 * literal braces; an unknown "{name}" is left as written, so a typo shows in
 * the message instead of silently vanishing (iw_template_check finds it
 * first). Output longer than the buffer is cut at a UTF-8 character boundary.
 * Stateless and thread-safe.
 *
 * Variables the rule engine provides (islewatch/rules.h): {rule} {site}
 * {device} {source} {metric} {metric_name} {value} {threshold} {unit}
 * {severity} {status}, and for the standard kinds {class} ("III", "劣V"),
 * {class_zh} ("Ⅲ类", "劣Ⅴ类"), {target} {target_zh}, {aqi} {level} ("3"),
 * {level_zh} ("轻度污染"), {level_en} ("Lightly polluted"), {colour},
 * {primary} ("PM2.5", several joined by ","), {primary_zh} ("首要污染物 PM2.5"),
 * and {summary}: the kind's one-line description, which the default message uses.
 */
#ifndef ISLEWATCH_TEMPLATE_H
#define ISLEWATCH_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "islewatch/compiler.h"

struct iw_tmpl_var {
    const char *name;        /* borrowed */
    const char *value;       /* borrowed; NULL renders as "" */
};

/*
 * Render tmpl into buf (len bytes, always NUL-terminated when len > 0).
 * Returns the number of bytes written (>= 0).
 */
size_t iw_template_render(const char *tmpl, const struct iw_tmpl_var *vars, size_t n_vars,
                          char *buf, size_t len);

/*
 * For config validation: is every "{name}" of tmpl one of the names listed
 * above? On false, *bad (if non-NULL) points into tmpl at the offending '{'.
 */
bool iw_template_check(const char *tmpl, const char **bad);

/*
 * A number as messages show it ({value}, {threshold}): 6 significant digits,
 * trailing zeros dropped, and never an exponent, since limits such as Hg
 * 0.00005 mg/L and counts such as 2400000 per litre must read as written.
 * Values of 1e15 and above or below 1e-12 (no reading is) keep %g's form.
 * Returns buf.
 */
char *iw_template_num(double v, char *buf, size_t len);

#endif /* ISLEWATCH_TEMPLATE_H */
