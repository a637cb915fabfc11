/*
 * A validator for the JSON Schema keywords config/alert.schema.json uses
 * ($ref, type, enum, const, minimum, minLength, pattern, required,
 * properties, additionalProperties), shared by the unit and integration
 * tests so that every alert they see is checked against the same file.
 * Header-only: static functions for Criterion test programs.
 */
#ifndef IW_SCHEMA_CHECK_H
#define IW_SCHEMA_CHECK_H

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==========================================================================
 * A validator for the JSON Schema keywords alert.schema.json uses
 * ======================================================================== */

static inline cJSON *load_schema(void)
{
    const char *src = getenv("IW_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *text;
    long n;
    cJSON *s;

    snprintf(path, sizeof(path), "%s/config/alert.schema.json", src ? src : "../..");
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (set IW_SOURCE_DIR to the source tree)", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = malloc((size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    s = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(s, "%s is not JSON", path);
    return s;
}

static inline bool type_is(const cJSON *v, const char *t)
{
    if (strcmp(t, "object") == 0)  return cJSON_IsObject(v);
    if (strcmp(t, "array") == 0)   return cJSON_IsArray(v);
    if (strcmp(t, "string") == 0)  return cJSON_IsString(v);
    if (strcmp(t, "boolean") == 0) return cJSON_IsBool(v);
    if (strcmp(t, "null") == 0)    return cJSON_IsNull(v);
    if (strcmp(t, "number") == 0)  return cJSON_IsNumber(v);
    if (strcmp(t, "integer") == 0)
        return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble;
    cr_assert_fail("schema uses unknown type %s", t);
    return false;
}

static inline size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Returns NULL when valid, else a static description of the first violation. */
static inline const char *validate(const cJSON *root, const cJSON *schema, const cJSON *v, const char *path)
{
    static char why[512];
    const cJSON *k, *it;

    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "$ref")) != NULL) {
        const char *ref = k->valuestring;
        cr_assert(strncmp(ref, "#/$defs/", 8) == 0, "unsupported $ref %s", ref);
        return validate(root, cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(root, "$defs"), ref + 8), v, path);
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "type")) != NULL) {
        bool ok = false;
        if (cJSON_IsString(k))
            ok = type_is(v, k->valuestring);
        else
            cJSON_ArrayForEach(it, k) ok = ok || type_is(v, it->valuestring);
        if (!ok) {
            snprintf(why, sizeof(why), "%s: wrong type", path);
            return why;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "enum")) != NULL) {
        bool ok = false;
        cJSON_ArrayForEach(it, k) ok = ok || cJSON_Compare(it, v, true);
        if (!ok) {
            snprintf(why, sizeof(why), "%s: not one of the enum values", path);
            return why;
        }
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "const")) != NULL && !cJSON_Compare(k, v, true)) {
        snprintf(why, sizeof(why), "%s: not the const value", path);
        return why;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "minimum")) != NULL && cJSON_IsNumber(v)
        && v->valuedouble < k->valuedouble) {
        snprintf(why, sizeof(why), "%s: below minimum", path);
        return why;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "minLength")) != NULL && cJSON_IsString(v)
        && utf8_len(v->valuestring) < (size_t)k->valueint) {
        snprintf(why, sizeof(why), "%s: shorter than minLength", path);
        return why;
    }
    if ((k = cJSON_GetObjectItemCaseSensitive(schema, "pattern")) != NULL && cJSON_IsString(v)) {
        regex_t re;
        int rc;
        cr_assert_eq(regcomp(&re, k->valuestring, REG_EXTENDED | REG_NOSUB), 0, "pattern %s",
                     k->valuestring);
        rc = regexec(&re, v->valuestring, 0, NULL, 0);
        regfree(&re);
        if (rc != 0) {
            snprintf(why, sizeof(why), "%s: \"%s\" does not match %s", path, v->valuestring,
                     k->valuestring);
            return why;
        }
    }
    if (!cJSON_IsObject(v))
        return NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(schema, "required")) {
        if (cJSON_GetObjectItemCaseSensitive(v, it->valuestring) == NULL) {
            snprintf(why, sizeof(why), "%s: required member %s missing", path, it->valuestring);
            return why;
        }
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *addl = cJSON_GetObjectItemCaseSensitive(schema, "additionalProperties");
    cJSON_ArrayForEach(it, v) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(props, it->string);
        char sub[256];
        const char *r;
        snprintf(sub, sizeof(sub), "%s.%s", path, it->string);
        if (ps == NULL && cJSON_IsFalse(addl)) {
            snprintf(why, sizeof(why), "%s: not allowed (additionalProperties: false)", sub);
            return why;
        }
        if (ps == NULL && cJSON_IsObject(addl))
            ps = addl;
        if (ps != NULL && (r = validate(root, ps, it, sub)) != NULL)
            return r;
    }
    return NULL;
}

#endif
