"""batpak: Python binding (ctypes, standard library only) for libbatpak, an embedded,
sync-first, hash-chained event-sourcing store.

    import batpak
    with batpak.Store("./data") as s:
        r = s.append("account:7", "bank", batpak.kind(1, 1), b"\\x81\\xa3add\\x0a")
        for ev in s.stream("account:7"):
            print(ev.clock, ev.payload)

The library is loaded from $BATPAK_LIB, else ctypes.util.find_library("batpak").
Payloads are bytes (MessagePack by convention); the public C API has no
JSON -> MessagePack call, so there is no dict/JSON append helper. payload_json()
decodes a MessagePack payload with the library's generic rendering.
"""
from ._ffi import LIBRARY_VERSION as library_version
from ._types import (
    CATEGORY_EFFECT,
    CATEGORY_SYSTEM,
    DURABLE,
    KIND_SYSTEM_DENIAL,
    KIND_SYSTEM_OPEN_COMPLETED,
    KIND_SYSTEM_TOMBSTONE,
    NO_SYNC,
    BatchItem,
    Durability,
    DurabilityMode,
    EntityInfo,
    Event,
    OpenReport,
    Page,
    Receipt,
    Region,
    SnapshotReport,
    Stats,
    VerifyReport,
    durable_every,
    is_application_kind,
    kind,
    kind_category,
    kind_type,
)
from .errors import (
    BatpakError,
    Busy,
    Canceled,
    Conflict,
    Corrupt,
    Denied,
    Exists,
    InvalidArgument,
    Locked,
    NotFound,
    OutOfMemory,
    ReadOnly,
    SignatureError,
    StoreClosed,
    StoreIOError,
    TimedOut,
    TooBig,
    VersionError,
    error_class,
)
from .store import Cursor, EventIterator, Store, open, payload_json

__version__ = "1.0.0"

__all__ = [
    "library_version", "Store", "open", "EventIterator", "Cursor", "payload_json",
    "Event", "EntityInfo", "Receipt", "BatchItem", "Region", "Page", "OpenReport", "Stats",
    "VerifyReport", "SnapshotReport", "Durability", "DurabilityMode", "DURABLE", "NO_SYNC", "durable_every",
    "kind", "kind_category", "kind_type", "is_application_kind", "KIND_SYSTEM_OPEN_COMPLETED",
    "KIND_SYSTEM_DENIAL", "KIND_SYSTEM_TOMBSTONE", "CATEGORY_SYSTEM", "CATEGORY_EFFECT",
    "BatpakError", "InvalidArgument", "NotFound", "Conflict", "Corrupt", "StoreIOError",
    "Locked", "VersionError", "OutOfMemory", "Busy", "TooBig", "ReadOnly", "Denied", "Exists",
    "SignatureError", "TimedOut", "Canceled", "StoreClosed", "error_class",
]
