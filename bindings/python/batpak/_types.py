"""Plain Python values the binding returns: events, receipts, reports."""
from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

from . import _ffi

# ------------------------------------------------------------------ kinds
KIND_SYSTEM_OPEN_COMPLETED = 0x0001
KIND_SYSTEM_DENIAL = 0x0002
KIND_SYSTEM_TOMBSTONE = 0x0003
CATEGORY_SYSTEM = 0x0
CATEGORY_EFFECT = 0xD


def kind(category: int, type_id: int) -> int:
    """BP_KIND(category, type_id): (category << 12) | type_id, each masked like the macro.

    Out-of-range arguments raise ValueError instead of being masked silently."""
    if not 0 <= category <= 0xF:
        raise ValueError(f"kind category {category} out of range 0..15")
    if not 0 <= type_id <= 0xFFF:
        raise ValueError(f"kind type_id {type_id} out of range 0..4095")
    return (category << 12) | type_id


def kind_category(k: int) -> int:
    """BP_KIND_CATEGORY(k)."""
    return (k >> 12) & 0xF


def kind_type(k: int) -> int:
    """BP_KIND_TYPE(k)."""
    return k & 0xFFF


def is_application_kind(k: int) -> bool:
    """bp_kind_is_application: may an application append this kind?"""
    if not 0 <= k <= 0xFFFF:
        return False
    return bool(_ffi.bp_kind_is_application(k))


# ------------------------------------------------------------- durability
class DurabilityMode(enum.IntEnum):
    """bp_durability_mode."""
    DEFAULT = _ffi.BP_DUR_DEFAULT  # per append: the store's mode
    SYNC = _ffi.BP_DUR_SYNC        # receipt after fdatasync (group-committed)
    EVERY = _ffi.BP_DUR_EVERY      # receipt after write(); sync every n events / ms
    NONE = _ffi.BP_DUR_NONE        # receipt after write(); sync on sync()/close()


@dataclass(frozen=True)
class Durability:
    """bp_durability: a mode and, for EVERY, its bounds."""
    mode: DurabilityMode
    every_events: int = 0
    every_ms: int = 0

    @staticmethod
    def every(n_events: int, ms: int) -> "Durability":
        """BP_DURABLE_EVERY(n_events, ms)."""
        return Durability(DurabilityMode.EVERY, n_events, ms)


DURABLE = Durability(DurabilityMode.SYNC)    # BP_DURABLE
NO_SYNC = Durability(DurabilityMode.NONE)    # BP_NO_SYNC


def durable_every(n_events: int, ms: int) -> Durability:
    """BP_DURABLE_EVERY(n_events, ms)."""
    return Durability.every(n_events, ms)


# ------------------------------------------------------------- conversion
def _id(c: _ffi.BpId) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(c.b))


def _str(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8", "surrogateescape")


# ------------------------------------------------------------------ event
@dataclass(frozen=True)
class Event:
    """A bp_event, copied out of the library (every header field, and the payload).

    payload is None when the read did not carry it (index_only reads, header_only) or
    when it was forgotten (crypto-shredding); b"" for an empty payload.
    """
    event_id: uuid.UUID
    correlation_id: uuid.UUID
    causation_id: Optional[uuid.UUID]
    global_seq: int
    clock: int
    hlc: int
    kind: int
    flags: int
    prev_hash: bytes
    event_hash: bytes
    entity: str
    scope: str
    idempotency_key: Optional[str]
    batch_id: int
    batch_index: int
    batch_count: int
    payload: Optional[bytes]
    header_only: bool
    payload_forgotten: bool

    @property
    def category(self) -> int:
        return kind_category(self.kind)

    @property
    def type_id(self) -> int:
        return kind_type(self.kind)

    @property
    def hlc_wall_ms(self) -> int:
        """BP_HLC_WALL_MS(hlc)."""
        return self.hlc >> 16

    @property
    def hlc_logical(self) -> int:
        """BP_HLC_LOGICAL(hlc)."""
        return self.hlc & 0xFFFF

    @property
    def time_ms(self) -> int:
        """Milliseconds since the epoch in the UUIDv7 id (bp_id_time_ms)."""
        return int.from_bytes(self.event_id.bytes[:6], "big")

    @property
    def sealed(self) -> bool:
        """flags has BP_EVENT_SEALED: the payload is sealed with the entity's data key."""
        return bool(self.flags & _ffi.BP_EVENT_SEALED)

    @property
    def value(self) -> Any:
        """The payload as a Python value (payload_json()); None for an empty payload."""
        return self.payload_json()

    def payload_json(self) -> Any:
        """The payload (MessagePack) as a Python value, rendered by the library's generic
        MessagePack -> JSON lane (bp_event_json); see batpak.payload_json."""
        if self.payload is None:
            from .errors import invalid
            raise invalid(f"event {self.global_seq} was read without its payload",
                          "payload_json")
        from .store import payload_json
        return payload_json(self.payload)

    @classmethod
    def _from_c(cls, ev: _ffi.BpEvent) -> "Event":
        if ev.header_only or ev.payload_forgotten:
            payload = None
        elif ev.payload_len:
            if not ev.payload:
                payload = None
            else:
                payload = _ffi.ctypes.string_at(ev.payload, ev.payload_len)
        else:
            payload = b""
        return cls(
            event_id=_id(ev.event_id),
            correlation_id=_id(ev.correlation_id),
            causation_id=_id(ev.causation_id) if ev.has_causation else None,
            global_seq=ev.global_seq,
            clock=ev.clock,
            hlc=ev.hlc,
            kind=ev.kind,
            flags=ev.flags,
            prev_hash=bytes(ev.prev_hash.b),
            event_hash=bytes(ev.event_hash.b),
            entity=_str(ev.entity) or "",
            scope=_str(ev.scope) or "",
            idempotency_key=_str(ev.idempotency_key),
            batch_id=ev.batch_id,
            batch_index=ev.batch_index,
            batch_count=ev.batch_count,
            payload=payload,
            header_only=bool(ev.header_only),
            payload_forgotten=bool(ev.payload_forgotten),
        )


# ---------------------------------------------------------------- receipt
@dataclass(frozen=True)
class Receipt:
    """A bp_receipt: what one append committed and what it guarantees."""
    event_id: uuid.UUID
    global_seq: int
    clock: int
    hlc: int
    event_hash: bytes
    durability: DurabilityMode
    replayed: bool
    entity: str
    scope: str
    kind: int
    prev_hash: bytes
    store_id: uuid.UUID
    is_signed: bool
    key_id: bytes = field(repr=False)     # 32 bytes (zeros unless is_signed)
    signature: bytes = field(repr=False)  # 64 bytes (zeros unless is_signed)

    def to_json(self) -> str:
        """The receipt as JSON (bp_receipt_to_json; doc/FORMAT.md "Receipt JSON")."""
        from .store import _receipt_to_json
        return _receipt_to_json(self)

    @classmethod
    def _from_c(cls, r: _ffi.BpReceipt) -> "Receipt":
        try:
            dur = DurabilityMode(r.durability)
        except ValueError:  # a mode this binding does not know: keep the number
            dur = r.durability  # type: ignore[assignment]
        return cls(
            event_id=_id(r.event_id),
            global_seq=r.global_seq,
            clock=r.clock,
            hlc=r.hlc,
            event_hash=bytes(r.event_hash.b),
            durability=dur,
            replayed=bool(r.replayed),
            entity=r.entity.decode("utf-8", "surrogateescape"),
            scope=r.scope.decode("utf-8", "surrogateescape"),
            kind=r.kind,
            prev_hash=bytes(r.prev_hash.b),
            store_id=uuid.UUID(bytes=bytes(r.store_id)),
            is_signed=bool(r.is_signed),
            key_id=bytes(r.key_id),
            signature=bytes(r.signature),
        )


# ------------------------------------------------------------ batch items
@dataclass(frozen=True)
class BatchItem:
    """One item of Store.append_batch (a bp_batch_item and its bp_append_options;
    durability is the batch's: always synced)."""
    entity: str
    scope: str
    kind: int
    payload: bytes = b""
    expected_clock: Optional[int] = None
    idempotency_key: Optional[str] = None
    correlation_id: Any = None
    causation_id: Any = None
    schema_version: int = 0


# ----------------------------------------------------------------- region
@dataclass(frozen=True)
class Region:
    """A bp_region filter. None / 0 fields do not filter.

    entity: exact entity; entity_prefix: entity starts with; scope: exact scope;
    kinds: any of these kinds; category: kind category 0..15 (None: any);
    from_seq / to_seq: global_seq range, inclusive (0: unbounded);
    since_ms / until_ms: HLC wall-time range in ms, inclusive (0: unbounded).
    """
    entity: Optional[str] = None
    entity_prefix: Optional[str] = None
    scope: Optional[str] = None
    kinds: Optional[Sequence[int]] = None
    category: Optional[int] = None
    from_seq: int = 0
    to_seq: int = 0
    since_ms: int = 0
    until_ms: int = 0


@dataclass(frozen=True)
class Page:
    """One page of Store.query_page: the events, the position to resume after (pass it as
    after_seq), and whether more matching events exist."""
    events: List[Event]
    position: int
    more: bool


# ---------------------------------------------------------------- reports
@dataclass(frozen=True)
class OpenReport:
    """bp_store_open_report: what open found and did."""
    created: bool
    checkpoint_used: bool
    checkpoint_note: str
    segments: int
    footers_used: int
    frames_scanned: int
    bytes_scanned: int
    bytes_cut: int
    frames_cut: int
    events: int
    duration_us: int
    segments_lost: int  # what an open with accept_loss accepted as lost (0 otherwise)
    events_lost: int
    first_lost_seq: int
    loss_note: str

    @classmethod
    def _from_c(cls, r: _ffi.BpOpenReport) -> "OpenReport":
        return cls(bool(r.created), bool(r.checkpoint_used),
                   r.checkpoint_note.decode("utf-8", "replace"), r.segments, r.footers_used,
                   r.frames_scanned, r.bytes_scanned, r.bytes_cut, r.frames_cut, r.events,
                   r.duration_us, r.segments_lost, r.events_lost, r.first_lost_seq,
                   r.loss_note.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Stats:
    """bp_store_stats."""
    events: int
    entities: int
    scopes: int
    segments: int
    bytes_on_disk: int
    index_bytes: int
    fsyncs: int
    appends: int
    write_p50_us: int
    write_p99_us: int
    write_max_us: int
    failed: bool
    read_only: bool
    index_file_bytes: int
    writer_pid: int  # the process holding the store writable, 0: none
    readers: int  # read-only handles open on it in any process, this one included

    @classmethod
    def _from_c(cls, s: _ffi.BpStats) -> "Stats":
        return cls(s.events, s.entities, s.scopes, s.segments, s.bytes_on_disk, s.index_bytes,
                   s.fsyncs, s.appends, s.write_p50_us, s.write_p99_us, s.write_max_us,
                   bool(s.failed), bool(s.read_only), s.index_file_bytes, s.writer_pid,
                   s.readers)


@dataclass(frozen=True)
class EntityInfo:
    """bp_entity_info: an entity, its published events and head clock."""
    name: str
    events: int
    clock: int


@dataclass(frozen=True)
class VerifyReport:
    """bp_verify_report, plus every problem bp_store_verify told of (on_problem), as
    (entity or None, text): the first problem of each entity, and every problem that
    belongs to no entity."""
    segments: int
    frames: int
    events: int
    entities: int
    problems: int
    first_problem: str
    problem_list: Tuple[Tuple[Optional[str], str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.problems == 0


@dataclass(frozen=True)
class SnapshotReport:
    """bp_snapshot_report."""
    global_seq: int
    segments: int
    bytes: int
    duration_us: int
