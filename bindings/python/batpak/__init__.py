"""batpak: Python binding (ctypes, standard library only) for libbatpak, an embedded,
sync-first, hash-chained event-sourcing store.

    import batpak
    with batpak.Store("./data") as s:
        r = s.append("account:7", "bank", batpak.kind(1, 1), {"add": 10})
        for ev in s.stream("account:7"):
            print(ev.clock, ev.value)

The library is loaded from $BATPAK_LIB, else the one an installed package carries
(pip install ./bindings/python builds it in), else ctypes.util.find_library("batpak").
A payload is bytes (MessagePack by convention) or a JSON-like value, which the library
encodes as MessagePack (to_msgpack: bp_json_to_msgpack); Event.value and payload_json()
decode it back with the library's rendering.
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
from .deliver import Notice, Projection, Subscription, Ticket, Worker
from .store import Cursor, EventIterator, Store, open, payload_json, to_msgpack

__version__ = library_version  # (the package is built with, and carries, this library)

__all__ = [
    "library_version", "Store", "open", "EventIterator", "Cursor", "payload_json", "to_msgpack", "Projection", "Ticket", "Worker", "Subscription", "Notice",
    "Event", "EntityInfo", "Receipt", "BatchItem", "Region", "Page", "OpenReport", "Stats",
    "VerifyReport", "SnapshotReport", "Durability", "DurabilityMode", "DURABLE", "NO_SYNC", "durable_every",
    "kind", "kind_category", "kind_type", "is_application_kind", "KIND_SYSTEM_OPEN_COMPLETED",
    "KIND_SYSTEM_DENIAL", "KIND_SYSTEM_TOMBSTONE", "CATEGORY_SYSTEM", "CATEGORY_EFFECT",
    "BatpakError", "InvalidArgument", "NotFound", "Conflict", "Corrupt", "StoreIOError",
    "Locked", "VersionError", "OutOfMemory", "Busy", "TooBig", "ReadOnly", "Denied", "Exists",
    "SignatureError", "TimedOut", "Canceled", "StoreClosed", "error_class",
]
