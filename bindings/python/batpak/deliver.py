"""Delivery from Python: durable cursor workers (bp_cursor_worker), tickets (bp_submit) and
projections (a fold in Python over Python state, incremental per entity, optionally kept
in a file). Store.worker, Store.submit and batpak.Projection are the entry points."""
from __future__ import annotations

import ctypes
import os
import pickle
import threading
from ctypes import byref, c_void_p
from typing import Any, Callable, Dict, Optional, Tuple

from . import _ffi
from ._types import Event, Receipt
from .errors import StoreClosed, invalid

# what a handler's exception becomes: an error, so the worker retries the event
_HANDLER_FAILED = -1  # BP_EINVAL


class Worker:
    """A running bp_cursor_worker: handler(event, attempt, idem_key) runs on the library's
    thread for each event of the region, in global_seq order, at least once. Return
    normally when the event is handled; raise to have it retried (with backoff; after
    max_attempts it is poison: the worker stops, or skips it with skip_poison). With a
    checkpoint_id the position is kept in DIR/cursors/ID.ckpt and a restarted worker
    resumes after it. stop() (or the context manager) stops it and raises what stopped it
    early, if anything."""

    def __init__(self, store, handle: int, fn) -> None:
        self._store = store
        self._h: Optional[int] = handle
        self._fn = fn  # (the C callback must live as long as the worker)
        self.errors: list = []  # exceptions the handler raised, in order (the last 100)

    def wait(self, global_seq: int, timeout_ms: int = 10000) -> bool:
        """bp_worker_wait: True once the worker has handled every event up to global_seq."""
        if self._h is None:
            raise StoreClosed(-1, "the worker is stopped", "bp_worker_wait")
        rc = _ffi.bp_worker_wait(self._h, global_seq, timeout_ms)
        if rc == _ffi.BP_ETIMEDOUT:
            return False
        from .store import _check_status
        _check_status(rc, "bp_worker_wait")
        return True

    def stop(self) -> None:
        """bp_worker_stop: stop after the event in hand, persist the position, free it."""
        h, self._h = self._h, None
        if h is None:
            return
        self._store._children.discard(self)
        rc = _ffi.bp_worker_stop(h)
        from .store import _check_status
        _check_status(rc, "bp_worker_stop")

    def _release(self, store_closing: bool = False) -> None:
        try:
            self.stop()
        except Exception:
            pass

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_worker(store, handler: Callable[[Event, int, str], Any], region, filters, *,
                 checkpoint_id: Optional[str] = None, start_after: int = 0, batch: int = 0,
                 checkpoint_every: int = 0, max_attempts: int = 0, backoff_ms: int = 0,
                 backoff_max_ms: int = 0, skip_poison: bool = False) -> Worker:
    from .store import _check_status, _region, _uint
    op = "bp_cursor_worker"
    h = store._handle(op)
    keep: list = []
    r = _region(region, filters, op, keep)
    cfg = _ffi.BpWorkerConfig()
    cfg.struct_size = ctypes.sizeof(cfg)
    if checkpoint_id is not None:
        cid = checkpoint_id.encode("utf-8")
        keep.append(cid)
        cfg.checkpoint_id = cid
    cfg.start_after = _uint("start_after", start_after, 64, op)
    cfg.batch = _uint("batch", batch, 32, op)
    cfg.checkpoint_every = _uint("checkpoint_every", checkpoint_every, 32, op)
    cfg.max_attempts = _uint("max_attempts", max_attempts, 32, op)
    cfg.backoff_ms = _uint("backoff_ms", backoff_ms, 32, op)
    cfg.backoff_max_ms = _uint("backoff_max_ms", backoff_max_ms, 32, op)
    cfg.poison = 1 if skip_poison else 0
    holder: Dict[str, Worker] = {}

    def call(_ctx: Any, d) -> int:
        dv = d.contents
        try:
            handler(Event._from_c(dv.ev.contents), dv.attempt,
                    dv.idem_key.decode("utf-8", "replace"))
            return _ffi.BP_OK
        except BaseException as e:  # (a C thread: nothing may propagate)
            w = holder.get("w")
            if w is not None:
                w.errors = (w.errors + [e])[-100:]
            return _HANDLER_FAILED

    fn = _ffi.WORKER_FN(call)
    out = c_void_p()
    rc = _ffi.bp_cursor_worker(h, byref(out), byref(r), fn, None, byref(cfg))
    _check_status(rc, op)
    w = Worker(store, out.value, fn)
    holder["w"] = w
    store._children.add(w)
    return w


class Notice:
    """A notice of a lossy subscription: which event was published (not the event)."""

    __slots__ = ("global_seq", "clock", "hlc", "event_id", "kind", "entity", "scope")

    def __init__(self, n) -> None:
        import uuid
        self.global_seq, self.clock, self.hlc, self.kind = n.global_seq, n.clock, n.hlc, n.kind
        self.event_id = uuid.UUID(bytes=bytes(n.event_id.b))
        self.entity = n.entity.decode("utf-8")
        self.scope = n.scope.decode("utf-8")

    def __repr__(self) -> str:
        return f"Notice(global_seq={self.global_seq}, entity={self.entity!r}, kind={self.kind})"


class Subscription:
    """A lossy subscription (bp_subscribe_lossy): a bounded queue of notices of the events
    published from now on; when it is full new notices are dropped and counted (missed()),
    the writer never waits. Catch up with a cursor from the first missed seq."""

    def __init__(self, store, handle: int) -> None:
        self._store = store
        self._h: Optional[int] = handle
        store._children.add(self)

    def next(self, timeout_ms: int = 0) -> Optional[Notice]:
        """The oldest notice; wait up to timeout_ms for one (0: do not). None when none came."""
        from .store import _check_status
        if self._h is None:
            raise StoreClosed(-1, "the subscription is closed", "bp_subscription_next")
        n = _ffi.BpNotice()
        n.struct_size = ctypes.sizeof(n)
        rc = _ffi.bp_subscription_next(self._h, byref(n), timeout_ms)
        if rc == _ffi.BP_ETIMEDOUT:
            return None
        _check_status(rc, "bp_subscription_next")
        return Notice(n)

    def missed(self) -> Tuple[int, int]:
        """(count, from_seq): notices dropped since the last call, and a seq at or before the
        first of them (0: none); a cursor with after_seq=from_seq - 1 reads them."""
        if self._h is None:
            raise StoreClosed(-1, "the subscription is closed", "bp_subscription_missed")
        count, first = ctypes.c_uint64(), ctypes.c_uint64()
        _ffi.bp_subscription_missed(self._h, byref(count), byref(first))
        return count.value, first.value

    def close(self) -> None:
        h, self._h = self._h, None
        if h is not None:
            self._store._children.discard(self)
            _ffi.bp_unsubscribe(h)

    def _release(self, store_closing: bool = False) -> None:
        self.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Ticket:
    """A submitted append (bp_submit): it commits on the store's group-commit path while the
    caller goes on. done tells whether it is decided; wait() returns its Receipt or raises
    what the append would have raised."""

    def __init__(self, handle: int, keep: list) -> None:
        self._h: Optional[int] = handle
        self._keep = keep  # (the payload and options, until decided)

    @property
    def done(self) -> bool:
        return self._h is None or bool(_ffi.bp_ticket_poll(self._h))

    def wait(self, timeout_ms: Optional[int] = None) -> Optional[Receipt]:
        """The receipt, or None when still queued after timeout_ms (None: no limit)."""
        from .store import _check_status
        if self._h is None:
            raise StoreClosed(-1, "the ticket is released", "bp_ticket_wait")
        r = _ffi.BpReceipt()
        r.struct_size = ctypes.sizeof(r)
        t = 0xFFFFFFFF if timeout_ms is None else timeout_ms
        rc = _ffi.bp_ticket_wait(self._h, byref(r), t)
        if rc == _ffi.BP_ETIMEDOUT:
            return None
        _check_status(rc, "bp_ticket_wait")
        return Receipt._from_c(r)

    def close(self) -> None:
        h, self._h = self._h, None
        if h is not None:
            _ffi.bp_ticket_free(h)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class Projection:
    """A fold in Python: fold(state, event) -> new state, from initial, per entity,
    incremental: get(store, entity) folds only the events after the last one it folded for
    that entity (a repeated call after one append folds one event). States are kept in
    memory, and in path (pickle, written whole as tmp + rename) when one is given, so a
    restart does not fold again. A state is the fold's: keep it to plain values. Thread-safe.

        balance = batpak.Projection(lambda s, ev: s + ev.value["add"], 0, path="bal.pickle")
        print(balance.get(store, "account:7"))
    """

    def __init__(self, fold: Callable[[Any, Event], Any], initial: Any = None, *,
                 path: Optional[str] = None) -> None:
        self._fold = fold
        self._initial = initial
        self._path = path
        self._lock = threading.Lock()
        self._states: Dict[Tuple[bytes, str], Tuple[int, int, Any]] = {}
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                self._states = pickle.load(f)

    def get(self, store, entity: str) -> Any:
        """The state of entity: its events folded, from the initial state."""
        key = (store.uuid.bytes, entity)
        with self._lock:
            clock, seq, state = self._states.get(key, (0, 0, self._initial))
            folded = 0
            for ev in store.query(entity=entity, from_seq=seq + 1):  # (only what is new)
                if ev.clock <= clock:
                    continue
                state = self._fold(state, ev)
                clock, seq = ev.clock, ev.global_seq
                folded += 1
            self._states[key] = (clock, seq, state)
            if folded and self._path:
                self.save()
            return state

    def save(self) -> None:
        """Write the states to path now (get does after each call that folded)."""
        if not self._path:
            raise invalid("this projection has no path", "Projection.save")
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(self._states, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
