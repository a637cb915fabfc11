/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json_print — cJSON_PrintUnformatted with numbers that read back exactly.
 *
 * cJSON prints a number with "%1.15g" unless that text reads back outside a
 * relative epsilon of it; the test lets a value one unit in the last place
 * away pass, so 0.30000000000000004 came out as 0.3 and 9007199254740993-like
 * magnitudes lost their last digit: a stored value did not read back as
 * itself. iw_json_print writes each number as the shortest of %.15g, %.16g
 * and %.17g that strtod turns back into the same double; the tree is left
 * as it was. Returns malloc'd text (free()), or NULL when out of memory.
 */
#ifndef ISLEWATCH_JSON_PRINT_H
#define ISLEWATCH_JSON_PRINT_H

#include <stddef.h>

#include <cjson/cJSON.h>

char *iw_json_print(cJSON *doc);

/* The shortest of v's %.15g, %.16g and %.17g texts that strtod reads back as
 * v, into buf (32 bytes suffice); returns the precision used. */
int iw_num_shortest(double v, char *buf, size_t len);

/* v rounded to `digits` significant decimal digits (non-finite v as it is):
 * a sum or mean of decimal samples read as the decimals they were written in,
 * 0.3 rather than 0.30000000000000004 at 15 digits. */
double iw_num_round_sig(double v, int digits);

/* text[0..len) parsed as one JSON value with nothing after it but whitespace;
 * NULL when it is not (cJSON_Delete the result). cJSON_ParseWithLength stops
 * after the first value and ignores the rest, so a request body such as
 * {"by":"ops"}{"comment":"..."} would read as {"by":"ops"}. */
cJSON *iw_json_parse_whole(const char *text, size_t len);

#endif
