/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exact numbers in printed JSON (see islewatch/json_print.h). A number whose
 * 15-digit text is not exact (cJSON prints that one itself) becomes, for the time of the print, a cJSON_Raw
 * node holding the exact text; cJSON prints raw text as it is. The nodes are
 * turned back into numbers afterwards (valuedouble is never touched), so a
 * caller may go on reading the tree.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/json_print.h"

struct changed {
    cJSON **node;
    size_t n, cap;
};

double iw_num_round_sig(double v, int digits)
{
    char buf[40];
    if (!isfinite(v))
        return v;
    snprintf(buf, sizeof(buf), "%.*g", digits, v);
    return strtod(buf, NULL);
}

cJSON *iw_json_parse_whole(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);

    if (doc == NULL)
        return NULL;
    for (; end < text + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r') {
            cJSON_Delete(doc);                 /* a second value, or garbage */
            return NULL;
        }
    }
    return doc;
}

int iw_num_shortest(double v, char *buf, size_t len)
{
    for (int prec = 15; prec < 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return prec;
    }
    snprintf(buf, len, "%.17g", v);            /* always reads back */
    return 17;
}

static void make_exact(cJSON *n, struct changed *c)
{
    char buf[40];

    for (; n != NULL; n = n->next) {
        if (cJSON_IsNumber(n) && isfinite(n->valuedouble)
            && iw_num_shortest(n->valuedouble, buf, sizeof(buf)) > 15) {
            if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 16;
                cJSON **g = realloc(c->node, cap * sizeof(*g));
                if (g == NULL)
                    continue;                  /* out of memory: cJSON's own text */
                c->node = g;
                c->cap = cap;
            }
            char *s = strdup(buf);
            if (s == NULL)
                continue;
            n->type = cJSON_Raw | (n->type & ~0xFF);   /* keeps cJSON_StringIsConst */
            n->valuestring = s;
            c->node[c->n++] = n;
        }
        if (n->child != NULL)
            make_exact(n->child, c);
    }
}

char *iw_json_print(cJSON *doc)
{
    struct changed c = { 0 };
    char *text;

    make_exact(doc, &c);
    text = cJSON_PrintUnformatted(doc);
    for (size_t i = 0; i < c.n; i++) {
        free(c.node[i]->valuestring);
        c.node[i]->valuestring = NULL;
        c.node[i]->type = cJSON_Number | (c.node[i]->type & ~0xFF);
    }
    free(c.node);
    return text;
}
