/* The library of tests/abi_selftest/include/sample.h (see there). */
#include "sample.h"

int bp_sample_sum(const bp_sample *s) {
    return (int)(s->a + s->b);
}

#ifdef SAMPLE_PARAM
int bp_sample_scale(int64_t x, bp_sample_kind k) {
    return (int)x * (int)k;
}
#else
int bp_sample_scale(int x, bp_sample_kind k) {
    return x * (int)k;
}
#endif

#ifndef SAMPLE_REMOVE
int bp_sample_old(void) {
    return 1;
}
#endif

#ifdef SAMPLE_ADD
int bp_sample_new(void) {
    return 2;
}
#endif
