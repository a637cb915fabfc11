/* Printed JSON numbers read back as the same double (server/json_print.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "islewatch/json_print.h"

/* Every number of doc's printed text parses back to the double it was. */
static void assert_round_trip(cJSON *doc, const double *want, size_t n)
{
    char *text = iw_json_print(doc);
    cr_assert_not_null(text);
    cJSON *back = cJSON_Parse(text);
    cr_assert_not_null(back, "printed text is JSON: %s", text);
    cr_assert_eq((size_t)cJSON_GetArraySize(back), n);
    for (size_t i = 0; i < n; i++) {
        double got = cJSON_GetNumberValue(cJSON_GetArrayItem(back, (int)i));
        cr_assert(memcmp(&got, &want[i], sizeof(got)) == 0, "%.17g printed in %s read back as %.17g",
                  want[i], text, got);
    }
    cJSON_Delete(back);
    free(text);
}

Test(json_print, values_cjson_rounds_read_back_exactly)
{
    const double v[] = { 0.30000000000000004, 9007199254740992.0, -9007199254740990.0,
                         0.1, 7.4, 2.31, 1764417600000.0, 5.5511151231257827e-17,
                         1.7976931348623157e308, 4.9e-324, -0.0, 12, 0.1 + 0.2 + 0.3 };
    size_t n = sizeof(v) / sizeof(v[0]);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[i]));
    assert_round_trip(arr, v, n);
    cJSON_Delete(arr);
}

Test(json_print, many_random_values_read_back_exactly)
{
    enum { N = 20000 };
    static double v[N];
    unsigned seed = 7;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < N; i++) {
        uint64_t bits = (uint64_t)rand_r(&seed) << 33 ^ (uint64_t)rand_r(&seed) << 11
                        ^ (uint64_t)rand_r(&seed);
        memcpy(&v[i], &bits, sizeof(v[i]));
        if (!isfinite(v[i]))
            v[i] = (double)i / 3.0;
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[i]));
    }
    assert_round_trip(arr, v, N);
    cJSON_Delete(arr);
}

Test(json_print, the_tree_is_unchanged_and_plain_values_print_as_cjson_does)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "exact", 0.30000000000000004);
    cJSON_AddNumberToObject(o, "plain", 2.5);
    cJSON_AddStringToObject(o, "s", "x");
    char *mine = iw_json_print(o);
    cr_assert_str_eq(mine, "{\"exact\":0.30000000000000004,\"plain\":2.5,\"s\":\"x\"}");
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "exact")), "a number again after the print");
    cr_assert_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(o, "exact")), 0.30000000000000004);
    cJSON_DeleteItemFromObject(o, "exact");
    char *theirs = cJSON_PrintUnformatted(o);
    char *again = iw_json_print(o);
    cr_assert_str_eq(again, theirs);
    free(mine);
    free(theirs);
    free(again);
    cJSON_Delete(o);
}
