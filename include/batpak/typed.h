/** @file
 * batpak/typed.h — typed payloads: declare a C struct once, get its MessagePack
 * codec, its JSON form, typed appends and typed reads, and schema upcasting.
 *
 * A payload type is declared from one field list (an X-macro):
 *
 *     #define DEPOSIT_FIELDS(F)            \
 *         F(ONE, I64, amount, 0)           \
 *         F(ONE, STR, memo, 64)            \
 *         F(OPT, U32, branch, 0)           \
 *         F(ARR, I32, tags, 8)
 *     BP_TYPE_STATIC(deposit, DEPOSIT_FIELDS, "bank.deposit", BP_KIND(1, 1), 1);
 *
 * which defines `typedef struct deposit {...} deposit;` and a descriptor
 * `deposit_type` (a bp_type). For a type shared by several files, put
 * BP_TYPE_DECLARE(deposit, DEPOSIT_FIELDS) in a header and
 * BP_TYPE_DEFINE(deposit, DEPOSIT_FIELDS, "bank.deposit", BP_KIND(1, 1), 1) in one .c file.
 *
 * Each entry is F(shape, type, name, n):
 *
 *     shape  ONE  a value:                       T name;
 *            OPT  an optional value:             bool has_name; T name;
 *            ARR  up to n values (not STR/BYTES): uint32_t name_count; T name[n];
 *     type   BOOL I8 I16 I32 I64 U8 U16 U32 U64 F32 F64  (bool, int8_t, ... float, double)
 *            STR    UTF-8 text of at most n bytes:  char name[n + 1], NUL-terminated
 *            BYTES  at most n bytes:                uint32_t name_len; uint8_t name[n]
 *     n      the bound for STR, BYTES and ARR (1..16 MiB); write 0 for the other types.
 *
 * Encoding (doc/FORMAT.md "Typed payloads"): a MessagePack map from field name
 * to value, fields in declaration order, absent optional fields left out. The
 * decoder accepts any valid MessagePack encoding, in any key order; it refuses
 * unknown or repeated keys, missing fields, values of the wrong type or out of
 * range, over-long strings, bytes and arrays, and text that is not UTF-8 or
 * holds a NUL byte, with a message naming the type, the field and the byte
 * offset.
 *
 * Schema versions: an event records the schema version of its payload in the
 * low 8 bits of its flags (bp_event.flags; 0 = not stated, read as the current
 * version). Typed appends write the descriptor's version. A store's registry
 * (bp_register_type) knows the current descriptor of each kind; upcasters
 * (bp_register_upcaster) turn version N into N + 1, and typed reads,
 * projections and JSON rendering chain them up to the current version.
 *
 * Threads: descriptors are immutable. Registration may happen at any time and
 * from any thread; a registered type or upcaster cannot be removed, and its
 * descriptor must outlive the store handle.
 */
#ifndef BATPAK_TYPED_H
#define BATPAK_TYPED_H

#include "read.h"
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Field value types (BP_FT_<type>). */
typedef enum bp_field_type {
    BP_FT_BOOL = 1, /**< bool */
    BP_FT_I8,       /**< int8_t */
    BP_FT_I16,      /**< int16_t */
    BP_FT_I32,      /**< int32_t */
    BP_FT_I64,      /**< int64_t */
    BP_FT_U8,       /**< uint8_t */
    BP_FT_U16,      /**< uint16_t */
    BP_FT_U32,      /**< uint32_t */
    BP_FT_U64,      /**< uint64_t */
    BP_FT_F32,      /**< float */
    BP_FT_F64,      /**< double */
    BP_FT_STR,      /**< UTF-8 text of at most n bytes, NUL-terminated: char name[n + 1] */
    BP_FT_BYTES     /**< at most n bytes: uint32_t name_len; uint8_t name[n] */
} bp_field_type;

/** Field shapes (BP_FS_<shape>). */
typedef enum bp_field_shape { BP_FS_ONE = 1, BP_FS_OPT, BP_FS_ARR } bp_field_shape;
/** @var BP_FS_ONE
 * A value: `T name;` */
/** @var BP_FS_OPT
 * An optional value: `bool has_name; T name;` */
/** @var BP_FS_ARR
 * Up to n values (not STR or BYTES): `uint32_t name_count; T name[n];` */

/** One field of a payload type; the X-macros fill these in. */
typedef struct bp_field {
    const char *name; /**< 1..255 bytes, unique within the type */
    uint8_t type;     /**< bp_field_type */
    uint8_t shape;    /**< bp_field_shape */
    uint32_t n;       /**< STR/BYTES: max bytes; ARR: max elements; else 0 */
    size_t off;       /**< offset of the value (or array / byte buffer) */
    size_t aux_off;   /**< OPT: offset of `has_<name>` (bool); ARR: of `<name>_count` (uint32_t) */
    size_t len_off;   /**< BYTES: offset of `<name>_len` (uint32_t) */
} bp_field;

/** Largest number of fields in one type. */
#define BP_TYPE_FIELDS_MAX 256

/** A payload type: a C struct bound to a kind and a schema version. */
typedef struct bp_type {
    uint32_t struct_size; /**< sizeof(bp_type): BP_TYPE_DEFINE and BP_TYPE_STATIC set it */
    const char *name;     /**< 1..255 bytes, e.g. "bank.deposit"; unique in a registry */
    uint16_t kind;        /**< an application kind (bp_kind_is_application) */
    uint8_t version;      /**< schema version, 1..255 */
    size_t size;          /**< sizeof the struct */
    size_t n_fields;      /**< entries in the field table, at most BP_TYPE_FIELDS_MAX */
    const bp_field *(*fields)(void); /**< the field table (n_fields entries) */
} bp_type;

/**
 * Check a descriptor: name, kind, version, and every field (names unique and
 * non-empty, known type and shape, bounds, offsets inside the struct).
 * Typed appends and bp_register_type check this too. BP_OK or BP_EINVAL.
 */
BP_API bp_status bp_type_check(const bp_type *t);

/** Largest MessagePack encoding of any value of t (from its bounds); 0 if t is invalid. */
BP_API size_t bp_type_encoded_max(const bp_type *t);

/**
 * Encode *value (a struct of type t) into buf (cap bytes); *len receives the
 * encoded length. A buffer of bp_type_encoded_max(t) bytes is always enough.
 * Errors: BP_EINVAL (a string not NUL-terminated within its bound or not
 * UTF-8, a count or length above its bound: the message names the field),
 * BP_ETOOBIG (cap too small; *len receives the size needed).
 */
BP_API bp_status bp_type_encode(const bp_type *t, uint8_t *buf, size_t cap, size_t *len,
                                const void *value);

/**
 * Decode a payload of type t (exactly this schema version) into *out (t->size
 * bytes; zeroed first). Errors: BP_EINVAL with type, field and offset named.
 */
BP_API bp_status bp_type_decode(const bp_type *t, void *out, const void *payload, size_t len);

/**
 * The JSON form of *value: an object with one member per present field
 * (integers as numbers, except u64 values above 2^63-1 as decimal strings;
 * floats as numbers, NaN and infinities as the strings "NaN", "Infinity",
 * "-Infinity"; BYTES as lower-case hex strings; ARR as arrays). *json is NUL-terminated, heap:
 * bp_free it.
 */
BP_API bp_status bp_type_to_json(const bp_type *t, char **json, const void *value);

/* --------------------------------------------------------------- registry */

/**
 * Register t as the current type of its kind in this store. Typed reads,
 * projections and JSON rendering (bp_event_json) use it.
 * Errors: BP_EINVAL (bad descriptor), BP_EEXIST (kind or name already registered).
 */
BP_API bp_status bp_register_type(bp_store *s, const bp_type *t);

/** The registered type of kind, or NULL. */
BP_API const bp_type *bp_registered_type(bp_store *s, uint16_t kind);

/**
 * Converts a decoded value of schema version N (from) into version N + 1 (to).
 * to is zeroed before the call. Return BP_OK, or an error (it stops the read).
 */
typedef bp_status (*bp_upcast_fn)(void *ctx, const void *from, void *to);

/**
 * Register the step from->version -> to->version (= from->version + 1) for
 * their kind, whose current type must already be registered with a version
 * greater than from's. `to` must be the registered type when it has the
 * current version. Steps chain: with 1->2 and 2->3 registered, a version-1
 * payload reads as version 3.
 * Errors: BP_EINVAL (kinds differ, versions not consecutive, kind not
 * registered, bad descriptor), BP_EEXIST (this step already registered).
 */
BP_API bp_status bp_register_upcaster(bp_store *s, const bp_type *from, const bp_type *to,
                                      bp_upcast_fn fn, void *ctx);

/* ------------------------------------------------------- typed append/read */

/** The schema version stored in an event's flags (0 = not stated). */
#define BP_EVENT_SCHEMA_VERSION(flags) ((unsigned)((flags)&0xFF))

/**
 * Encode *value with t and append it with kind t->kind and schema version
 * t->version. opts as bp_append_ex (may be NULL; its schema_version is
 * ignored). Errors: those of bp_type_encode and bp_append_ex.
 */
BP_API bp_status bp_append_typed(bp_store *s, bp_receipt *receipt, const char *entity,
                                 const char *scope, const bp_type *t, const void *value,
                                 const bp_append_options *opts);

/** One item of a typed batch. */
typedef struct bp_typed_item {
    const char *entity;            /**< as bp_batch_item.entity */
    const char *scope;             /**< as bp_batch_item.scope */
    const bp_type *type;           /**< the payload type: gives the kind and schema version */
    const void *value;             /**< the struct to encode (of type->size bytes) */
    const bp_append_options *opts; /**< NULL, or as bp_batch_item.opts */
} bp_typed_item;

/** bp_append_batch of typed items (atomic; any entities, any types). */
BP_API bp_status bp_append_batch_typed(bp_store *s, bp_receipt *receipts,
                                       const bp_typed_item *items, size_t n);

/**
 * Decode ev's payload as type t into *out. ev->kind must be t->kind. When the
 * event's schema version is older than t's, the store's upcasters bring it up
 * to t->version. Errors: BP_EINVAL (wrong kind, payload not read, malformed
 * payload, newer version than t, no upcaster for a step), or the upcaster's error.
 */
BP_API bp_status bp_event_decode(bp_store *s, void *out, const bp_event *ev, const bp_type *t);

/** The events of t's kind in global_seq order, with payloads (bp_by_kind). */
BP_API bp_status bp_by_fact_typed(bp_store *s, bp_iter **out, const bp_type *t);

/**
 * bp_iter_next, then bp_event_decode(t) into *out. On a decode error the
 * iterator has moved past that event (*ev is set) and the error is returned.
 */
BP_API bp_status bp_iter_next_typed(bp_iter *it, const bp_event **ev, void *out, const bp_type *t);

/**
 * The decoded lane: the payload of ev as compact JSON text (UTF-8, NUL-terminated; *json is
 * heap: bp_free it). When ev's kind is registered, the registered type's JSON form
 * (bp_type_to_json), upcast to the current version; otherwise a generic rendering of the
 * MessagePack value (maps with string keys, arrays, strings, numbers, bools, nil); s may be
 * NULL for that. An empty payload is JSON null. Errors: BP_EINVAL (read without payload,
 * malformed, or a value with no JSON form: bin, ext, non-UTF-8 text, non-string or repeated
 * map keys, arrays and maps nested more than 2047 deep, which JSON readers refuse),
 * BP_ENOMEM.
 */
BP_API bp_status bp_event_json(bp_store *s, char **json, const bp_event *ev);

/**
 * Record t's descriptor in the store (doc/FORMAT.md "Stored schemas"): a SYSTEM_SCHEMA event
 * of the entity batpak:schema, appended durably, which every process reading the store then
 * uses. bp_event_json (so the CLI and the Python binding) renders a payload of a kind no
 * registered type answers for with the stored descriptor of the event's schema version (its
 * newest when the event states none), and `batpak schema` lists them. Record each version of a
 * type (old versions too: readers decode each event with its own). A descriptor already
 * stored as it is writes nothing (*receipt's global_seq 0). receipt may be NULL.
 * Errors: BP_EINVAL (t invalid: bp_type_check), BP_EREADONLY, BP_EEXIST (the store holds
 * another descriptor of that kind and version, or the name for another kind, or the kind
 * under another name: the message names both), the append's errors. Since 1.4.
 */
BP_API bp_status bp_schema_record(bp_store *s, bp_receipt *receipt, const bp_type *t);

/**
 * bp_schema_record of a descriptor given as JSON text (len bytes): an object {"name", "kind",
 * "version", "fields": [{"name", "type", "shape", "n"}]} as bp_schema_json lists them, so that
 * a program in another language (the Python binding, `batpak schema --record`) records its
 * types. Errors: bp_schema_record's, and BP_EINVAL for text that is not such a descriptor of a
 * valid type (the message says why). Since 1.4.
 */
BP_API bp_status bp_schema_record_json(bp_store *s, bp_receipt *receipt, const char *json,
                                       size_t len);

/**
 * The descriptors the store holds, as compact JSON (UTF-8, NUL-terminated; *json is heap:
 * bp_free it): an array, in the order recorded, of {"name", "kind", "version", "fields":
 * [{"name", "type", "shape", "n"}]} (type: "bool", "int8" ... "float64", "string", "bytes";
 * shape: "one", "opt", "arr"). Errors: BP_EINVAL (NULL argument), BP_ENOMEM, a read's errors.
 * Since 1.4.
 */
BP_API bp_status bp_schema_json(bp_store *s, char **json);

/**
 * The JSON Schema (draft 2020-12) of the JSON form (bp_event_json) of the stored type of kind
 * at version (0: its newest): an object with every field, the optional ones not required,
 * nothing else allowed; 64-bit integers may be decimal strings, floats "NaN" / "Infinity" /
 * "-Infinity", bytes lower-case hex. *json is heap (bp_free). Errors: BP_EINVAL,
 * BP_ENOTFOUND (no such stored type), BP_ENOMEM. Since 1.4.
 */
BP_API bp_status bp_schema_json_schema(bp_store *s, char **json, uint16_t kind, unsigned version);

/**
 * Encode the JSON text json as a payload of the stored type of kind (at its newest version),
 * checked against it: *out (heap, bp_free) receives the type's MessagePack form, the
 * version it has in *version. A kind the store holds no schema for: BP_ENOTFOUND (the
 * payload is then any JSON: bp_json_to_msgpack). Errors: BP_EINVAL (not JSON, or not a value
 * of the type: the message names the field and why), BP_ENOTFOUND, BP_ENOMEM. Since 1.4.
 */
BP_API bp_status bp_schema_encode_json(bp_store *s, uint8_t **out, size_t *out_len,
                                       unsigned *version, uint16_t kind, const char *json,
                                       size_t len);

/**
 * The MessagePack form of the JSON text json (len bytes of UTF-8, one value, blanks around it
 * allowed; a NUL inside a string is kept): what `batpak append` and the Python binding store
 * for a JSON payload, and what bp_event_json renders back. An object becomes a map with string
 * keys in the text's order, an array an array, a string a str, true/false/null bool and nil,
 * an integer (within int64) the shortest int encoding, any other number a float64. *out is
 * heap (bp_free it), *out_len its length; both are NULL/0 on error.
 * Errors: BP_EINVAL (a NULL argument; an empty text; text that is not one JSON value, a
 * repeated key or an integer out of range: the message gives the line, column and reason),
 * BP_ENOMEM. Since 1.4.
 */
BP_API bp_status bp_json_to_msgpack(uint8_t **out, size_t *out_len, const char *json, size_t len);

/* ------------------------------------------------------------ the X-macros */

/* Helpers of the X-macros below: their expansion is internal, not API. */
/** @cond INTERNAL */
#define BP__CT_BOOL bool
#define BP__CT_I8 int8_t
#define BP__CT_I16 int16_t
#define BP__CT_I32 int32_t
#define BP__CT_I64 int64_t
#define BP__CT_U8 uint8_t
#define BP__CT_U16 uint16_t
#define BP__CT_U32 uint32_t
#define BP__CT_U64 uint64_t
#define BP__CT_F32 float
#define BP__CT_F64 double

#define BP__DECL_BOOL(name, n) bool name
#define BP__DECL_I8(name, n) int8_t name
#define BP__DECL_I16(name, n) int16_t name
#define BP__DECL_I32(name, n) int32_t name
#define BP__DECL_I64(name, n) int64_t name
#define BP__DECL_U8(name, n) uint8_t name
#define BP__DECL_U16(name, n) uint16_t name
#define BP__DECL_U32(name, n) uint32_t name
#define BP__DECL_U64(name, n) uint64_t name
#define BP__DECL_F32(name, n) float name
#define BP__DECL_F64(name, n) double name
#define BP__DECL_STR(name, n) char name[(n) + 1]
#define BP__DECL_BYTES(name, n)                                                                    \
    uint32_t name##_len;                                                                           \
    uint8_t name[n]

#define BP__M_ONE(T, name, n) BP__DECL_##T(name, n);
#define BP__M_OPT(T, name, n)                                                                      \
    bool has_##name;                                                                               \
    BP__DECL_##T(name, n);
#define BP__M_ARR(T, name, n)                                                                      \
    uint32_t name##_count;                                                                         \
    BP__CT_##T name[n];
#define BP__MEMBER(shape, T, name, n) BP__M_##shape(T, name, n)

#define BP__AUX_ONE(name) 0
#define BP__AUX_OPT(name) offsetof(bp__self, has_##name)
#define BP__AUX_ARR(name) offsetof(bp__self, name##_count)
#define BP__LEN_BOOL(name) 0
#define BP__LEN_I8(name) 0
#define BP__LEN_I16(name) 0
#define BP__LEN_I32(name) 0
#define BP__LEN_I64(name) 0
#define BP__LEN_U8(name) 0
#define BP__LEN_U16(name) 0
#define BP__LEN_U32(name) 0
#define BP__LEN_U64(name) 0
#define BP__LEN_F32(name) 0
#define BP__LEN_F64(name) 0
#define BP__LEN_STR(name) 0
#define BP__LEN_BYTES(name) offsetof(bp__self, name##_len)
#define BP__FIELD(shape, T, name, n)                                                               \
    {#name,                                                                                        \
     BP_FT_##T,                                                                                    \
     BP_FS_##shape,                                                                                \
     (n),                                                                                          \
     offsetof(bp__self, name),                                                                     \
     BP__AUX_##shape(name),                                                                        \
     BP__LEN_##T(name)},
#define BP__COUNT(shape, T, name, n) +1
#if defined(__GNUC__)
#define BP__MAYBE_UNUSED __attribute__((unused))
#else
#define BP__MAYBE_UNUSED
#endif
/** @endcond */

/** The struct of a payload type: `typedef struct tname {...} tname;` */
#define BP_TYPE_STRUCT(tname, FIELDS)                                                              \
    typedef struct tname {                                                                         \
        FIELDS(BP__MEMBER)                                                                         \
    } tname

/** @cond INTERNAL */
#define BP__TYPE_BODY(storage, tname, FIELDS, type_name, type_kind, type_version)                  \
    static const bp_field *tname##__fields(void) {                                                 \
        typedef tname bp__self;                                                                    \
        static const bp_field f[] = {FIELDS(BP__FIELD)};                                           \
        return f;                                                                                  \
    }                                                                                              \
    storage const bp_type tname##_type = {                                                         \
        (uint32_t)sizeof(bp_type), (type_name),    (type_kind), (type_version), sizeof(tname),     \
        0 FIELDS(BP__COUNT),       tname##__fields}
/** @endcond */

/** In a header: the struct and `extern const bp_type tname_type;`. */
#define BP_TYPE_DECLARE(tname, FIELDS)                                                             \
    BP_TYPE_STRUCT(tname, FIELDS);                                                                 \
    extern const bp_type tname##_type

/** In one .c file, after BP_TYPE_DECLARE: the descriptor tname_type. */
#define BP_TYPE_DEFINE(tname, FIELDS, type_name, type_kind, type_version)                          \
    BP__TYPE_BODY(, tname, FIELDS, type_name, type_kind, type_version)

/** Struct and a file-local (static) descriptor tname_type, in one go. */
#define BP_TYPE_STATIC(tname, FIELDS, type_name, type_kind, type_version)                          \
    BP_TYPE_STRUCT(tname, FIELDS);                                                                 \
    BP__TYPE_BODY(static BP__MAYBE_UNUSED, tname, FIELDS, type_name, type_kind, type_version)

#ifdef __cplusplus
}
#endif
#endif
