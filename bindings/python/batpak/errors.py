"""The BatpakError hierarchy: one class per bp_status error code (common.h)."""
from __future__ import annotations

from typing import Dict, Optional, Type

from . import _ffi


class BatpakError(Exception):
    """A libbatpak call failed.

    status:  the bp_status code (negative; see Status).
    message: the library's bp_last_error() text for the failed call (what, where, why),
             or the binding's own message when it refused the input before calling C.
    """

    status: int = 0

    def __init__(self, status: int, message: str, op: Optional[str] = None) -> None:
        self.status = status
        self.message = message
        self.op = op
        super().__init__(status, message)

    @property
    def strerror(self) -> str:
        """bp_strerror(status): the short name of the code ("conflict", ...)."""
        return _ffi.bp_strerror(self.status).decode()

    def __str__(self) -> str:
        where = f"{self.op}: " if self.op else ""
        return f"{where}{self.message} [{self.strerror}, status {self.status}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class InvalidArgument(BatpakError, ValueError):
    """BP_EINVAL: a bad coordinate, kind, option, id... (also raised by the binding)."""
    status = -1


class NotFound(BatpakError, LookupError):
    """BP_ENOTFOUND: no such event, entity or store."""
    status = -2


class Conflict(BatpakError):
    """BP_ECONFLICT: a CAS expectation failed, or an idempotency key conflict."""
    status = -3


class Corrupt(BatpakError):
    """BP_ECORRUPT: on-disk data failed a CRC, hash or structure check."""
    status = -4


class StoreIOError(BatpakError):
    """BP_EIO: an I/O call failed; the store is fail-stopped until reopened."""
    status = -5


class Locked(BatpakError):
    """BP_ELOCKED: another handle holds the store directory's lock."""
    status = -6


class VersionError(BatpakError):
    """BP_EVERSION: unknown on-disk format version."""
    status = -7


class OutOfMemory(BatpakError, MemoryError):
    """BP_ENOMEM."""
    status = -8


class Busy(BatpakError):
    """BP_EBUSY: a queue is full."""
    status = -9


class TooBig(BatpakError, ValueError):
    """BP_ETOOBIG: a payload or batch larger than the limit."""
    status = -10


class ReadOnly(BatpakError):
    """BP_EREADONLY: a write on a read-only handle."""
    status = -11


class Denied(BatpakError):
    """BP_EDENIED: a gate denied the proposal."""
    status = -13


class Exists(BatpakError):
    """BP_EEXIST: already exists / already registered."""
    status = -14


class SignatureError(BatpakError):
    """BP_ESIGNATURE: a receipt's signature does not verify."""
    status = -15


class TimedOut(BatpakError):
    """BP_ETIMEDOUT."""
    status = -16


class Canceled(BatpakError):
    """BP_ECANCELED: the append belonged to a cancelled visibility fence."""
    status = -17


class StoreClosed(BatpakError):
    """The Python handle (store, iterator, cursor) was used after close(). Not a C status:
    status is BP_EINVAL."""
    status = -1


_BY_STATUS: Dict[int, Type[BatpakError]] = {
    c.status: c
    for c in (InvalidArgument, NotFound, Conflict, Corrupt, StoreIOError, Locked, VersionError,
              OutOfMemory, Busy, TooBig, ReadOnly, Denied, Exists, SignatureError, TimedOut,
              Canceled)
}


def error_class(status: int) -> Type[BatpakError]:
    """The exception class for a bp_status code (BatpakError for an unknown one)."""
    return _BY_STATUS.get(status, BatpakError)


def raise_for(status: int, op: str) -> None:
    """Raise the error for a failed call (status < 0), with bp_last_error()'s text.

    Must be called right after the failing C call, on the same thread, before any other
    batpak call: the message is thread-local and replaced by the next failure.
    """
    if status >= 0:
        return
    msg = _ffi.bp_last_error().decode("utf-8", "replace")
    raise error_class(status)(status, msg, op)


def invalid(message: str, op: Optional[str] = None) -> InvalidArgument:
    """An InvalidArgument raised by the binding itself (before calling C)."""
    return InvalidArgument(-1, message, op)
