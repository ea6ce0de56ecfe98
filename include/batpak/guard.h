/** @file
 * batpak/guard.h — gates, gate sets, the evaluate -> commit pipeline, and
 * persisted denials.
 *
 *     proposal --evaluate(gate set)--> verdict: allowed (a receipt) or denied
 *     allowed verdict --bp_commit--> the caller's commit function (default: append)
 *     denied verdict  --bp_append_denial--> a SYSTEM_DENIAL event in the entity chain
 *
 * A gate is a name, an evaluate function and user data. It sees the proposal
 * (coordinate, kind, payload bytes, append options, caller context) and the
 * store (it may read it, e.g. stream the entity to compute a balance), and
 * allows or denies with a code and a message.
 *
 * An allowed verdict is the only way to reach bp_commit: it is opaque,
 * single-use, bound to the store it was evaluated on and to a BLAKE3 digest of
 * the proposal it approved (doc/FORMAT.md "Proposal digest"). Committing it
 * twice, on another store, or with a proposal that differs in any byte fails
 * with BP_EINVAL and runs nothing. It also records the entity's head clock
 * seen at evaluation: the default commit appends with that clock as the CAS
 * expectation (unless the proposal sets its own), so when another append to
 * the entity lands between evaluate and commit, commit fails with
 * BP_ECONFLICT instead of committing on a decision made about stale state.
 * Evaluate again and retry.
 *
 * Threads: a gate set is immutable once built and may be shared by threads
 * that evaluate concurrently (its gates must then be thread-safe). A verdict
 * may be committed from any thread; of two concurrent commits one wins.
 */
#ifndef BATPAK_GUARD_H
#define BATPAK_GUARD_H

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest gate name, in bytes. */
#define BP_GATE_NAME_MAX 63
/** Longest denial message, in bytes (longer messages are cut at a UTF-8 boundary). */
#define BP_DENIAL_MESSAGE_MAX 255

/** What is proposed: one event, exactly as bp_append_ex would take it. */
typedef struct bp_proposal {
    uint32_t struct_size; /**< sizeof(bp_proposal), set by BP_PROPOSAL_INIT */
    const char *entity;   /**< as bp_append_ex: 1..255 bytes, not starting with "batpak:" */
    const char *scope;    /**< 1..255 bytes */
    uint16_t kind;        /**< an application kind */
    const void *payload;  /**< len bytes; may be NULL when len is 0 */
    size_t len;           /**< payload length, at most the store's max_payload */
    const bp_append_options *opts; /**< NULL = defaults; part of the digest except durability */
    void *context; /**< the caller's context for gates (who asks, a request...). Not part of the
                        digest: it is not written */
} bp_proposal;

/** A bp_proposal to fill: struct_size set, the rest zero. */
#define BP_PROPOSAL_INIT                                                                           \
    { (uint32_t)sizeof(bp_proposal), NULL, NULL, 0, NULL, 0, NULL, NULL }

/** A denial: which gate, a code of the gate's choosing, and why. */
typedef struct bp_denial {
    char gate[BP_GATE_NAME_MAX + 1];         /**< the gate's name, NUL-terminated */
    int32_t code;                            /**< the gate's code; its meaning is the gate's */
    char message[BP_DENIAL_MESSAGE_MAX + 1]; /**< why, UTF-8, NUL-terminated */
} bp_denial;

/**
 * A gate's evaluate function. Return BP_OK to allow, or deny by returning
 * bp_deny(deny, code, ...). Any other negative status is a failure of the
 * gate itself (it could not read the store...): evaluation stops and
 * bp_evaluate returns that status. deny->gate is filled by the library.
 */
typedef bp_status (*bp_gate_fn)(void *ctx, bp_store *s, const bp_proposal *p, bp_denial *deny);

/** Fill deny with code and a printf-style message; returns BP_EDENIED. */
BP_API bp_status bp_deny(bp_denial *deny, int32_t code, const char *fmt, ...) BP_PRINTF(3, 4);

/* -------------------------------------------------------------- gate sets */

/**
 * An ordered set of gates. Opaque; built with bp_gate_set_new and bp_gate_set_add, then
 * only read (see the file comment); freed with bp_gate_set_free.
 */
typedef struct bp_gate_set bp_gate_set;

/** A new, empty gate set (an empty set allows everything). */
BP_API bp_status bp_gate_set_new(bp_gate_set **out);
/** Most gates in one set. */
#define BP_GATES_MAX 64

/**
 * Add a gate at the end (gates run in the order added). name: 1..63 bytes,
 * unique in the set (BP_EEXIST otherwise). fn must not be NULL. A set holds
 * at most BP_GATES_MAX gates (BP_ETOOBIG).
 */
BP_API bp_status bp_gate_set_add(bp_gate_set *gs, const char *name, bp_gate_fn fn, void *ctx);
/** Number of gates. */
BP_API size_t bp_gate_set_count(const bp_gate_set *gs);
/** Accepts NULL. */
BP_API void bp_gate_set_free(bp_gate_set *gs);

/* ------------------------------------------------------------ evaluation */

/** Evaluation modes. */
#define BP_EVAL_FAIL_FAST 0u   /**< stop at the first denial (default) */
#define BP_EVAL_COLLECT_ALL 1u /**< run every gate and return every denial */

/**
 * The outcome of bp_evaluate: allowed (usable once by bp_commit) or denied (usable once by
 * bp_append_denial). Opaque; freed with bp_verdict_free.
 */
typedef struct bp_verdict bp_verdict;

/**
 * Run the gates of gs, in order, on proposal p against store s.
 *
 * Returns BP_OK with an allowed verdict, BP_EDENIED with a denied one
 * (bp_last_error names the first gate, its code and message), or another
 * error with *out NULL: an invalid proposal (BP_EINVAL, checked like an append
 * before any gate runs; BP_ETOOBIG) or a gate that failed (its status).
 * Free the verdict with bp_verdict_free.
 */
BP_API bp_status bp_evaluate(bp_store *s, bp_verdict **out, const bp_gate_set *gs,
                             const bp_proposal *p, unsigned mode);

/** True for an allowed verdict (a receipt that bp_commit accepts once). */
BP_API bool bp_verdict_allowed(const bp_verdict *v);
/** The denials of a denied verdict in gate order (0 and NULL when allowed). */
BP_API size_t bp_verdict_denials(const bp_verdict *v, const bp_denial **out);
/** How many gates ran. */
BP_API size_t bp_verdict_gates_run(const bp_verdict *v);
/** The digest of the evaluated proposal (doc/FORMAT.md "Proposal digest"). */
BP_API void bp_verdict_digest(const bp_verdict *v, bp_hash *out);
/** The entity's head clock when the gates ran (0: no events). */
BP_API uint64_t bp_verdict_head_clock(const bp_verdict *v);
/** True once bp_commit has consumed the verdict. */
BP_API bool bp_verdict_used(const bp_verdict *v);
/** Accepts NULL. */
BP_API void bp_verdict_free(bp_verdict *v);

/** BLAKE3 digest of a proposal as the verdict binds it (doc/FORMAT.md). */
BP_API bp_status bp_proposal_digest(const bp_proposal *p, bp_hash *out);

/**
 * A commit function: persist p and fill receipt. opts are p's options with
 * expected_clock set to the head clock seen at evaluation (when p set none).
 */
typedef bp_status (*bp_commit_fn)(void *ctx, bp_store *s, const bp_proposal *p,
                                  const bp_append_options *opts, bp_receipt *receipt);

/**
 * Commit an allowed verdict: check it (allowed, not used, same store, p's
 * digest equals the evaluated one), mark it used, then call fn(ctx, ...), or
 * append p when fn is NULL. The verdict is used up whether or not fn succeeds.
 * receipt may be NULL.
 * Errors: BP_EINVAL (NULL verdict, denied, already used, another store's, or
 * p differs from the evaluated proposal: nothing runs), BP_ECONFLICT (the
 * entity moved since evaluation: evaluate again), and fn's / the append's errors.
 */
BP_API bp_status bp_commit(bp_store *s, bp_receipt *receipt, bp_verdict *v, const bp_proposal *p,
                           bp_commit_fn fn, void *ctx);

/* -------------------------------------------------------- persisted denials */

/**
 * What bp_append_denial wrote. *event is the append receipt of the SYSTEM_DENIAL event (its
 * coordinate is the proposal's); the rest is the denial. When the store signs receipts, *event
 * is signed as an append receipt and the whole denial receipt is signed too
 * (bp_denial_signing_bytes, which reads *event: a denial receipt without it cannot be
 * verified). The caller points event at a bp_receipt made with BP_RECEIPT_INIT, or leaves it
 * NULL when it does not want it.
 */
typedef struct bp_denial_receipt {
    uint32_t struct_size;    /**< sizeof(bp_denial_receipt), set by BP_DENIAL_RECEIPT_INIT */
    bp_receipt *event;       /**< NULL, or the append receipt of the SYSTEM_DENIAL event */
    uint16_t denied_kind;    /**< the kind that was proposed */
    bp_hash proposal_digest; /**< bp_proposal_digest of the denied proposal */
    uint32_t n_denials;      /**< denials recorded in the event (collect-all: several) */
    bp_denial denial;        /**< the first one */
    bool is_signed;          /**< key_id and signature are set (the store signs receipts) */
    uint8_t key_id[32];      /**< BLAKE3 of the signing public key (when is_signed) */
    uint8_t signature[64];   /**< Ed25519 over bp_denial_signing_bytes (when is_signed) */
} bp_denial_receipt;

/** A bp_denial_receipt to fill: struct_size set, the rest zero. */
#define BP_DENIAL_RECEIPT_INIT                                                                     \
    {                                                                                              \
        (uint32_t)sizeof(bp_denial_receipt), NULL, 0, {{0}}, 0, {{0}, 0, {0}}, false, {0}, {       \
            0                                                                                      \
        }                                                                                          \
    }

/**
 * Persist a denied verdict as a SYSTEM_DENIAL event at the proposal's
 * coordinate, in the entity's hash chain, so audits see what was refused. Its
 * payload (doc/FORMAT.md "SYSTEM_DENIAL payload") holds the denied kind, the
 * proposal digest and every denial. Durable (fdatasynced) before return.
 * p must be the evaluated proposal (digest checked). Like a commit, this uses
 * the verdict up: a denial is persisted once. out may be NULL.
 * Errors: BP_EINVAL (allowed verdict, already used, other store, p differs),
 * write errors.
 */
BP_API bp_status bp_append_denial(bp_store *s, bp_denial_receipt *out, bp_verdict *v,
                                  const bp_proposal *p);

/** Most denials one SYSTEM_DENIAL payload carries (one per gate: BP_GATES_MAX). */
#define BP_DENIALS_MAX BP_GATES_MAX

/** A SYSTEM_DENIAL event's payload, decoded. */
typedef struct bp_denial_record {
    uint32_t struct_size;    /**< sizeof(bp_denial_record), set by BP_DENIAL_RECORD_INIT */
    uint16_t denied_kind;    /**< the kind that was proposed */
    bp_hash proposal_digest; /**< bp_proposal_digest of the denied proposal */
    uint32_t n_denials;      /**< denials in the payload (<= BP_DENIALS_MAX) */
    bp_denial denials[BP_DENIALS_MAX]; /**< denials[0..n_denials), in gate order */
} bp_denial_record;

/** A bp_denial_record to fill: struct_size set, the rest zero. */
#define BP_DENIAL_RECORD_INIT                                                                      \
    {                                                                                              \
        (uint32_t)sizeof(bp_denial_record), 0, {{0}}, 0, {                                         \
            {                                                                                      \
                {0}, 0, {                                                                          \
                    0                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

/** Decode a SYSTEM_DENIAL payload (e.g. bp_event.payload). BP_EINVAL if malformed. */
BP_API bp_status bp_denial_record_decode(bp_denial_record *out, const void *payload, size_t len);

#ifdef __cplusplus
}
#endif
#endif
