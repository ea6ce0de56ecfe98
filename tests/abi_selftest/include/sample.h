/* A tiny library for the ABI check's self-test (tests/abi_selftest.sh): built once as the
 * baseline and once per variant below, each a change the check must classify. */
#ifndef BP_SAMPLE_H
#define BP_SAMPLE_H

#include <stdint.h>

typedef struct bp_sample {
    uint32_t struct_size;
#if defined(SAMPLE_REORDER) /* two members swapped: incompatible */
    int64_t b;
    int64_t a;
#elif defined(SAMPLE_RETYPE) /* a member's type changed: incompatible */
    int64_t a;
    int32_t b;
#else
    int64_t a;
    int64_t b;
#endif
#ifdef SAMPLE_APPEND /* a member appended at the end: an addition */
    int64_t c;
#endif
} bp_sample;

typedef enum bp_sample_kind {
    BP_SAMPLE_PLAIN = 0,
#ifdef SAMPLE_ENUM_VALUE /* an enumerator's value changed: incompatible */
    BP_SAMPLE_FANCY = 2
#else
    BP_SAMPLE_FANCY = 1
#endif
} bp_sample_kind;

int bp_sample_sum(const bp_sample *s);
#ifdef SAMPLE_PARAM /* a parameter's type changed: incompatible */
int bp_sample_scale(int64_t x, bp_sample_kind k);
#else
int bp_sample_scale(int x, bp_sample_kind k);
#endif
#ifndef SAMPLE_REMOVE /* a function removed: incompatible */
int bp_sample_old(void);
#endif
#ifdef SAMPLE_ADD /* a function added: an addition */
int bp_sample_new(void);
#endif

#endif
