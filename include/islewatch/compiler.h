/* Compiler helpers shared by every module. */
#ifndef ISLEWATCH_COMPILER_H
#define ISLEWATCH_COMPILER_H

#define IW_NODISCARD   __attribute__((warn_unused_result))
#define IW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define IW_UNUSED      __attribute__((unused))
#define IW_LIKELY(x)   __builtin_expect(!!(x), 1)
#define IW_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define IW_CACHELINE   64
#define IW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* ISLEWATCH_COMPILER_H */
