/* Prints, as JSON, the size of every C struct the Python binding mirrors, the offset and
 * size of each of their fields, and the macros it copies: tests/test_layout.py compiles
 * this against include/ and compares it with batpak/_ffi.py. */
#include <batpak/batpak.h>
#include <stddef.h>
#include <stdio.h>

static int first;

#define BEGIN(T)                                                                                   \
    printf("%s\"%s\": {\"sizeof\": %zu, \"alignof\": %zu, \"fields\": {", first ? "" : ",\n", #T,  \
           sizeof(T), _Alignof(T));                                                                \
    first = 0;                                                                                     \
    {                                                                                              \
        int ff = 1;                                                                                \
        typedef T cur_t;
#define F(f)                                                                                       \
    printf("%s\"%s\": [%zu, %zu]", ff ? "" : ", ", #f, offsetof(cur_t, f),                         \
           sizeof(((cur_t *)0)->f));                                                               \
    ff = 0;
#define END()                                                                                      \
    }                                                                                              \
    printf("}}");
#define MACRO(m)                                                                                   \
    printf("%s\"%s\": %lld", first ? "" : ",\n", #m, (long long)(m));                              \
    first = 0;

/* clang-format off: one line per struct reads best */
int main(void) {
    printf("{\"structs\": {\n");
    first = 1;
    BEGIN(bp_id)
    F(b) END() BEGIN(bp_hash) F(b) END() BEGIN(bp_durability) F(mode) F(every_events) F(
        every_ms) END() BEGIN(bp_open_options) F(struct_size) F(create) F(read_only) F(salvage)
        F(no_open_event) F(segment_size) F(max_payload) F(durability) F(signing_key) F(
            submit_queue) F(seal_payloads) F(on_open) F(on_open_ctx) F(accept_loss) END()
            BEGIN(bp_store_open_report) F(struct_size) F(created) F(checkpoint_used) F(
                checkpoint_note) F(segments) F(footers_used) F(frames_scanned) F(bytes_scanned)
                F(bytes_cut) F(frames_cut) F(events) F(duration_us) F(segments_lost) F(
                    events_lost) F(first_lost_seq) F(loss_note) END() BEGIN(bp_receipt)
                    F(struct_size) F(event_id) F(global_seq) F(clock) F(hlc) F(event_hash) F(
                        durability) F(replayed) F(entity) F(scope) F(kind) F(prev_hash) F(store_id)
                        F(is_signed) F(key_id) F(signature) END() BEGIN(bp_append_options) F(
                            struct_size) F(has_expected_clock) F(expected_clock) F(idempotency_key)
                            F(correlation_id) F(causation_id) F(durability) F(
                                schema_version) END() BEGIN(bp_batch_item) F(entity) F(scope)
                                F(kind) F(payload) F(len) F(opts) END() BEGIN(bp_event) F(
                                    event_id) F(correlation_id) F(causation_id) F(has_causation)
                                    F(global_seq) F(clock) F(hlc) F(kind) F(flags) F(prev_hash) F(
                                        event_hash) F(entity) F(scope)
                                        F(idempotency_key) F(batch_id) F(batch_index) F(batch_count) F(
                                            payload) F(payload_len) F(header_only) F(payload_forgotten)
                                            END() BEGIN(bp_region) F(struct_size) F(entity) F(
                                                entity_prefix) F(scope) F(kinds)
                                                F(n_kinds) F(category) F(from_seq) F(to_seq) F(since_ms) F(
                                                    until_ms) END() BEGIN(bp_store_stats)
                                                    F(struct_size) F(events) F(entities) F(
                                                        scopes) F(segments) F(bytes_on_disk) F(index_bytes)
                                                        F(fsyncs) F(appends) F(write_p50_us) F(
                                                            write_p99_us) F(write_max_us)
                                                            F(failed) F(read_only) F(
                                                                index_file_bytes) F(writer_pid) F(readers) END() BEGIN(bp_entity_info)
                                                                F(struct_size) F(name) F(events) F(
                                                                    clock) END() BEGIN(bp_verify_report)
                                                                    F(struct_size) F(segments) F(frames) F(
                                                                        events) F(entities) F(problems)
                                                                        F(first_problem) END() BEGIN(
                                                                            bp_verify_options)
                                                                            F(struct_size) F(progress) F(
                                                                                progress_ctx) F(on_problem)
                                                                                F(problem_ctx) END() BEGIN(
                                                                                    bp_snapshot_report)
                                                                                    F(struct_size) F(
                                                                                        global_seq)
                                                                                        F(segments) F(
                                                                                            bytes) F(duration_us)
                                                                                            END()
    BEGIN(bp_worker_config) F(struct_size) F(checkpoint_id) F(start_after) F(batch)
    F(checkpoint_every) F(max_attempts) F(backoff_ms) F(backoff_max_ms) F(poison) F(on_poison)
    F(gap_threshold_ms) END()
    BEGIN(bp_delivery) F(ev) F(attempt) F(idem_key) END()
    BEGIN(bp_notice) F(struct_size) F(global_seq) F(clock) F(hlc) F(event_id) F(kind) F(entity)
    F(scope) END()
    printf(
                                                                                                "},"
                                                                                                "\n"
                                                                                                "\""
                                                                                                "ma"
                                                                                                "cr"
                                                                                                "os"
                                                                                                "\""
                                                                                                ": "
                                                                                                "{"
                                                                                                "\n");
    first = 1;
    MACRO(BP_DEFAULT_SEGMENT_SIZE)
    MACRO(BP_MAX_PAYLOAD)
    MACRO(BP_COORD_MAX)
    MACRO(BP_IDEMPOTENCY_KEY_MAX)
    MACRO(BP_BATCH_MAX)
    MACRO(BP_READ_FULL)
    MACRO(BP_READ_INDEX_ONLY)
    MACRO(BP_READ_SEALED)
    MACRO(BP_EVENT_SEALED)
    MACRO(BP_DUR_DEFAULT)
    MACRO(BP_DUR_SYNC)
    MACRO(BP_DUR_EVERY)
    MACRO(BP_DUR_NONE)
    MACRO(BP_OK)
    MACRO(BP_DONE)
    MACRO(BP_VERSION_MAJOR)
    MACRO(BP_VERSION_MINOR)
    MACRO(sizeof(bp_status))
    MACRO(sizeof(bp_durability_mode))
    MACRO(sizeof(bool))
    MACRO(sizeof(size_t))
    MACRO(sizeof(unsigned))
    printf("}}\n");
    return 0;
}
