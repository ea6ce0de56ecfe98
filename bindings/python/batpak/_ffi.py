"""ctypes mirror of the public C API of libbatpak (include/batpak/*.h).

Every Structure below copies its C struct field by field, in order, with the
same types; tests/test_layout.py compiles a C program against the headers and
checks every size and offset, and the constants, against this module.
Only the functions the binding uses are declared.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)

# The header version this mirror was written from (common.h BP_VERSION_*).
HEADER_VERSION = (1, 4)

# ------------------------------------------------------------ header macros
BP_DEFAULT_SEGMENT_SIZE = 64 << 20
BP_MAX_PAYLOAD = 16 << 20
BP_COORD_MAX = 255
BP_IDEMPOTENCY_KEY_MAX = 255
BP_BATCH_MAX = 65535
BP_CURSOR_BATCH_MAX = 4096      # deliver.h: bp_cursor_next max is 1..4096
BP_READ_FULL = 0
BP_READ_INDEX_ONLY = 1
BP_READ_SEALED = 2
BP_EVENT_SEALED = 0x0100

# bp_durability_mode (an enum: int-sized)
BP_DUR_DEFAULT = 0
BP_DUR_SYNC = 1
BP_DUR_EVERY = 2
BP_DUR_NONE = 3

# bp_status values that are not errors
BP_OK = 0
BP_DONE = 1
BP_UNCHANGED = 2
BP_ETIMEDOUT = -16  # a wait ran out (bp_cursor_next with nothing new in time)
BP_ENOTFOUND = -2  # (bp_schema_encode_json: the store holds no type for the kind)

c_enum = c_int  # bp_status, bp_durability_mode: enums, int-sized on every supported ABI


# ---------------------------------------------------------------- callbacks
# void (*bp_progress_fn)(void *ctx, uint64_t done, uint64_t total)
PROGRESS_FN = CFUNCTYPE(None, c_void_p, c_uint64, c_uint64)
# void (*bp_problem_fn)(void *ctx, const char *entity, const char *problem)
PROBLEM_FN = CFUNCTYPE(None, c_void_p, c_char_p, c_char_p)

# ------------------------------------------------------------------ structs
class Sized(Structure):
    """A struct that starts with uint32_t struct_size (doc/API.md rule 6): a new one has it
    set to its size, as the C BP_X_INIT macros do. Elements of a ctypes array are not made
    through __init__: set element 0's struct_size (the stride) by hand."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)
        self.struct_size = ctypes.sizeof(self)


class BpId(Structure):
    _fields_ = [("b", c_uint8 * 16)]


class BpHash(Structure):
    _fields_ = [("b", c_uint8 * 32)]


class BpDurability(Structure):
    _fields_ = [
        ("mode", c_enum),
        ("every_events", c_uint32),
        ("every_ms", c_uint32),
    ]


class BpOpenOptions(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("create", c_bool),
        ("read_only", c_bool),
        ("salvage", c_bool),
        ("no_open_event", c_bool),
        ("segment_size", c_uint32),
        ("max_payload", c_uint32),
        ("durability", BpDurability),
        ("signing_key", c_void_p),  # const struct bp_signing_key *: not wrapped, NULL
        ("submit_queue", c_uint32),
        ("seal_payloads", c_bool),
        ("on_open", c_void_p),      # bp_open_observer: not wrapped, NULL
        ("on_open_ctx", c_void_p),
        ("accept_loss", c_bool),
    ]


class BpOpenReport(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("created", c_bool),
        ("checkpoint_used", c_bool),
        ("checkpoint_note", c_char * 96),
        ("segments", c_uint32),
        ("footers_used", c_uint32),
        ("frames_scanned", c_uint64),
        ("bytes_scanned", c_uint64),
        ("bytes_cut", c_uint64),
        ("frames_cut", c_uint64),
        ("events", c_uint64),
        ("duration_us", c_uint64),
        ("segments_lost", c_uint32),
        ("events_lost", c_uint64),
        ("first_lost_seq", c_uint64),
        ("loss_note", c_char * 160),
    ]


class BpReceipt(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("event_id", BpId),
        ("global_seq", c_uint64),
        ("clock", c_uint64),
        ("hlc", c_uint64),
        ("event_hash", BpHash),
        ("durability", c_enum),
        ("replayed", c_bool),
        ("entity", c_char * (BP_COORD_MAX + 1)),
        ("scope", c_char * (BP_COORD_MAX + 1)),
        ("kind", c_uint16),
        ("prev_hash", BpHash),
        ("store_id", c_uint8 * 16),
        ("is_signed", c_bool),
        ("key_id", c_uint8 * 32),
        ("signature", c_uint8 * 64),
    ]


class BpAppendOptions(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("has_expected_clock", c_bool),
        ("expected_clock", c_uint64),
        ("idempotency_key", c_char_p),
        ("correlation_id", POINTER(BpId)),
        ("causation_id", POINTER(BpId)),
        ("durability", BpDurability),
        ("schema_version", c_uint8),
    ]


class BpBatchItem(Structure):
    _fields_ = [
        ("entity", c_char_p),
        ("scope", c_char_p),
        ("kind", c_uint16),
        ("payload", c_void_p),
        ("len", c_size_t),
        ("opts", POINTER(BpAppendOptions)),
    ]


class BpEvent(Structure):
    _fields_ = [
        ("event_id", BpId),
        ("correlation_id", BpId),
        ("causation_id", BpId),
        ("has_causation", c_bool),
        ("global_seq", c_uint64),
        ("clock", c_uint64),
        ("hlc", c_uint64),
        ("kind", c_uint16),
        ("flags", c_uint16),
        ("prev_hash", BpHash),
        ("event_hash", BpHash),
        ("entity", c_char_p),
        ("scope", c_char_p),
        ("idempotency_key", c_char_p),
        ("batch_id", c_uint64),
        ("batch_index", c_uint32),
        ("batch_count", c_uint32),
        ("payload", c_void_p),  # const uint8_t *: read with ctypes.string_at
        ("payload_len", c_size_t),
        ("header_only", c_bool),
        ("payload_forgotten", c_bool),
    ]


class BpRegion(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("entity", c_char_p),
        ("entity_prefix", c_char_p),
        ("scope", c_char_p),
        ("kinds", POINTER(c_uint16)),
        ("n_kinds", c_size_t),
        ("category", c_int),
        ("from_seq", c_uint64),
        ("to_seq", c_uint64),
        ("since_ms", c_uint64),
        ("until_ms", c_uint64),
    ]


class BpStats(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("events", c_uint64),
        ("entities", c_uint64),
        ("scopes", c_uint64),
        ("segments", c_uint32),
        ("bytes_on_disk", c_uint64),
        ("index_bytes", c_uint64),
        ("fsyncs", c_uint64),
        ("appends", c_uint64),
        ("write_p50_us", c_uint64),
        ("write_p99_us", c_uint64),
        ("write_max_us", c_uint64),
        ("failed", c_bool),
        ("read_only", c_bool),
        ("index_file_bytes", c_uint64),
        ("writer_pid", c_uint32),
        ("readers", c_uint32),
    ]


class BpEntityInfo(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("name", c_char * (BP_COORD_MAX + 1)),
        ("events", c_uint64),
        ("clock", c_uint64),
    ]


class BpVerifyReport(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("segments", c_uint32),
        ("frames", c_uint64),
        ("events", c_uint64),
        ("entities", c_uint64),
        ("problems", c_uint64),
        ("first_problem", c_char * 256),
    ]


class BpVerifyOptions(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("progress", PROGRESS_FN),
        ("progress_ctx", c_void_p),
        ("on_problem", PROBLEM_FN),
        ("problem_ctx", c_void_p),
    ]


class BpSnapshotReport(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("global_seq", c_uint64),
        ("segments", c_uint32),
        ("bytes", c_uint64),
        ("duration_us", c_uint64),
    ]


# Every mirrored struct, by its C name (used by the layout test).
class BpWorkerConfig(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("checkpoint_id", c_char_p),
        ("start_after", c_uint64),
        ("batch", c_uint32),
        ("checkpoint_every", c_uint32),
        ("max_attempts", c_uint32),
        ("backoff_ms", c_uint32),
        ("backoff_max_ms", c_uint32),
        ("poison", c_enum),
        ("on_poison", c_void_p),
        ("gap_threshold_ms", c_uint32),
    ]


class BpDelivery(Structure):
    _fields_ = [
        ("ev", POINTER(BpEvent)),
        ("attempt", c_uint32),
        ("idem_key", ctypes.c_char * 128),
    ]


WORKER_FN = CFUNCTYPE(c_int, c_void_p, POINTER(BpDelivery))


class BpNotice(Sized):
    _fields_ = [
        ("struct_size", c_uint32),
        ("global_seq", c_uint64),
        ("clock", c_uint64),
        ("hlc", c_uint64),
        ("event_id", BpId),
        ("kind", c_uint16),
        ("entity", c_char_p),
        ("scope", c_char_p),
    ]

STRUCTS = {
    "bp_id": BpId,
    "bp_hash": BpHash,
    "bp_durability": BpDurability,
    "bp_open_options": BpOpenOptions,
    "bp_store_open_report": BpOpenReport,
    "bp_receipt": BpReceipt,
    "bp_append_options": BpAppendOptions,
    "bp_batch_item": BpBatchItem,
    "bp_event": BpEvent,
    "bp_region": BpRegion,
    "bp_store_stats": BpStats,
    "bp_entity_info": BpEntityInfo,
    "bp_verify_report": BpVerifyReport,
    "bp_verify_options": BpVerifyOptions,
    "bp_snapshot_report": BpSnapshotReport,
    "bp_worker_config": BpWorkerConfig,
    "bp_delivery": BpDelivery,
    "bp_notice": BpNotice,
}

# Every mirrored macro, by its C name (used by the layout test).
MACROS = {
    "BP_DEFAULT_SEGMENT_SIZE": BP_DEFAULT_SEGMENT_SIZE,
    "BP_MAX_PAYLOAD": BP_MAX_PAYLOAD,
    "BP_COORD_MAX": BP_COORD_MAX,
    "BP_IDEMPOTENCY_KEY_MAX": BP_IDEMPOTENCY_KEY_MAX,
    "BP_BATCH_MAX": BP_BATCH_MAX,
    "BP_READ_FULL": BP_READ_FULL,
    "BP_READ_INDEX_ONLY": BP_READ_INDEX_ONLY,
    "BP_READ_SEALED": BP_READ_SEALED,
    "BP_EVENT_SEALED": BP_EVENT_SEALED,
    "BP_DUR_DEFAULT": BP_DUR_DEFAULT,
    "BP_DUR_SYNC": BP_DUR_SYNC,
    "BP_DUR_EVERY": BP_DUR_EVERY,
    "BP_DUR_NONE": BP_DUR_NONE,
    "BP_OK": BP_OK,
    "BP_DONE": BP_DONE,
    "BP_VERSION_MAJOR": HEADER_VERSION[0],
    "BP_VERSION_MINOR": HEADER_VERSION[1],
}

# ------------------------------------------------------------------ loading
_HINT = (
    "install the package (pip install ./bindings/python, which builds libbatpak into it), "
    "set BATPAK_LIB to the path of libbatpak.so (for instance build/libbatpak.so after "
    "`cmake --build build --target batpak`), or install libbatpak where the dynamic "
    "loader finds it"
)

# The library an installed package carries (setup.py puts it there).
_BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libbatpak.so.1")


def _load() -> ctypes.CDLL:
    path = os.environ.get("BATPAK_LIB")
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"batpak: cannot load BATPAK_LIB={path!r}: {e}") from e
    if os.path.exists(_BUNDLED):
        try:
            return ctypes.CDLL(_BUNDLED)
        except OSError as e:  # (a runtime library missing: the message names it)
            raise ImportError(
                f"batpak: cannot load the package's {_BUNDLED!r}: {e}; it needs the runtime "
                "libraries of msgpack-c, libsodium, jansson and zlib (Debian: apt-get install "
                "libmsgpackc2 libsodium23 libjansson4 zlib1g)") from e
    name = ctypes.util.find_library("batpak")
    if not name:
        raise ImportError(f"batpak: libbatpak not found: {_HINT}")
    try:
        return ctypes.CDLL(name)
    except OSError as e:
        raise ImportError(f"batpak: cannot load {name!r}: {e}; {_HINT}") from e


lib = _load()

_PStore = c_void_p  # bp_store * (opaque)
_PIter = c_void_p   # bp_iter * (opaque)
_PCursor = c_void_p  # bp_cursor * (opaque)


def _fn(name, restype, *argtypes):
    try:
        f = getattr(lib, name)
    except AttributeError as e:
        raise ImportError(f"batpak: the loaded libbatpak has no {name}: {e}") from e
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


bp_version = _fn("bp_version", c_char_p)
bp_strerror = _fn("bp_strerror", c_char_p, c_int)
bp_last_error = _fn("bp_last_error", c_char_p)
bp_free = _fn("bp_free", None, c_void_p)
bp_kind_is_application = _fn("bp_kind_is_application", c_bool, c_uint16)
bp_coord_validate = _fn("bp_coord_validate", c_enum, c_char_p, c_char_p)
bp_id_format = _fn("bp_id_format", None, POINTER(BpId), POINTER(c_char))
bp_id_parse = _fn("bp_id_parse", c_enum, POINTER(BpId), c_char_p)
bp_id_time_ms = _fn("bp_id_time_ms", c_uint64, POINTER(BpId))

bp_store_open = _fn("bp_store_open", c_enum, POINTER(_PStore), c_char_p, POINTER(BpOpenOptions))
bp_store_close = _fn("bp_store_close", c_enum, _PStore)
bp_store_sync = _fn("bp_store_sync", c_enum, _PStore)
bp_store_refresh = _fn("bp_store_refresh", c_enum, _PStore, POINTER(c_uint64))
bp_store_open_report_get = _fn(
    "bp_store_open_report_get", c_enum, _PStore, POINTER(BpOpenReport)
)
bp_store_uuid = _fn("bp_store_uuid", None, _PStore, POINTER(c_uint8))
bp_store_dir = _fn("bp_store_dir", c_char_p, _PStore)
bp_store_seals = _fn("bp_store_seals", c_bool, _PStore)

bp_append_ex = _fn(
    "bp_append_ex", c_enum, _PStore, POINTER(BpReceipt), c_char_p, c_char_p, c_uint16,
    c_void_p, c_size_t, POINTER(BpAppendOptions),
)
bp_append_batch = _fn(
    "bp_append_batch", c_enum, _PStore, POINTER(BpReceipt), POINTER(BpBatchItem), c_size_t
)
bp_receipt_to_json = _fn("bp_receipt_to_json", c_enum, POINTER(BpReceipt), POINTER(c_void_p))

bp_entities_list = _fn("bp_entities_list", c_enum, _PStore, c_char_p, c_char_p,
                       POINTER(BpEntityInfo), c_size_t, POINTER(c_size_t))
bp_get = _fn("bp_get", c_enum, _PStore, POINTER(POINTER(BpEvent)), POINTER(BpId))
bp_event_free = _fn("bp_event_free", None, POINTER(BpEvent))
bp_query = _fn("bp_query", c_enum, _PStore, POINTER(_PIter), POINTER(BpRegion), c_uint)
bp_stream = _fn("bp_stream", c_enum, _PStore, POINTER(_PIter), c_char_p, c_uint)
bp_by_scope = _fn("bp_by_scope", c_enum, _PStore, POINTER(_PIter), c_char_p, c_uint)
bp_by_kind = _fn("bp_by_kind", c_enum, _PStore, POINTER(_PIter), c_uint16, c_uint)
bp_iter_next = _fn("bp_iter_next", c_enum, _PIter, POINTER(POINTER(BpEvent)))
bp_iter_position = _fn("bp_iter_position", c_uint64, _PIter)
bp_iter_free = _fn("bp_iter_free", None, _PIter)
bp_entity_head = _fn(
    "bp_entity_head", c_enum, _PStore, POINTER(c_uint64), POINTER(BpHash), c_char_p
)
bp_event_json = _fn("bp_event_json", c_enum, _PStore, POINTER(c_void_p), POINTER(BpEvent))
bp_schema_encode_json = _fn("bp_schema_encode_json", c_enum, _PStore, POINTER(c_void_p),
                            POINTER(c_size_t), POINTER(ctypes.c_uint), c_uint16,
                            ctypes.c_char_p, c_size_t)
bp_schema_record_json = _fn("bp_schema_record_json", c_enum, _PStore, POINTER(BpReceipt),
                            ctypes.c_char_p, c_size_t)
bp_schema_json = _fn("bp_schema_json", c_enum, _PStore, POINTER(c_void_p))
bp_schema_json_schema = _fn("bp_schema_json_schema", c_enum, _PStore, POINTER(c_void_p),
                            c_uint16, ctypes.c_uint)
bp_json_to_msgpack = _fn("bp_json_to_msgpack", c_enum, POINTER(c_void_p), POINTER(c_size_t),
                         ctypes.c_char_p, c_size_t)

_PWorker = c_void_p
_PTicket = c_void_p
bp_cursor_worker = _fn("bp_cursor_worker", c_enum, _PStore, POINTER(_PWorker), POINTER(BpRegion),
                       WORKER_FN, c_void_p, POINTER(BpWorkerConfig))
bp_worker_stop = _fn("bp_worker_stop", c_enum, _PWorker)
bp_worker_wait = _fn("bp_worker_wait", c_enum, _PWorker, c_uint64, c_uint32)
bp_subscribe_lossy = _fn("bp_subscribe_lossy", c_enum, _PStore, POINTER(c_void_p),
                         POINTER(BpRegion), c_uint32)
bp_subscription_next = _fn("bp_subscription_next", c_enum, c_void_p, POINTER(BpNotice), c_uint32)
bp_subscription_missed = _fn("bp_subscription_missed", None, c_void_p, POINTER(c_uint64),
                             POINTER(c_uint64))
bp_unsubscribe = _fn("bp_unsubscribe", None, c_void_p)
bp_submit = _fn("bp_submit", c_enum, _PStore, POINTER(_PTicket), c_char_p, c_char_p, c_uint16,
                c_void_p, c_size_t, POINTER(BpAppendOptions))
bp_ticket_poll = _fn("bp_ticket_poll", ctypes.c_bool, _PTicket)
bp_ticket_wait = _fn("bp_ticket_wait", c_enum, _PTicket, POINTER(BpReceipt), c_uint32)
bp_ticket_free = _fn("bp_ticket_free", None, _PTicket)

bp_cursor_open = _fn(
    "bp_cursor_open", c_enum, _PStore, POINTER(_PCursor), POINTER(BpRegion), c_uint64
)
bp_cursor_next = _fn(
    "bp_cursor_next", c_enum, _PCursor, POINTER(POINTER(BpEvent)), c_size_t,
    POINTER(c_size_t), c_uint32,
)
bp_cursor_position = _fn("bp_cursor_position", c_uint64, _PCursor)
bp_cursor_free = _fn("bp_cursor_free", None, _PCursor)

bp_store_stats_get = _fn("bp_store_stats_get", c_enum, _PStore, POINTER(BpStats))
bp_store_verify = _fn(
    "bp_store_verify", c_enum, _PStore, POINTER(BpVerifyReport), POINTER(BpVerifyOptions)
)
bp_store_snapshot = _fn(
    "bp_store_snapshot", c_enum, _PStore, POINTER(BpSnapshotReport), c_char_p
)

LIBRARY_VERSION = bp_version().decode()
try:
    _lv = tuple(int(x) for x in LIBRARY_VERSION.split(".")[:2])
except ValueError:
    _lv = None
# The same major version, and a minor one at least the headers' (a later minor version only
# appends: doc/API.md rule 10).
if _lv is None or _lv[0] != HEADER_VERSION[0] or _lv[1] < HEADER_VERSION[1]:
    raise ImportError(
        f"batpak: the loaded libbatpak is version {LIBRARY_VERSION}; this binding mirrors the "
        f"{HEADER_VERSION[0]}.{HEADER_VERSION[1]} structs and needs {HEADER_VERSION[0]}.x "
        f"with x >= {HEADER_VERSION[1]}"
    )
