/*
 * Payload decode speed on SPEC §1 payloads: islewatch's scanner against
 * cJSON (parse + walk + free), the best-kept JSON library in Debian 12 that
 * islewatch already uses. Prints ns per message for each payload shape.
 *
 *   build/release/bench/decode_bench [iterations]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "islewatch/clock.h"
#include "islewatch/payload.h"

static const char *const payloads[][2] = {
    { "water", "{\"ts\":1764417600000,\"ph\":7.4,\"do\":6.2,\"codmn\":4.1,\"nh3_n\":0.82,\"tp\":0.15,"
               "\"tn\":1.1,\"temp\":14.2,\"turbidity\":12}" },
    { "air", "{\"ts\":1764417600000,\"pm25\":35,\"pm10\":60,\"so2\":8,\"no2\":30,\"co\":0.6,\"o3\":80}" },
    { "camera", "{\"ts\":1764417600000,\"online\":true,\"fps\":25,\"bitrate_kbps\":2048,\"disk_ok\":true}" },
};

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    static struct iw_decoded d;
    struct iw_payload_opts o = { .ts_field = "ts", .now_ms = 1764417600000LL,
                                 .max_future_skew_ms = 300000 };
    double sink = 0;

    printf("%-8s %14s %14s %8s\n", "payload", "scanner ns/msg", "cJSON ns/msg", "ratio");
    for (size_t k = 0; k < sizeof(payloads) / sizeof(payloads[0]); k++) {
        const char *p = payloads[k][1];
        size_t len = strlen(p);
        int64_t t0 = iw_mono_ns();
        for (long i = 0; i < iters; i++) {
            if (iw_payload_decode(p, len, &o, &d) != -1)
                return 1;
            sink += d.s[0].value;
        }
        int64_t t1 = iw_mono_ns();
        for (long i = 0; i < iters; i++) {
            cJSON *j = cJSON_ParseWithLength(p, len), *it;
            cJSON_ArrayForEach(it, j)
                if (cJSON_IsNumber(it))
                    sink += it->valuedouble;
            cJSON_Delete(j);
        }
        int64_t t2 = iw_mono_ns();
        double a = (double)(t1 - t0) / (double)iters, b = (double)(t2 - t1) / (double)iters;
        printf("%-8s %14.0f %14.0f %7.2fx\n", payloads[k][0], a, b, b / a);
    }
    fprintf(stderr, "(checksum %g)\n", sink);
    return 0;
}
