/* The payload type fuzz_typed decodes (every field type and shape), shared with mkseeds. */
#ifndef BP_FUZZ_TYPES_H
#define BP_FUZZ_TYPES_H

#include <batpak/batpak.h>

#define FZ_FIELDS(F)                                                                               \
    F(ONE, BOOL, b, 0)                                                                             \
    F(ONE, I8, i8, 0)                                                                              \
    F(ONE, I16, i16, 0)                                                                            \
    F(ONE, I32, i32, 0)                                                                            \
    F(ONE, I64, i64, 0)                                                                            \
    F(ONE, U8, u8, 0)                                                                              \
    F(ONE, U16, u16, 0)                                                                            \
    F(ONE, U32, u32, 0)                                                                            \
    F(ONE, U64, u64, 0)                                                                            \
    F(ONE, F32, f32, 0)                                                                            \
    F(ONE, F64, f64, 0)                                                                            \
    F(ONE, STR, s, 20)                                                                             \
    F(ONE, BYTES, by, 8)                                                                           \
    F(OPT, I64, oi, 0)                                                                             \
    F(OPT, STR, os, 4)                                                                             \
    F(ARR, I16, ai, 4)                                                                             \
    F(ARR, F32, af, 2)
BP_TYPE_STATIC(fz_t, FZ_FIELDS, "fuzz.all", BP_KIND(1, 0x77), 1);

#endif
