"""Store, EventIterator and Cursor: the handles of the binding."""
from __future__ import annotations

import ctypes
import json
import os
import uuid
import warnings
import weakref
from ctypes import POINTER, byref, c_size_t, c_uint8, c_uint16, c_uint64, c_void_p
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from . import _ffi
from ._types import (
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
)
from .errors import BatpakError, Corrupt, StoreClosed, invalid, raise_for

IdLike = Union[uuid.UUID, str, bytes]
PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# --------------------------------------------------------------- checking
# ctypes silently truncates an out-of-range int stored in a fixed-size field and a
# c_char_p ends at the first NUL: every value is checked here before it reaches C.


def _uint(name: str, v: Any, bits: int, op: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{op}: {name} must be an int, not {type(v).__name__}")
    if not 0 <= v < (1 << bits):
        raise invalid(f"{name} {v} out of range 0..{(1 << bits) - 1}", op)
    return v


def _cstr(name: str, v: Any, op: str) -> bytes:
    if isinstance(v, str):
        try:
            b = v.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            raise invalid(f"{name}: not encodable as UTF-8: {e}", op) from None
    elif isinstance(v, (bytes, bytearray)):
        b = bytes(v)
    else:
        raise TypeError(f"{op}: {name} must be str or bytes, not {type(v).__name__}")
    if b"\0" in b:
        raise invalid(f"{name}: contains a NUL byte", op)
    return b


def _opt_cstr(name: str, v: Any, op: str) -> Optional[bytes]:
    return None if v is None else _cstr(name, v, op)


def _payload(v: Any, op: str) -> bytes:
    """A payload's bytes: bytes-like as given (MessagePack by convention), None as empty,
    any other value as the MessagePack of its JSON form (to_msgpack)."""
    if v is None:
        return b""
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    return to_msgpack(v, op)


def _json_text(value: Any, op: str) -> bytes:
    """A JSON-like value's text (UTF-8); TypeError naming what has no JSON form."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op}: the payload has no JSON form ({e}); give bytes "
                        "(MessagePack) or a JSON-like value") from None


def _take_bytes(out: c_void_p, n: c_size_t) -> bytes:
    """Copy n bytes the library allocated, then bp_free them."""
    try:
        return ctypes.string_at(out.value, n.value)
    finally:
        _ffi.bp_free(out)


def _msgpack_of_text(text: bytes) -> bytes:
    out = c_void_p()
    n = c_size_t()
    rc = _ffi.bp_json_to_msgpack(byref(out), byref(n), text, len(text))
    _check_status(rc, "bp_json_to_msgpack")
    return _take_bytes(out, n)


def to_msgpack(value: Any, op: str = "to_msgpack") -> bytes:
    """The MessagePack of a JSON-like value (dict with str keys, list, tuple, str, int,
    float, bool, None), encoded by the library (bp_json_to_msgpack): what append stores for
    a value that is not bytes, and what Event.value decodes. TypeError for a value with no
    JSON form (a set, bytes inside a dict, NaN...), naming it."""
    return _msgpack_of_text(_json_text(value, op))


def _to_id(v: Any, op: str) -> _ffi.BpId:
    out = _ffi.BpId()
    if isinstance(v, uuid.UUID):
        ctypes.memmove(out.b, v.bytes, 16)
    elif isinstance(v, (bytes, bytearray)):
        if len(v) != 16:
            raise invalid(f"event id: {len(v)} bytes, expected 16", op)
        ctypes.memmove(out.b, bytes(v), 16)
    elif isinstance(v, str):
        rc = _ffi.bp_id_parse(byref(out), _cstr("event id", v, op))
        raise_for(rc, op)
    else:
        raise TypeError(f"{op}: an event id is a uuid.UUID, str or 16 bytes, "
                        f"not {type(v).__name__}")
    return out


def _durability(d: Any, op: str) -> _ffi.BpDurability:
    out = _ffi.BpDurability()
    if d is None:
        return out  # BP_DUR_DEFAULT
    if isinstance(d, DurabilityMode) or (isinstance(d, int) and not isinstance(d, bool)):
        try:
            d = Durability(DurabilityMode(d))
        except ValueError:
            raise invalid(f"durability mode {d} unknown", op) from None
    if not isinstance(d, Durability):
        raise TypeError(f"{op}: durability must be a Durability or DurabilityMode")
    out.mode = _uint("durability mode", int(d.mode), 31, op)
    out.every_events = _uint("every_events", d.every_events, 32, op)
    out.every_ms = _uint("every_ms", d.every_ms, 32, op)
    return out


def _check_status(rc: int, op: str) -> None:
    """Raise for an error; an unexpected non-error status is a BatpakError too."""
    if rc < 0:
        raise_for(rc, op)
    if rc != _ffi.BP_OK:
        raise BatpakError(rc, f"unexpected status {rc}", op)


def _append_options(op: str, keep: list, *, expected_clock: Optional[int] = None,
                    idempotency_key: Any = None, correlation_id: Any = None,
                    causation_id: Any = None, durability: Any = None,
                    schema_version: int = 0) -> _ffi.BpAppendOptions:
    o = _ffi.BpAppendOptions()
    if expected_clock is not None:
        o.has_expected_clock = True
        o.expected_clock = _uint("expected_clock", expected_clock, 64, op)
    if idempotency_key is not None:
        k = _cstr("idempotency_key", idempotency_key, op)
        keep.append(k)
        o.idempotency_key = k
    if correlation_id is not None:
        cid = _to_id(correlation_id, op)
        keep.append(cid)
        o.correlation_id = ctypes.pointer(cid)
    if causation_id is not None:
        cau = _to_id(causation_id, op)
        keep.append(cau)
        o.causation_id = ctypes.pointer(cau)
    o.durability = _durability(durability, op)
    o.schema_version = _uint("schema_version", schema_version, 8, op)
    return o


def _region(region: Optional[Region], filters: Mapping[str, Any], op: str,
            keep: list) -> _ffi.BpRegion:
    if region is not None and filters:
        raise TypeError(f"{op}: pass either a Region or filter keywords, not both")
    if region is None:
        try:
            region = Region(**filters)
        except TypeError as e:
            raise TypeError(f"{op}: {e}") from None
    elif not isinstance(region, Region):
        raise TypeError(f"{op}: region must be a batpak.Region")
    r = _ffi.BpRegion()
    for name in ("entity", "entity_prefix", "scope"):
        b = _opt_cstr(name, getattr(region, name), op)
        if b is not None:
            keep.append(b)
            setattr(r, name, b)
    if region.kinds is not None:
        if isinstance(region.kinds, int):
            raise TypeError(f"{op}: kinds is a sequence of kinds (kinds=[k])")
        ks = [_uint("kind", k, 16, op) for k in region.kinds]
        if not ks:  # n_kinds == 0 means "any kind" in C: refuse rather than match all
            raise invalid("kinds: an empty list; pass None for any kind", op)
        arr = (c_uint16 * len(ks))(*ks)
        keep.append(arr)
        r.kinds = ctypes.cast(arr, POINTER(c_uint16))
        r.n_kinds = len(ks)
    if region.category is None:
        r.category = -1
    else:
        r.category = _uint("category", region.category, 4, op)
    r.from_seq = _uint("from_seq", region.from_seq, 64, op)
    r.to_seq = _uint("to_seq", region.to_seq, 64, op)
    r.since_ms = _uint("since_ms", region.since_ms, 64, op)
    r.until_ms = _uint("until_ms", region.until_ms, 64, op)
    return r


def _read_flags(index_only: bool) -> int:
    return _ffi.BP_READ_INDEX_ONLY if index_only else _ffi.BP_READ_FULL


def _receipt_to_c(rc: Receipt) -> _ffi.BpReceipt:
    op = "Receipt.to_json"
    r = _ffi.BpReceipt()
    ctypes.memmove(r.event_id.b, rc.event_id.bytes, 16)
    r.global_seq = _uint("global_seq", rc.global_seq, 64, op)
    r.clock = _uint("clock", rc.clock, 64, op)
    r.hlc = _uint("hlc", rc.hlc, 64, op)
    for name, size in (("event_hash", 32), ("prev_hash", 32)):
        v = getattr(rc, name)
        if len(v) != size:
            raise invalid(f"{name}: {len(v)} bytes, expected {size}", op)
        ctypes.memmove(getattr(r, name).b, v, size)
    r.durability = int(rc.durability)
    r.replayed = rc.replayed
    r.entity = _cstr("entity", rc.entity, op)
    r.scope = _cstr("scope", rc.scope, op)
    r.kind = _uint("kind", rc.kind, 16, op)
    ctypes.memmove(r.store_id, rc.store_id.bytes, 16)
    r.is_signed = rc.is_signed
    for name, size in (("key_id", 32), ("signature", 64)):
        v = getattr(rc, name)
        if len(v) != size:
            raise invalid(f"{name}: {len(v)} bytes, expected {size}", op)
        ctypes.memmove(getattr(r, name), v, size)
    return r


def _take_string(p: c_void_p) -> str:
    """Copy a NUL-terminated string the library allocated, then bp_free it."""
    try:
        return ctypes.string_at(p.value).decode("utf-8")
    finally:
        _ffi.bp_free(p)


def _receipt_to_json(receipt: Receipt) -> str:
    r = _receipt_to_c(receipt)
    out = c_void_p()
    rc = _ffi.bp_receipt_to_json(byref(r), byref(out))
    _check_status(rc, "bp_receipt_to_json")
    return _take_string(out)


def payload_json(payload: bytes) -> Any:
    """Decode a MessagePack payload to a Python value with the library's generic
    MessagePack -> JSON rendering (bp_event_json with no store): maps with string keys,
    arrays, strings, numbers, bools, nil; an empty payload is None. A payload with no JSON
    form (bin, ext, non-UTF-8 text, non-string keys) raises InvalidArgument. The other way
    is to_msgpack (appends of a value that is not bytes use it).
    """
    op = "payload_json"
    b = _payload(payload, op)
    buf = ctypes.c_char_p(b)
    ev = _ffi.BpEvent()
    ev.payload = ctypes.cast(buf, c_void_p).value
    ev.payload_len = len(b)
    out = c_void_p()
    rc = _ffi.bp_event_json(None, byref(out), byref(ev))
    _check_status(rc, "bp_event_json")
    return json.loads(_take_string(out))


# ------------------------------------------------------------------ store
class Store:
    """An open batpak store (bp_store). Use as a context manager, or call close().

    Appends and reads may run from several threads at once (the C handle is thread-safe,
    and ctypes releases the GIL during each call); close() must not race with them.
    Iterators and cursors opened from the store are freed by close().
    """

    def __init__(self, path: PathLike, *, create: bool = True, read_only: bool = False,
                 salvage: bool = False, no_open_event: bool = False,
                 segment_size: Optional[int] = None, max_payload: Optional[int] = None,
                 durability: Optional[Durability] = None,
                 seal_payloads: bool = False, accept_loss: bool = False) -> None:
        """bp_store_open(path, opts). Options as bp_open_options (store.h):
        create the store if missing; read_only (no writes, no tail repair); salvage (keep
        the valid prefix on mid-segment corruption); no_open_event (skip the
        SYSTEM_OPEN_COMPLETED event); segment_size in bytes (default 64 MiB);
        max_payload (default and at most 16 MiB); durability (the store's default,
        DURABLE unless set); seal_payloads (turn on crypto-shredding, for good);
        accept_loss (open even though files the store's records list are gone or shorter,
        recording the loss in open_report(); never needed after a crash).
        Raises Locked when another handle holds the directory, NotFound when there is no
        store and create is False, Corrupt when data the store held is lost and
        accept_loss is False."""
        self._h: Optional[int] = None
        self._children: "weakref.WeakSet[Any]" = weakref.WeakSet()
        op = "bp_store_open"
        o = _ffi.BpOpenOptions()
        o.create = bool(create)
        o.read_only = bool(read_only)
        o.salvage = bool(salvage)
        o.no_open_event = bool(no_open_event)
        o.segment_size = _uint("segment_size", _ffi.BP_DEFAULT_SEGMENT_SIZE
                               if segment_size is None else segment_size, 32, op)
        o.max_payload = _uint("max_payload", _ffi.BP_MAX_PAYLOAD
                              if max_payload is None else max_payload, 32, op)
        o.durability = _durability(Durability(DurabilityMode.SYNC)
                                   if durability is None else durability, op)
        o.signing_key = None
        o.submit_queue = 0
        o.seal_payloads = bool(seal_payloads)
        o.on_open = None
        o.on_open_ctx = None
        o.accept_loss = bool(accept_loss)
        p = os.fsencode(path)
        if b"\0" in p:
            raise invalid("path: contains a NUL byte", op)
        h = c_void_p()
        rc = _ffi.bp_store_open(byref(h), p, byref(o))
        _check_status(rc, op)
        self._h = h.value

    # ------------------------------------------------------------ lifecycle
    def _handle(self, op: str) -> int:
        h = self._h
        if h is None:
            raise StoreClosed(-1, "the store is closed", op)
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Free the iterators and cursors still open, then bp_store_close: flush,
        fdatasync, write the index checkpoint, release the lock. A second close is a
        no-op. Raises the first error met (the handle is freed regardless)."""
        h = self._h
        if h is None:
            return
        for child in list(self._children):
            child._release(store_closing=True)
        self._h = None
        rc = _ffi.bp_store_close(h)
        _check_status(rc, "bp_store_close")

    def __enter__(self) -> "Store":
        self._handle("Store.__enter__")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None:
            try:
                warnings.warn(f"unclosed batpak store {self._h:#x}", ResourceWarning,
                              source=self)
                self.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        if self._h is None:
            return "<batpak.Store closed>"
        return f"<batpak.Store {self.path!r}>"

    def sync(self) -> None:
        """bp_store_sync: make every appended event durable now."""
        _check_status(_ffi.bp_store_sync(self._handle("bp_store_sync")), "bp_store_sync")

    def refresh(self) -> int:
        """bp_store_refresh: a read-only store takes in what the writer (another process)
        published since it opened or last refreshed. Returns the highest global_seq it now
        shows. Cursors of a read-only store refresh by themselves."""
        op = "bp_store_refresh"
        out = c_uint64(0)
        _check_status(_ffi.bp_store_refresh(self._handle(op), byref(out)), op)
        return out.value

    @property
    def path(self) -> str:
        """bp_store_dir: the directory this store was opened from."""
        return os.fsdecode(_ffi.bp_store_dir(self._handle("bp_store_dir")))

    @property
    def uuid(self) -> uuid.UUID:
        """bp_store_uuid: the store's identity."""
        out = (c_uint8 * 16)()
        _ffi.bp_store_uuid(self._handle("bp_store_uuid"), out)
        return uuid.UUID(bytes=bytes(out))

    @property
    def seals(self) -> bool:
        """bp_store_seals: this handle seals the payloads it writes."""
        return bool(_ffi.bp_store_seals(self._handle("bp_store_seals")))

    def open_report(self) -> OpenReport:
        """bp_store_open_report_get: what the open of this handle found and did."""
        r = _ffi.BpOpenReport()
        op = "bp_store_open_report_get"
        _check_status(_ffi.bp_store_open_report_get(self._handle(op), byref(r)), op)
        return OpenReport._from_c(r)

    # ------------------------------------------------------------- append
    def append(self, entity: str, scope: str, kind: int, payload: bytes = b"", *,
               expected_clock: Optional[int] = None, idempotency_key: Optional[str] = None,
               correlation_id: Optional[IdLike] = None, causation_id: Optional[IdLike] = None,
               durability: Optional[Durability] = None, schema_version: int = 0) -> Receipt:
        """bp_append_ex: append one event at (entity, scope).

        expected_clock: CAS on the entity's head clock (0: it has no events yet); a
        mismatch raises Conflict and writes nothing. idempotency_key: a committed key
        returns the original receipt with replayed=True. correlation_id / causation_id:
        event ids (uuid.UUID, str or 16 bytes). durability overrides the store's default
        for this append. schema_version is kept in the event's flags (0: not stated).

        A payload that is not bytes is a JSON-like value: for a kind the store holds a type
        for (Store.schemas()), checked against it (InvalidArgument naming the field) and
        written in its form with its version; for any other kind, its MessagePack."""
        op = "bp_append_ex"
        h = self._handle(op)
        keep: list = []
        e, s, k, p, typed_version = self._event_args(h, entity, scope, kind, payload, op)
        if typed_version is not None:
            schema_version = typed_version
        o = _append_options(op, keep, expected_clock=expected_clock,
                            idempotency_key=idempotency_key, correlation_id=correlation_id,
                            causation_id=causation_id, durability=durability,
                            schema_version=schema_version)
        r = _ffi.BpReceipt()
        rc = _ffi.bp_append_ex(h, byref(r), e, s, k, p, len(p), byref(o))
        _check_status(rc, op)
        return Receipt._from_c(r)

    @classmethod
    def _event_args(cls, h, entity: str, scope: str, kind: int, payload: Any, op: str
                    ) -> Tuple[bytes, bytes, int, bytes, Optional[int]]:
        """An append's entity, scope, kind and payload checked and made C arguments, with the
        payload's stored-type version (_encode)."""
        e = _cstr("entity", entity, op)
        s = _cstr("scope", scope, op)
        k = _uint("kind", kind, 16, op)
        p, version = cls._encode(h, k, payload, op)
        return e, s, k, p, version

    @staticmethod
    def _encode(h, kind: int, value: Any, op: str) -> Tuple[bytes, Optional[int]]:
        """A payload's bytes and, for a JSON-like value of a kind the store holds a type for,
        the type's version (its typed form, checked); else None: bytes-like and None as
        _payload takes them, any other value as its MessagePack. The value is turned into
        JSON text once."""
        if value is None or isinstance(value, (bytes, bytearray, memoryview)):
            return _payload(value, op), None
        text = _json_text(value, op)
        out = c_void_p()
        n = c_size_t()
        ver = ctypes.c_uint()
        rc = _ffi.bp_schema_encode_json(h, byref(out), byref(n), byref(ver), kind, text, len(text))
        if rc == _ffi.BP_ENOTFOUND:
            return _msgpack_of_text(text), None
        _check_status(rc, op)
        return _take_bytes(out, n), ver.value

    def worker(self, handler, region: Optional[Region] = None, *,
               checkpoint_id: Optional[str] = None, start_after: int = 0, batch: int = 0,
               checkpoint_every: int = 0, max_attempts: int = 0, backoff_ms: int = 0,
               backoff_max_ms: int = 0, skip_poison: bool = False, **filters: Any):
        """bp_cursor_worker: handler(event, attempt, idem_key) for each event of region (or
        filter keywords as in query), at least once, on the library's thread; see
        batpak.deliver.Worker. A handler that raises has the event retried."""
        from .deliver import start_worker
        return start_worker(self, handler, region, filters, checkpoint_id=checkpoint_id,
                            start_after=start_after, batch=batch,
                            checkpoint_every=checkpoint_every, max_attempts=max_attempts,
                            backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
                            skip_poison=skip_poison)

    def subscribe(self, capacity: int = 1024, region: Optional[Region] = None, **filters: Any):
        """bp_subscribe_lossy: notices of the events of region (or filter keywords as in
        query) published from now on, in a queue of capacity notices (see
        batpak.deliver.Subscription)."""
        from .deliver import Subscription
        op = "bp_subscribe_lossy"
        h = self._handle(op)
        keep: list = []
        r = _region(region, filters, op, keep)
        out = c_void_p()
        rc = _ffi.bp_subscribe_lossy(h, byref(out), byref(r), _uint("capacity", capacity, 32, op))
        _check_status(rc, op)
        return Subscription(self, out.value)

    def submit(self, entity: str, scope: str, kind: int, payload: Any = b"", *,
               expected_clock: Optional[int] = None, idempotency_key: Optional[str] = None,
               durability: Optional[Durability] = None):
        """bp_submit: queue an append and return a Ticket at once (its wait() gives the
        Receipt). The payload as append takes it."""
        from .deliver import Ticket
        op = "bp_submit"
        h = self._handle(op)
        keep: list = []
        e, s, k, p, ver = self._event_args(h, entity, scope, kind, payload, op)
        o = _append_options(op, keep, expected_clock=expected_clock,
                            idempotency_key=idempotency_key, correlation_id=None,
                            causation_id=None, durability=durability,
                            schema_version=ver or 0)
        buf = ctypes.create_string_buffer(p, len(p))
        keep += [e, s, buf, o]
        t = c_void_p()
        rc = _ffi.bp_submit(h, byref(t), e, s, k, ctypes.cast(buf, c_void_p), len(p), byref(o))
        _check_status(rc, op)
        return Ticket(t.value, keep)

    def record_schema(self, name: str, kind: int, version: int,
                      fields: Sequence[Union[Mapping[str, Any], Sequence[Any]]]) -> int:
        """bp_schema_record_json: record a payload type in the store, as a C program's
        bp_schema_record would: fields are dicts {name, type, shape, n} or tuples
        (name, type[, shape[, n]]) with type "bool", "int8".."uint64", "float32",
        "float64", "string" or "bytes", shape "one" (default), "opt" or "arr", n the
        bound of a string, bytes or array. The global_seq of the event it wrote, 0 when
        the store held that descriptor already. Raises Exists on a clash."""
        op = "bp_schema_record_json"
        h = self._handle(op)
        fs = []
        for f in fields:
            if isinstance(f, Mapping):
                fs.append({"name": f["name"], "type": f["type"], "shape": f.get("shape", "one"),
                           "n": f.get("n", 0)})
            else:
                f = list(f)
                fs.append({"name": f[0], "type": f[1], "shape": f[2] if len(f) > 2 else "one",
                           "n": f[3] if len(f) > 3 else 0})
        d = json.dumps({"name": name, "kind": kind, "version": version, "fields": fs}).encode()
        r = _ffi.BpReceipt()
        r.struct_size = ctypes.sizeof(r)
        rc = _ffi.bp_schema_record_json(h, byref(r), d, len(d))
        _check_status(rc, op)
        return r.global_seq

    def schemas(self) -> list:
        """bp_schema_json: the payload types the store holds (recorded by a program with
        bp_schema_record), as dicts {name, kind, version, fields}."""
        out = c_void_p()
        rc = _ffi.bp_schema_json(self._handle("bp_schema_json"), byref(out))
        _check_status(rc, "bp_schema_json")
        return json.loads(_take_string(out))

    def json_schema(self, kind: int, version: int = 0) -> dict:
        """bp_schema_json_schema: the JSON Schema of the stored type of kind (its newest
        version, or version). Raises NotFound when the store holds none."""
        out = c_void_p()
        rc = _ffi.bp_schema_json_schema(self._handle("bp_schema_json_schema"), byref(out),
                                        _uint("kind", kind, 16, "json_schema"),
                                        _uint("version", version, 8, "json_schema"))
        _check_status(rc, "bp_schema_json_schema")
        return json.loads(_take_string(out))

    def append_batch(self, items: Iterable[Union[BatchItem, Sequence[Any], Mapping[str, Any]]]
                     ) -> List[Receipt]:
        """bp_append_batch: append every item atomically (all visible and durable, or
        none). An item is a BatchItem, a tuple (entity, scope, kind[, payload]) or a dict
        of BatchItem's fields. Returns one receipt per item, in order. A payload that is not
        bytes is taken as append takes it: checked against the store's type of its kind, and
        written in that type's form (a bad one raises InvalidArgument naming its item and
        field, and nothing is written)."""
        op = "bp_append_batch"
        h = self._handle(op)
        its: List[BatchItem] = []
        for i, it in enumerate(items):
            if isinstance(it, BatchItem):
                its.append(it)
            elif isinstance(it, Mapping):
                its.append(BatchItem(**it))
            elif isinstance(it, (tuple, list)) and 3 <= len(it) <= 4:
                its.append(BatchItem(*it))
            else:
                raise TypeError(f"{op}: item {i}: a BatchItem, a tuple (entity, scope, kind"
                                f"[, payload]) or a dict, not {type(it).__name__}")
        n = len(its)
        keep: list = []
        arr = (_ffi.BpBatchItem * max(1, n))()
        for i, it in enumerate(its):
            where = f"{op} item {i}"
            e, s, k, p, typed_version = self._event_args(h, it.entity, it.scope, it.kind,
                                                         it.payload, where)
            pbuf = ctypes.c_char_p(p)
            o = _append_options(where, keep, expected_clock=it.expected_clock,
                                idempotency_key=it.idempotency_key,
                                correlation_id=it.correlation_id,
                                causation_id=it.causation_id,
                                schema_version=(it.schema_version if typed_version is None
                                                else typed_version))
            keep.extend((e, s, p, pbuf, o))
            arr[i].entity = e
            arr[i].scope = s
            arr[i].kind = k
            arr[i].payload = ctypes.cast(pbuf, c_void_p).value
            arr[i].len = len(p)
            arr[i].opts = ctypes.pointer(o)
        receipts = (_ffi.BpReceipt * max(1, n))()
        receipts[0].struct_size = ctypes.sizeof(_ffi.BpReceipt)  # the stride
        rc = _ffi.bp_append_batch(h, receipts, arr, n)
        _check_status(rc, op)
        return [Receipt._from_c(receipts[i]) for i in range(n)]

    # --------------------------------------------------------------- read
    def get(self, event_id: IdLike) -> Event:
        """bp_get: one published event by id (uuid.UUID, canonical text, or 16 bytes),
        with its payload. Raises NotFound."""
        op = "bp_get"
        h = self._handle(op)
        pid = _to_id(event_id, op)
        out = POINTER(_ffi.BpEvent)()
        rc = _ffi.bp_get(h, byref(out), byref(pid))
        _check_status(rc, op)
        try:
            return Event._from_c(out.contents)
        finally:
            _ffi.bp_event_free(out)

    def entity_head(self, entity: str) -> Tuple[int, bytes]:
        """bp_entity_head: (clock, event_hash) of the entity's last event; (0, zeros) for
        an unknown entity."""
        op = "bp_entity_head"
        h = self._handle(op)
        clock = c_uint64()
        hh = _ffi.BpHash()
        rc = _ffi.bp_entity_head(h, byref(clock), byref(hh), _cstr("entity", entity, op))
        _check_status(rc, op)
        return clock.value, bytes(hh.b)

    def _iter(self, op: str, fn: Any, arg: Any, flags: int, limit: Optional[int],
              keep: Any = None) -> "EventIterator":
        h = self._handle(op)
        if limit is not None:
            limit = _uint("limit", limit, 64, op)
        it = c_void_p()
        rc = fn(h, byref(it), arg, flags)
        _check_status(rc, op)
        return EventIterator(self, it.value, limit, keep)

    def stream(self, entity: str, *, index_only: bool = False,
               limit: Optional[int] = None) -> "EventIterator":
        """bp_stream: the events of one entity in clock order (empty for an unknown
        entity). index_only: no disk I/O, no payloads (BP_READ_INDEX_ONLY)."""
        op = "bp_stream"
        return self._iter(op, _ffi.bp_stream, _cstr("entity", entity, op),
                          _read_flags(index_only), limit)

    def by_scope(self, scope: str, *, index_only: bool = False,
                 limit: Optional[int] = None) -> "EventIterator":
        """bp_by_scope: the events of one scope in global_seq order."""
        op = "bp_by_scope"
        return self._iter(op, _ffi.bp_by_scope, _cstr("scope", scope, op),
                          _read_flags(index_only), limit)

    def by_kind(self, kind: int, *, index_only: bool = False,
                limit: Optional[int] = None) -> "EventIterator":
        """bp_by_kind: the events of one kind in global_seq order."""
        op = "bp_by_kind"
        return self._iter(op, _ffi.bp_by_kind, _uint("kind", kind, 16, op),
                          _read_flags(index_only), limit)

    def query(self, region: Optional[Region] = None, *, limit: Optional[int] = None,
              index_only: bool = False, **filters: Any) -> "EventIterator":
        """bp_query: the published events matching a Region (or the same fields as
        keywords: entity, entity_prefix, scope, kinds, category, from_seq, to_seq,
        since_ms, until_ms), in global_seq order, at most limit of them.
        Resume after the iterator's position: from_seq=it.position + 1."""
        op = "bp_query"
        keep: list = []
        r = _region(region, filters, op, keep)
        keep.append(r)
        return self._iter(op, _ffi.bp_query, byref(r), _read_flags(index_only), limit, keep)

    def query_page(self, region: Optional[Region] = None, *, limit: int,
                   after_seq: int = 0, index_only: bool = False, **filters: Any) -> Page:
        """One page of query(): up to limit events with global_seq > after_seq. Pass the
        page's position as after_seq for the next page; page.more says whether there is
        one."""
        op = "bp_query"
        limit = _uint("limit", limit, 64, op)
        if limit == 0:
            raise invalid("limit must be at least 1", op)
        after_seq = _uint("after_seq", after_seq, 64, op)
        keep: list = []
        r = _region(region, filters, op, keep)
        if after_seq >= (1 << 64) - 1:
            return Page([], after_seq, False)
        r.from_seq = max(r.from_seq, after_seq + 1)
        events: List[Event] = []
        with self._iter(op, _ffi.bp_query, byref(r), _read_flags(index_only), None,
                        keep) as it:
            for ev in it:
                if len(events) == limit:
                    return Page(events, events[-1].global_seq, True)
                events.append(ev)
        return Page(events, events[-1].global_seq if events else after_seq, False)

    def cursor(self, region: Optional[Region] = None, *, after_seq: int = 0,
               **filters: Any) -> "Cursor":
        """bp_cursor_open: a pull cursor over the events of region (or filter keywords as
        in query) with global_seq > after_seq, in order, losslessly, including events
        appended later."""
        op = "bp_cursor_open"
        h = self._handle(op)
        keep: list = []
        r = _region(region, filters, op, keep)
        after_seq = _uint("after_seq", after_seq, 64, op)
        c = c_void_p()
        rc = _ffi.bp_cursor_open(h, byref(c), byref(r), after_seq)
        _check_status(rc, op)
        return Cursor(self, c.value)

    def entities(self, prefix: Optional[str] = None, *, after: Optional[str] = None,
                 limit: Optional[int] = None) -> List[EntityInfo]:
        """bp_entities_list: the entities whose names begin with prefix, in bytewise order
        of their names, from the first after `after`; every one, or the first limit."""
        op = "bp_entities_list"
        h = self._handle(op)
        if limit is not None:
            limit = _uint("limit", limit, 32, op)
        out: List[EntityInfo] = []
        page = (_ffi.BpEntityInfo * 256)()
        page[0].struct_size = ctypes.sizeof(_ffi.BpEntityInfo)
        p = None if prefix is None else prefix.encode("utf-8")
        a = None if after is None else after.encode("utf-8")
        while limit is None or len(out) < limit:
            n = c_size_t(0)
            _check_status(_ffi.bp_entities_list(h, p, a, page, 256, byref(n)), op)
            for i in range(n.value):
                out.append(EntityInfo(page[i].name.decode("utf-8"), page[i].events,
                                      page[i].clock))
            if n.value < 256:
                break
            a = page[n.value - 1].name
        return out if limit is None else out[:limit]

    # ---------------------------------------------------------- maintenance
    def stats(self) -> Stats:
        """bp_store_stats_get."""
        op = "bp_store_stats_get"
        out = _ffi.BpStats()
        _check_status(_ffi.bp_store_stats_get(self._handle(op), byref(out)), op)
        return Stats._from_c(out)

    def verify(self, *, raise_on_problems: bool = False) -> VerifyReport:
        """bp_store_verify: re-read every segment and check CRCs, hashes, chains,
        the sequence, the index and the checkpoint. Returns the report (report.ok when
        clean); with raise_on_problems a store with problems raises Corrupt instead.
        I/O failures raise."""
        op = "bp_store_verify"
        h = self._handle(op)
        problems: List[Tuple[Optional[str], str]] = []

        def on_problem(_ctx: Any, entity: Optional[bytes], text: Optional[bytes]) -> None:
            problems.append((None if entity is None else entity.decode("utf-8", "replace"),
                             (text or b"").decode("utf-8", "replace")))

        cb = _ffi.PROBLEM_FN(on_problem)
        rep = _ffi.BpVerifyReport()
        opts = _ffi.BpVerifyOptions()
        opts.on_problem = cb
        rc = _ffi.bp_store_verify(h, byref(rep), byref(opts))
        if rc == _ffi.BP_OK or (rc == Corrupt.status and rep.problems and
                                not raise_on_problems):
            return VerifyReport(rep.segments, rep.frames, rep.events, rep.entities,
                                rep.problems, rep.first_problem.decode("utf-8", "replace"),
                                tuple(problems))
        _check_status(rc, op)
        raise BatpakError(rc, "unexpected status", op)  # not reached

    def snapshot(self, dest: PathLike) -> SnapshotReport:
        """bp_store_snapshot: a consistent online backup into dest (must not exist)."""
        op = "bp_store_snapshot"
        h = self._handle(op)
        d = os.fsencode(dest)
        if b"\0" in d:
            raise invalid("dest: contains a NUL byte", op)
        out = _ffi.BpSnapshotReport()
        _check_status(_ffi.bp_store_snapshot(h, byref(out), d), op)
        return SnapshotReport(out.global_seq, out.segments, out.bytes, out.duration_us)


def open(path: PathLike, **options: Any) -> Store:  # noqa: A001 (mirrors bp_store_open)
    """Open (and by default create) a store: Store(path, **options)."""
    return Store(path, **options)


# -------------------------------------------------------------- iterators
class _Child:
    """What an iterator and a cursor share: a library handle owned by a store, freed by
    close(), by the context manager, by the garbage collector, or when the store closes.
    Subclasses set _free and _position to the bp_ functions for their handle."""

    _free: Any = None
    _position: Any = None

    def __init__(self, store: "Store", handle: int) -> None:
        self._store = store
        self._h: Optional[int] = handle
        self._pos = 0
        self._store_closed = False
        store._children.add(self)

    @property
    def position(self) -> int:
        """global_seq of the last event returned (0, or the start, before the first)."""
        if self._h is not None:
            return type(self)._position(self._h)
        return self._pos

    def _release(self, store_closing: bool = False) -> None:
        h = self._h
        if h is None:
            return
        self._h = None
        self._store_closed = store_closing
        if not store_closing and self._store._h is None:
            return  # the store went first (only in garbage-collector teardown): leak, never
            # touch a handle of a freed store
        self._pos = type(self)._position(h)
        type(self)._free(h)

    def close(self) -> None:
        """Free the handle (idempotent)."""
        self._release()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._release()
        except Exception:
            pass


class EventIterator(_Child):
    """A bp_iter: the events published when it was created, copied out one at a time.
    Iterate it, or use it as a context manager; it is freed when exhausted, closed, or
    when its store closes."""

    _free = staticmethod(_ffi.bp_iter_free)
    _position = staticmethod(_ffi.bp_iter_position)

    def __init__(self, store: Store, handle: int, limit: Optional[int], keep: Any) -> None:
        super().__init__(store, handle)
        self._limit = limit
        self._keep = keep
        self._n = 0

    def __iter__(self) -> "EventIterator":
        return self

    def __next__(self) -> Event:
        h = self._h
        if h is None:
            if self._store_closed:
                raise StoreClosed(-1, "the store was closed during the iteration",
                                  "bp_iter_next")
            raise StopIteration
        if self._limit is not None and self._n >= self._limit:
            self._release()
            raise StopIteration
        ev = POINTER(_ffi.BpEvent)()
        rc = _ffi.bp_iter_next(h, byref(ev))
        if rc == _ffi.BP_DONE:
            self._release()
            raise StopIteration
        _check_status(rc, "bp_iter_next")
        self._n += 1
        return Event._from_c(ev.contents)


class Cursor(_Child):
    """A bp_cursor: ordered, lossless pull delivery of a region, waiting for new events.
    Used by one thread at a time; freed by close() or when its store closes."""

    _free = staticmethod(_ffi.bp_cursor_free)
    _position = staticmethod(_ffi.bp_cursor_position)

    def _handle(self, op: str) -> int:
        h = self._h
        if h is None:
            raise StoreClosed(-1, "the cursor is closed", op)
        return h

    def next_batch(self, max_events: int = 64, timeout_ms: int = 0) -> List[Event]:
        """bp_cursor_next: up to max_events (1..4096) events in global_seq order; when
        none is available wait up to timeout_ms for one (0: do not wait). An empty list
        means nothing arrived in time (or the region's to_seq is passed)."""
        op = "bp_cursor_next"
        h = self._handle(op)
        max_events = _uint("max_events", max_events, 64, op)
        if not 1 <= max_events <= _ffi.BP_CURSOR_BATCH_MAX:
            raise invalid(f"max_events {max_events} out of range 1..{_ffi.BP_CURSOR_BATCH_MAX}",
                          op)
        timeout_ms = _uint("timeout_ms", timeout_ms, 32, op)
        evs = (POINTER(_ffi.BpEvent) * max_events)()
        n = c_size_t(0)
        rc = _ffi.bp_cursor_next(h, evs, max_events, byref(n), timeout_ms)
        if rc in (_ffi.BP_DONE, _ffi.BP_ETIMEDOUT):  # finished, or nothing new in time
            return []
        _check_status(rc, op)
        return [Event._from_c(evs[i].contents) for i in range(n.value)]

    def events(self, *, timeout_ms: int = 0, max_events: int = 64) -> Iterator[Event]:
        """Events one at a time, batch by batch, until a batch comes back empty (nothing
        arrived within timeout_ms)."""
        while True:
            batch = self.next_batch(max_events, timeout_ms)
            if not batch:
                return
            yield from batch

    def __iter__(self) -> Iterator[Event]:
        """The events available now (events(timeout_ms=0))."""
        return self.events()
