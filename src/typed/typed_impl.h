/*
 * typed_impl.h — internal: the payload-type registry, the upcasting decoder and
 * the JSON renderers shared by typed reads, projections and the replay lanes.
 */
#ifndef BP_TYPED_IMPL_H
#define BP_TYPED_IMPL_H

#include "api/modules.h"
#include "batpak/project.h"
#include "batpak/typed.h"
#include "store/store.h"

#include <jansson.h>
#include <pthread.h>

/* A type made from a stored descriptor (schema.c): fields is the marker bp__stored_fields and
 * fs the table. */
const bp_field *bp__stored_fields(void);
typedef struct bp_stored_type {
    bp_type t; /* (first: a bp_type * to it is one to this) */
    bp_field *fs;
} bp_stored_type;

static inline const bp_field *bp_type_fields(const bp_type *t) {
    if (!t->n_fields || !t->fields) return NULL;
    return t->fields == bp__stored_fields ? ((const bp_stored_type *)t)->fs : t->fields();
}

/* A handle's stored schemas (schema.c): the valid descriptors of batpak:schema's events up to
 * clock, in order (bad: those that were not valid). Entries never change or go away. */
typedef struct bp_schemas {
    bp_stored_type **v;
    size_t n;
    uint64_t clock, bad;
} bp_schemas;
void bp_schemas_free(bp_schemas *l);
/* The list, brought up to what the store has published, held until bp_schemas_unlock. */
bp_status bp_schemas_lock(bp_store *s, bp_schemas **out);
void bp_schemas_unlock(bp_store *s);
/* The stored type of kind at version (0: its newest), or NULL. */
const bp_type *bp_schemas_find(const bp_schemas *l, uint16_t kind, unsigned version);
const char *bp_field_type_name(unsigned type);
/* Bytes one value of a scalar field type (not STR/BYTES) takes in the struct. */
size_t bp_field_scalar_size(unsigned type);
/* bp_type_decode of a descriptor that bp_type_check accepted (the check costs more than a
 * small payload's decode: the hot paths check once, up front). */
bp_status bp_type_decode_checked(const bp_type *t, const void *payload, size_t len, void *out);

/* One upcasting step of a kind: from->version -> from->version + 1. */
typedef struct bp_upstep {
    const bp_type *from, *to;
    bp_upcast_fn fn;
    void *ctx;
} bp_upstep;

/* A registered kind. Invariants: type never changes once published; up[v] is
 * written once (NULL -> step, under the registry mutex, release-stored) and
 * read lock-free with acquire loads; up[v]->from->version == v. */
typedef struct bp_kindreg {
    const bp_type *type;
    bp_upstep *up[256];
    struct bp_kindreg *next; /* every kindreg, for names and freeing [mu] */
} bp_kindreg;

/* Per store. cat[c] is NULL or 4096 kindreg pointers for category c, both
 * published with release stores and read lock-free. Registration takes mu. */
typedef struct bp_registry {
    pthread_mutex_t mu;
    bp_kindreg **cat[16];
    bp_kindreg *all; /* [mu] */
} bp_registry;

bp_status bp_registry_new(bp_registry **out);
void bp_registry_free(bp_registry *r);
/* The registered kind, or NULL. Lock-free. */
const bp_kindreg *bp_registry_find(const bp_registry *r, uint16_t kind);

/* Decode a payload of kind with schema version `version` (0: not stated) as
 * type t (checked), chaining the registry's upcasters when version < t->version. */
bp_status bp_decode_versioned(const bp_registry *r, uint16_t kind, unsigned version,
                              const uint8_t *p, size_t n, const bp_type *t, void *out);

/* The payload of ev as a JSON value (jansson; bp_event_json gives it as text): a new
 * reference. Errors as bp_event_json's. */
bp_status bp_event_json_value(bp_store *s, const bp_event *ev, json_t **out);
/* JSON values (jansson); NULL on OOM or when the bytes have no JSON form. */
json_t *bp_json_from_msgpack(const uint8_t *p, size_t n);
bp_status bp_type_json_value(const bp_type *t, const void *value, json_t **out);

/* The projection cache of a store (project.c). */
typedef struct bp_projcache bp_projcache;
bp_status bp_projcache_new(bp_projcache **out);
void bp_projcache_free(bp_projcache *c);
/* Drop every cached state of entity and delete its persisted projection snapshots
 * (bp_forget: they were folded from payloads that are gone). */
bp_status bp_projection_forget(bp_store *s, const char *entity);
/* bp_event_decode with t already checked. */
bp_status bp_event_decode_checked(bp_store *s, const bp_event *ev, const bp_type *t, void *out);
/* BP_OK, or BP_EINVAL naming what is wrong with p or entity. */
bp_status bp_projection_check(const bp_projection *p, const char *entity);

/* Watchers (watch.c): stop and free every watcher of s (close). */
void bp_watch_stop_all(bp_store *s);

/* The typed module's state of a store (module BP_MOD_TYPED, api/modules.h). */
typedef struct bp_typed_state {
    bp_registry *reg;          /* payload types and upcasters; never NULL */
    bp_projcache *pc;          /* projection cache (project.c); never NULL */
    pthread_mutex_t watch_mu;  /* the watchers list (never held across a wait) */
    struct bp_watch *watches;  /* [watch_mu] watchers running (watch.c) */
    pthread_mutex_t schema_mu; /* the stored schemas (schema.c) */
    bp_schemas schemas;        /* [schema_mu] */
} bp_typed_state;

extern const bp_store_module bp_typed_module;

static inline bp_typed_state *bp_typed_of(const bp_store *s) {
    return (bp_typed_state *)bp_store_module_state(s, BP_MOD_TYPED);
}

#endif
