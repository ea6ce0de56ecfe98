"""Open, close, append (options, durability, batches), get, stats, verify, snapshot."""
import ctypes
import glob
import os
import threading
import time
import uuid

import pytest

import batpak
from batpak import _ffi
from conftest import APP, APP2, mp_map

ZERO32 = bytes(32)


# ------------------------------------------------------------------- open / close
def test_open_creates_and_context_manager_closes(store_path):
    with batpak.Store(store_path) as s:
        assert not s.closed
        rep = s.open_report()
        assert rep.created is True
        assert rep.events == 0 and rep.bytes_cut == 0 and rep.frames_cut == 0
        assert s.path == store_path
        assert isinstance(s.uuid, uuid.UUID) and s.uuid.int != 0
        # a writable open appends SYSTEM_OPEN_COMPLETED at batpak:store / batpak:lifecycle
        evs = list(s.stream("batpak:store"))
        assert [(e.kind, e.scope, e.clock, e.global_seq) for e in evs] == [
            (batpak.KIND_SYSTEM_OPEN_COMPLETED, "batpak:lifecycle", 1, 1)]
        # its payload is the open report as a MessagePack map
        report = evs[0].payload_json()
        assert report["events"] == rep.events == 0
        assert report["segments"] == rep.segments
        assert report["checkpoint"] == rep.checkpoint_note
    assert s.closed
    s.close()  # a second close is a no-op
    with pytest.raises(batpak.StoreClosed):
        s.append("a", "b", APP, b"")
    with pytest.raises(batpak.StoreClosed):
        s.stats()
    assert repr(s) == "<batpak.Store closed>"
    assert os.path.isfile(os.path.join(store_path, "STORE"))


def test_unclosed_store_is_closed_when_collected(store_path):
    s = batpak.Store(store_path)
    it = s.query()  # an open iterator keeps its store alive
    s.append("e", "s", APP, b"")
    del s
    with pytest.raises(batpak.Locked):
        batpak.Store(store_path)
    with pytest.warns(ResourceWarning, match="unclosed batpak store"):
        del it  # the last reference: the iterator goes, then the store, with a warning
        import gc
        gc.collect()
    with batpak.Store(store_path, read_only=True) as s2:  # the lock was released
        assert s2.stats().events == 2  # the open event and the append


def test_open_function_and_reopen_keeps_events(store_path):
    s = batpak.open(store_path, no_open_event=True)
    store_id = s.uuid
    r = s.append("acct:1", "bank", APP, b"\x01\x02")
    s.close()
    with batpak.Store(store_path, create=False, no_open_event=True) as s2:
        rep = s2.open_report()
        assert rep.created is False
        assert rep.checkpoint_used is True  # close wrote index.ckpt
        assert rep.events == 1
        assert s2.uuid == store_id
        ev = s2.get(r.event_id)
        assert ev.payload == b"\x01\x02" and ev.clock == 1 and ev.global_seq == 1


def test_lost_segment_is_refused_until_accepted(store_path):
    with batpak.Store(store_path, segment_size=4096, no_open_event=True) as s:
        for i in range(200):
            s.append("acct:1", "bank", APP, b"x" * 40)
    segs = sorted(glob.glob(os.path.join(store_path, "segments", "*.fbat")))
    assert len(segs) >= 3
    os.unlink(segs[-1])
    with pytest.raises(batpak.Corrupt) as ei:
        batpak.Store(store_path)
    assert "%s is missing" % os.path.basename(segs[-1])[:6] in str(ei.value)
    assert "accept_loss" in str(ei.value)
    with batpak.Store(store_path, accept_loss=True) as s:
        rep = s.open_report()
        assert rep.events_lost > 0 and rep.events + rep.events_lost == 200
        assert rep.first_lost_seq == rep.events + 1 and rep.segments_lost == 1
        assert "is missing" in rep.loss_note
        report = list(s.stream("batpak:store"))[-1].payload_json()
        assert report["events_lost"] == rep.events_lost and report["loss"] == rep.loss_note
    with batpak.Store(store_path) as s:  # accepted and recorded: no flag needed
        assert s.open_report().loss_note == ""


def test_open_missing_store_without_create_is_not_found(store_path):
    with pytest.raises(batpak.NotFound) as ei:
        batpak.Store(store_path, create=False)
    e = ei.value
    assert e.status == -2
    assert store_path in e.message
    assert "not found" in str(e)
    assert isinstance(e, LookupError) and isinstance(e, batpak.BatpakError)
    assert not os.path.exists(store_path)


def test_second_open_of_same_directory_is_locked(store_path):
    with batpak.Store(store_path):
        with pytest.raises(batpak.Locked) as ei:
            batpak.Store(store_path)
        assert ei.value.status == -6
        assert store_path in ei.value.message
        assert f"pid {os.getpid()}" in ei.value.message
    batpak.Store(store_path).close()  # the lock went with the close


def _reader_process(code, store_path):
    """A second Python process running code (sys.argv[1]: the store) with this one's path."""
    import subprocess
    import sys
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen([sys.executable, "-c", code, store_path], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_read_only_beside_a_writer_in_another_process(store_path):
    # one writer, any number of readers: a second process opens read-only and sees what
    # the writer had published when it opened
    code = ("import batpak, sys\n"
            "with batpak.Store(sys.argv[1], read_only=True) as r:\n"
            "    st = r.stats()\n"
            "    print(len([e for e in r.stream('doc:1')]), st.read_only, st.writer_pid,\n"
            "          st.readers)\n")
    with batpak.Store(store_path, no_open_event=True) as w:
        for i in range(3):
            w.append("doc:1", "docs", APP, b"v%d" % i)
        p = _reader_process(code, store_path)
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        assert stdout.split() == ["3", "True", str(os.getpid()), "1"]
        with batpak.Store(store_path, read_only=True) as r:  # and in this process
            assert [e.payload for e in r.stream("doc:1")] == [b"v0", b"v1", b"v2"]
        w.append("doc:1", "docs", APP, b"v3")  # the writer goes on


def test_read_only_follows_a_writer_in_another_process(store_path):
    # a second process opens read-only and follows: its cursor wakes as the writer appends,
    # and refresh() takes in what was published since
    code = ("import batpak, sys\n"
            "with batpak.Store(sys.argv[1], read_only=True) as r:\n"
            "    print('open', r.refresh(), flush=True)\n"
            "    c = r.cursor(entity='doc:1')\n"
            "    got = []\n"
            "    while len(got) < 5:\n"
            "        got += [e.payload.decode() for e in c.next_batch(64, timeout_ms=10000)]\n"
            "    print(' '.join(got), r.refresh(), flush=True)\n")
    with batpak.Store(store_path, no_open_event=True) as w:
        w.append("doc:1", "docs", APP, b"v0")
        p = _reader_process(code, store_path)
        try:
            assert p.stdout.readline().split() == ["open", "1"]
            for i in range(1, 5):
                w.append("doc:1", "docs", APP, b"v%d" % i)
            w.append("doc:2", "docs", APP, b"other")
            out, err = p.communicate(timeout=60)
        finally:
            p.kill()
        assert p.returncode == 0, err
        words = out.split()
        assert words[:5] == ["v0", "v1", "v2", "v3", "v4"]
        assert int(words[5]) >= 5


def test_read_only_refuses_appends_and_reads(store_path):
    with batpak.Store(store_path, no_open_event=True) as s:
        r = s.append("doc:1", "docs", APP, b"v1")
    with batpak.Store(store_path, read_only=True) as ro:
        with pytest.raises(batpak.ReadOnly) as ei:
            ro.append("doc:1", "docs", APP, b"v2")
        assert ei.value.status == -11 and "read-only" in ei.value.message
        with pytest.raises(batpak.ReadOnly):
            ro.append_batch([("doc:2", "docs", APP, b"")])
        assert ro.get(r.event_id).payload == b"v1"
        st = ro.stats()
        assert st.read_only is True and st.events == 1 and st.appends == 0
        assert [e.payload for e in ro.stream("doc:1")] == [b"v1"]


def test_open_option_values_are_checked(store_path):
    with pytest.raises(batpak.InvalidArgument) as ei:
        batpak.Store(store_path, segment_size=100)
    assert "segment_size" in ei.value.message
    with pytest.raises(batpak.InvalidArgument):
        batpak.Store(store_path, max_payload=(16 << 20) + 1)
    with pytest.raises(batpak.InvalidArgument):  # would be truncated by a uint32 field
        batpak.Store(store_path, segment_size=1 << 40)
    with pytest.raises(batpak.InvalidArgument) as ei:
        batpak.Store(store_path, durability=batpak.Durability(batpak.DurabilityMode.EVERY))
    assert "BP_DURABLE_EVERY" in ei.value.message
    assert not os.path.exists(os.path.join(store_path, "STORE"))


def test_max_payload_and_segment_size_are_applied(store_path):
    with batpak.Store(store_path, no_open_event=True, max_payload=64,
                      segment_size=4096) as s:
        s.append("e", "s", APP, bytes(64))
        with pytest.raises(batpak.TooBig) as ei:
            s.append("e", "s", APP, bytes(65))
        assert "65" in ei.value.message
        for _ in range(100):  # 100 * 64+ bytes > 4 KiB: the segment rotates
            s.append("e", "s", APP, bytes(64))
        assert s.stats().segments >= 2


# --------------------------------------------------------------------- append
def test_receipt_fields_round_trip_through_get(store):
    t0 = int(time.time() * 1000)
    r = store.append("order:17", "shop", APP2, b"\x93\x01\x02\x03")
    t1 = int(time.time() * 1000)
    assert isinstance(r, batpak.Receipt)
    assert (r.global_seq, r.clock) == (1, 1)
    assert r.entity == "order:17" and r.scope == "shop" and r.kind == APP2
    assert r.durability == batpak.DurabilityMode.SYNC and r.replayed is False
    assert r.prev_hash == ZERO32 and len(r.event_hash) == 32 and r.event_hash != ZERO32
    assert r.store_id == store.uuid
    assert r.is_signed is False and r.key_id == bytes(32) and r.signature == bytes(64)
    assert r.event_id.version == 7  # UUIDv7
    assert t0 - 5 <= (r.hlc >> 16) <= t1 + 5

    ev = store.get(r.event_id)
    assert isinstance(ev, batpak.Event)
    assert (ev.event_id, ev.global_seq, ev.clock, ev.hlc, ev.kind) == (
        r.event_id, r.global_seq, r.clock, r.hlc, r.kind)
    assert (ev.entity, ev.scope) == (r.entity, r.scope)
    assert (ev.prev_hash, ev.event_hash) == (r.prev_hash, r.event_hash)
    assert ev.payload == b"\x93\x01\x02\x03"
    assert ev.correlation_id == ev.event_id and ev.causation_id is None
    assert ev.idempotency_key is None
    assert (ev.batch_id, ev.batch_index, ev.batch_count) == (0, 0, 0)
    assert ev.header_only is False and ev.payload_forgotten is False and ev.flags == 0
    assert ev.category == 1 and ev.type_id == 2
    assert ev.hlc_wall_ms == r.hlc >> 16 and ev.hlc_logical == r.hlc & 0xFFFF

    # the id's byte order is the library's: bp_id_format / bp_id_time_ms agree with uuid
    cid = _ffi.BpId.from_buffer_copy(r.event_id.bytes)
    buf = ctypes.create_string_buffer(37)
    _ffi.bp_id_format(ctypes.byref(cid), buf)
    assert buf.value.decode() == str(r.event_id)
    assert _ffi.bp_id_time_ms(ctypes.byref(cid)) == ev.time_ms
    assert t0 - 5 <= ev.time_ms <= t1 + 5

    # get accepts the id as text (with or without dashes) and as 16 bytes
    assert store.get(str(r.event_id)) == ev
    assert store.get(r.event_id.hex) == ev
    assert store.get(r.event_id.bytes) == ev


def test_chain_clocks_and_sequence(store):
    rs = [store.append("acct:7", "bank", APP, bytes([i])) for i in range(5)]
    other = store.append("acct:8", "bank", APP, b"")
    assert [r.clock for r in rs] == [1, 2, 3, 4, 5]
    assert [r.global_seq for r in rs] == [1, 2, 3, 4, 5] and other.global_seq == 6
    assert other.clock == 1 and other.prev_hash == ZERO32
    for prev, cur in zip(rs, rs[1:]):
        assert cur.prev_hash == prev.event_hash
    assert len({r.event_id for r in rs}) == 5
    assert store.entity_head("acct:7") == (5, rs[-1].event_hash)
    assert store.entity_head("acct:unknown") == (0, ZERO32)
    evs = list(store.stream("acct:7"))
    assert [e.event_hash for e in evs] == [r.event_hash for r in rs]
    assert [e.payload for e in evs] == [bytes([i]) for i in range(5)]


def test_payload_kinds_of_bytes(store):
    blob = bytes(range(256)) * 3  # NULs and every byte value
    r1 = store.append("p", "s", APP, blob)
    r2 = store.append("p", "s", APP, bytearray(b"\x00abc"))
    r3 = store.append("p", "s", APP, memoryview(b"xyz\x00"))
    r4 = store.append("p", "s", APP)
    assert store.get(r1.event_id).payload == blob
    assert store.get(r2.event_id).payload == b"\x00abc"
    assert store.get(r3.event_id).payload == b"xyz\x00"
    assert store.get(r4.event_id).payload == b""
    with pytest.raises(TypeError):
        store.append("p", "s", APP, {"not": {1, 2}})  # a set has no JSON form
    assert store.stats().events == 4


def test_append_json_like_values_and_read_them_back(store):
    values = [{"add": 10, "who": "ada", "tags": ["a", "b"], "ok": True, "none": None},
              [1, -2, 3.5, 2**63 - 1, -2**63], "text is a JSON string", 0, None, {},
              {"nested": {"deep": [{"x": 1.25}]}, "ünïcode": "✓"}]
    ids = [store.append("j", "s", APP, v).event_id for v in values]
    for v, i in zip(values, ids):
        ev = store.get(i)
        if v is None:  # (None is an empty payload, which reads back as None)
            assert ev.payload == b""
        assert ev.value == v
        assert ev.payload == batpak.to_msgpack(v) or v is None
    # the library's encoding: the shortest forms (fixmap, fixstr, positive fixint)
    assert batpak.to_msgpack({"a": 1}) == b"\x81\xa1a\x01"
    assert batpak.to_msgpack([]) == b"\x90"
    assert batpak.to_msgpack(2**32) == b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00"
    assert batpak.payload_json(batpak.to_msgpack({"k": [1, "2"]})) == {"k": [1, "2"]}
    # what has no JSON form says so, and nothing is appended
    before = store.stats().events
    for bad in ({"x": float("nan")}, {1: object()}, {"b": b"bytes"}, 2**64):
        with pytest.raises((TypeError, batpak.InvalidArgument)) as ei:
            store.append("j", "s", APP, bad)
        assert "append" in str(ei.value) or "bp_json_to_msgpack" in str(ei.value)
    assert store.stats().events == before
    # batches take values too
    rs = store.append_batch([("j:1", "s", APP, {"n": 1}), ("j:2", "s", APP, [2])])
    assert [store.get(r.event_id).value for r in rs] == [{"n": 1}, [2]]


def test_cas_expected_clock(store):
    r1 = store.append("order:1", "shop", APP, b"a", expected_clock=0)
    assert r1.clock == 1
    with pytest.raises(batpak.Conflict) as ei:
        store.append("order:1", "shop", APP, b"b", expected_clock=0)
    e = ei.value
    assert e.status == -3
    assert "order:1" in e.message and "expected clock 0" in e.message
    assert "conflict" in str(e)
    r2 = store.append("order:1", "shop", APP, b"c", expected_clock=1)
    assert r2.clock == 2
    with pytest.raises(batpak.Conflict):
        store.append("order:1", "shop", APP, b"d", expected_clock=5)
    assert [e.payload for e in store.stream("order:1")] == [b"a", b"c"]
    assert store.stats().events == 2


def test_idempotency_key(store):
    r1 = store.append("pay:1", "bank", APP, b"x", idempotency_key="request-8812")
    r2 = store.append("pay:1", "bank", APP, b"x", idempotency_key="request-8812")
    assert r1.replayed is False and r2.replayed is True
    assert (r2.event_id, r2.global_seq, r2.clock, r2.event_hash) == (
        r1.event_id, r1.global_seq, r1.clock, r1.event_hash)
    assert store.stats().events == 1
    assert store.get(r1.event_id).idempotency_key == "request-8812"
    with pytest.raises(batpak.Conflict):  # the same key for another entity
        store.append("pay:2", "bank", APP, b"x", idempotency_key="request-8812")
    with pytest.raises(batpak.InvalidArgument):
        store.append("pay:1", "bank", APP, b"x", idempotency_key="k" * 256)
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.append("pay:1", "bank", APP, b"x", idempotency_key="a\0b")
    assert "NUL" in ei.value.message
    assert store.stats().events == 1


def test_idempotency_key_survives_reopen(store_path):
    with batpak.Store(store_path, no_open_event=True) as s:
        r1 = s.append("pay:1", "bank", APP, b"x", idempotency_key="once")
    with batpak.Store(store_path, no_open_event=True) as s:
        r2 = s.append("pay:1", "bank", APP, b"x", idempotency_key="once")
        assert r2.replayed and r2.event_id == r1.event_id
        assert s.stats().events == 1


def test_correlation_and_causation(store):
    cause = store.append("order:1", "shop", APP, b"")
    r = store.append("mail:1", "mail", APP2, b"", causation_id=cause.event_id,
                     correlation_id=str(cause.event_id))
    ev = store.get(r.event_id)
    assert ev.causation_id == cause.event_id
    assert ev.correlation_id == cause.event_id
    r2 = store.append("mail:1", "mail", APP2, b"", causation_id=cause.event_id.bytes)
    ev2 = store.get(r2.event_id)
    assert ev2.causation_id == cause.event_id and ev2.correlation_id == r2.event_id
    with pytest.raises(batpak.InvalidArgument):
        store.append("mail:1", "mail", APP2, b"", causation_id="not-an-id")
    with pytest.raises(batpak.InvalidArgument):
        store.append("mail:1", "mail", APP2, b"", causation_id=b"short")


def test_durability_modes(store_path):
    with batpak.Store(store_path, no_open_event=True, durability=batpak.NO_SYNC) as s:
        f0 = s.stats().fsyncs
        rs = [s.append("d", "s", APP, b"x") for _ in range(5)]
        assert all(r.durability == batpak.DurabilityMode.NONE for r in rs)
        assert s.stats().fsyncs == f0  # nothing synced yet
        r = s.append("d", "s", APP, b"x", durability=batpak.DURABLE)
        assert r.durability == batpak.DurabilityMode.SYNC
        assert s.stats().fsyncs > f0
        r = s.append("d", "s", APP, b"x", durability=batpak.durable_every(1000, 60000))
        assert r.durability == batpak.DurabilityMode.EVERY
        f1 = s.stats().fsyncs
        s.sync()
        assert s.stats().fsyncs == f1 + 1
        assert s.stats().appends == 7


def test_schema_version_is_kept_in_flags(store):
    r = store.append("t", "s", APP, b"", schema_version=3)
    assert store.get(r.event_id).flags & 0xFF == 3
    with pytest.raises(batpak.InvalidArgument):
        store.append("t", "s", APP, b"", schema_version=256)


# ---------------------------------------------------------------------- batch
def test_batch_is_atomic_and_returns_receipts(store):
    store.append("stock:42", "shop", APP, b"init")
    items = [
        batpak.BatchItem("order:7", "shop", APP, b"placed", idempotency_key="o7"),
        ("stock:42", "shop", APP2, b"reserve"),
        {"entity": "order:7", "scope": "shop", "kind": APP2, "payload": b"paid",
         "expected_clock": 1},  # CAS sees the batch's first item
    ]
    rs = store.append_batch(items)
    assert [(r.entity, r.clock) for r in rs] == [("order:7", 1), ("stock:42", 2), ("order:7", 2)]
    assert [r.global_seq for r in rs] == [2, 3, 4]
    assert all(r.durability == batpak.DurabilityMode.SYNC for r in rs)
    assert rs[2].prev_hash == rs[0].event_hash
    evs = [store.get(r.event_id) for r in rs]
    assert [(e.batch_id, e.batch_index, e.batch_count) for e in evs] == [
        (2, 0, 3), (2, 1, 3), (2, 2, 3)]
    assert [e.payload for e in evs] == [b"placed", b"reserve", b"paid"]
    assert evs[0].idempotency_key == "o7"
    for e, r in zip(evs, rs):
        assert (e.event_id, e.global_seq, e.clock, e.hlc, e.event_hash) == (
            r.event_id, r.global_seq, r.clock, r.hlc, r.event_hash)

    before = store.stats().events
    with pytest.raises(batpak.Conflict):  # the second item's CAS fails: nothing is written
        store.append_batch([("a:1", "s", APP, b"1"),
                            batpak.BatchItem("stock:42", "shop", APP, b"2", expected_clock=1)])
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.append_batch([("a:1", "s", APP, b"1"), ("", "s", APP, b"2")])
    assert "item 1" in ei.value.message
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.append_batch([("a:1", "s", APP, b"1"), ("a\0b", "s", APP, b"2")])
    assert "item 1" in ei.value.op
    assert store.stats().events == before
    assert list(store.stream("a:1")) == []
    assert store.append_batch([]) == []
    with pytest.raises(TypeError):
        store.append_batch([("too", "short")])


def test_batch_idempotent_replay(store):
    items = [batpak.BatchItem("x", "s", APP, b"1", idempotency_key="k1"),
             batpak.BatchItem("y", "s", APP, b"2", idempotency_key="k2")]
    rs1 = store.append_batch(items)
    rs2 = store.append_batch(items)
    assert [r.replayed for r in rs2] == [True, True]
    assert [r.event_id for r in rs2] == [r.event_id for r in rs1]
    assert store.stats().events == 2


# --------------------------------------------------------------- bad input
@pytest.mark.parametrize("entity, needle", [
    ("", "entity: is empty"),
    ("batpak:mine", "reserved"),
    ("x" * 256, "longer than 255"),
])
def test_invalid_entity(store, entity, needle):
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.append(entity, "scope", APP, b"")
    e = ei.value
    assert e.status == -1 and needle in e.message
    assert e.op == "bp_append_ex"
    assert isinstance(e, ValueError)
    assert store.stats().events == 0


def test_invalid_entity_caught_by_binding(store):
    with pytest.raises(batpak.InvalidArgument) as ei:  # a c_char_p would cut it at the NUL
        store.append("acct\0evil", "scope", APP, b"")
    assert "NUL" in ei.value.message
    with pytest.raises(TypeError):
        store.append(7, "scope", APP, b"")
    with pytest.raises(batpak.InvalidArgument):
        store.append("a", "", APP, b"")
    assert store.stats().events == 0


@pytest.mark.parametrize("bad_kind", [0x0001, 0x0000, 0xD001, 0x10001, -1])
def test_invalid_kind(store, bad_kind):
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.append("e", "s", bad_kind, b"")
    assert "kind" in ei.value.message or "kind" in str(ei.value)
    assert store.stats().events == 0


def test_kind_helpers():
    assert batpak.kind(1, 3) == 0x1003
    assert batpak.kind_category(0xD123) == 0xD and batpak.kind_type(0xD123) == 0x123
    assert batpak.is_application_kind(batpak.kind(1, 1))
    assert not batpak.is_application_kind(batpak.kind(0xD, 1))
    assert not batpak.is_application_kind(batpak.KIND_SYSTEM_DENIAL)
    with pytest.raises(ValueError):
        batpak.kind(16, 1)


def test_get_unknown_and_malformed_ids(store):
    r = store.append("e", "s", APP, b"")
    unknown = uuid.UUID(int=r.event_id.int ^ 1)
    with pytest.raises(batpak.NotFound) as ei:
        store.get(unknown)
    assert ei.value.status == -2 and str(unknown) in ei.value.message
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.get("zz")
    assert "zz" in ei.value.message
    with pytest.raises(batpak.InvalidArgument):
        store.get(b"\x01" * 15)
    with pytest.raises(TypeError):
        store.get(12345)


def test_error_classes_cover_every_status():
    for status, cls in [(-1, batpak.InvalidArgument), (-2, batpak.NotFound),
                        (-3, batpak.Conflict), (-4, batpak.Corrupt), (-5, batpak.StoreIOError),
                        (-6, batpak.Locked), (-7, batpak.VersionError),
                        (-8, batpak.OutOfMemory), (-9, batpak.Busy), (-10, batpak.TooBig),
                        (-11, batpak.ReadOnly), (-13, batpak.Denied), (-14, batpak.Exists),
                        (-15, batpak.SignatureError), (-16, batpak.TimedOut),
                        (-17, batpak.Canceled)]:
        assert batpak.error_class(status) is cls
        assert cls.status == status
        e = cls(status, "m")
        assert _ffi.bp_strerror(status).decode() in str(e)
    assert batpak.error_class(-99) is batpak.BatpakError


# -------------------------------------------------------------------- stats
def test_stats_counts(store):
    for i in range(6):
        store.append(f"e{i % 3}", f"s{i % 2}", APP, b"x" * 10)
    store.append_batch([("e9", "s9", APP, b""), ("e9", "s9", APP, b"")])
    st = store.stats()
    assert st.events == 8
    assert st.entities == 4
    assert st.scopes == 3
    # counts committed events (the batch counts 2), though store.h says "append calls"
    assert st.appends == 8
    assert st.segments == 1
    assert st.failed is False and st.read_only is False
    assert st.bytes_on_disk > 8 * 10 and st.index_bytes > 0
    assert st.index_file_bytes == 0  # one segment, not sealed: no index file yet
    assert st.fsyncs >= 1
    assert st.write_max_us >= st.write_p99_us >= st.write_p50_us > 0


def test_entities_by_prefix(store):
    for i in range(30):
        store.append(f"acct:{i % 12:02d}", "s", APP, b"x")
    store.append("user:1", "s", APP, b"x")
    got = store.entities("acct:")
    assert [e.name for e in got] == [f"acct:{i:02d}" for i in range(12)]
    assert [e.events for e in got] == [3 if i < 6 else 2 for i in range(12)]
    assert all(e.clock == e.events for e in got)
    assert [e.name for e in store.entities("acct:", after="acct:09")] == ["acct:10", "acct:11"]
    assert [e.name for e in store.entities(limit=2)] == ["acct:00", "acct:01"]
    assert [e.name for e in store.entities("user:")] == ["user:1"]
    assert store.entities("zzz") == []


# ------------------------------------------------------------------- verify
def test_verify_clean(store):
    for i in range(20):
        store.append(f"e{i % 4}", "s", APP, bytes([i]) * i)
    v = store.verify()
    assert v.ok and v.problems == 0 and v.first_problem == "" and v.problem_list == ()
    assert v.events == 20 and v.frames == 20 and v.entities == 4 and v.segments == 1
    assert store.verify(raise_on_problems=True) == v


def test_verify_finds_a_flipped_byte(store_path):
    with batpak.Store(store_path, no_open_event=True) as s:
        rs = [s.append(f"e{i % 3}", "s", APP, b"PAYLOAD-%03d" % i) for i in range(10)]
    seg, = glob.glob(os.path.join(store_path, "segments", "*"))
    data = bytearray(open(seg, "rb").read())
    at = data.find(b"PAYLOAD-005")
    assert at > 0
    data[at + 8] ^= 1
    with open(seg, "wb") as f:
        f.write(data)
    with batpak.Store(store_path, no_open_event=True) as s:  # the checkpoint covers it
        v = s.verify()
        assert not v.ok and v.problems >= 1
        assert "segment 000001" in v.first_problem
        assert v.problem_list and v.problem_list[0] == (None, v.first_problem)
        with pytest.raises(batpak.Corrupt) as ei:
            s.verify(raise_on_problems=True)
        assert ei.value.status == -4 and "problem" in ei.value.message
        with pytest.raises(batpak.Corrupt) as ei:
            s.get(rs[5].event_id)
        assert "segment 000001" in ei.value.message
        assert s.get(rs[4].event_id).payload == b"PAYLOAD-004"
        # an iterator can be advanced past the damaged frame
        it = s.stream("e2")
        assert next(it).clock == 1
        with pytest.raises(batpak.Corrupt):
            next(it)
        assert next(it).payload == b"PAYLOAD-008"
        it.close()


# ----------------------------------------------------------------- snapshot
def test_snapshot(store, tmp_path):
    rs = [store.append("e", "s", APP, bytes([i])) for i in range(3)]
    dest = str(tmp_path / "backup")
    rep = store.snapshot(dest)
    assert rep.global_seq == 3 and rep.segments == 1 and rep.bytes > 0
    store.append("e", "s", APP, b"after")
    with pytest.raises(batpak.Exists):
        store.snapshot(dest)
    with batpak.Store(dest, create=False, no_open_event=True) as copy:
        assert copy.uuid == store.uuid
        assert [e.event_id for e in copy.stream("e")] == [r.event_id for r in rs]


# ----------------------------------------------------------- receipts, JSON
def test_receipt_to_json(store):
    cause = store.append("a", "s", APP, b"")
    r = store.append("order:9", "shop", APP2, b"", durability=batpak.NO_SYNC,
                     causation_id=cause.event_id)
    import json
    j = json.loads(r.to_json())
    assert j["type"] == "append_receipt"
    assert j["store_id"] == str(store.uuid)
    assert j["event_id"] == str(r.event_id)
    assert (j["entity"], j["scope"], j["kind"]) == ("order:9", "shop", APP2)
    assert (j["global_seq"], j["clock"], j["hlc"]) == (r.global_seq, r.clock, r.hlc)
    assert j["prev_hash"] == r.prev_hash.hex() and j["event_hash"] == r.event_hash.hex()
    assert j["durability"] == "none" and j["replayed"] is False and j["signed"] is False


def test_payload_json(store):
    p = mp_map({"add": 10, "memo": "rent", "ok": True, "none": None})
    r = store.append("acct", "bank", APP, p)
    ev = store.get(r.event_id)
    assert ev.payload_json() == {"add": 10, "memo": "rent", "ok": True, "none": None}
    assert batpak.payload_json(b"") is None
    assert batpak.payload_json(b"\x93\x01\x02\xa1x") == [1, 2, "x"]
    with pytest.raises(batpak.InvalidArgument) as ei:
        batpak.payload_json(b"\xc4\x02ab")  # bin has no JSON form
    assert "MessagePack" in ei.value.message
    idx = next(iter(store.stream("acct", index_only=True)))
    with pytest.raises(batpak.InvalidArgument):
        idx.payload_json()


# ------------------------------------------------------------------ threads
def test_appends_from_threads(store):
    n_threads, per = 4, 25
    receipts, errors = [], []
    lock = threading.Lock()

    def work(t):
        try:
            for i in range(per):
                r = store.append(f"t{t}", "threads", APP, b"%d" % i)
                with lock:
                    receipts.append(r)
            try:
                store.append(f"t{t}", "threads", APP, b"", expected_clock=0)
            except batpak.Conflict as e:  # the message is this thread's own
                with lock:
                    errors.append((t, e.message))
        except Exception as e:  # pragma: no cover - reported below
            with lock:
                errors.append((t, repr(e)))

    ths = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert len(receipts) == n_threads * per
    assert sorted(r.global_seq for r in receipts) == list(range(1, n_threads * per + 1))
    assert sorted(errors) == [(t, f"entity 't{t}': expected clock 0 but the head is at {per}; "
                                  "nothing was written") for t in range(n_threads)]
    for t in range(n_threads):
        assert [e.clock for e in store.stream(f"t{t}")] == list(range(1, per + 1))
    assert store.verify().ok


def test_seal_payloads(store_path):
    with batpak.Store(store_path, no_open_event=True, seal_payloads=True) as s:
        assert s.seals is True
        r = s.append("user:ada", "crm", APP, b"SECRET-PAYLOAD")
        ev = s.get(r.event_id)
        assert ev.payload == b"SECRET-PAYLOAD" and ev.sealed
        assert ev.flags & _ffi.BP_EVENT_SEALED
    for seg in glob.glob(os.path.join(store_path, "segments", "*")):
        assert b"SECRET-PAYLOAD" not in open(seg, "rb").read()
    with batpak.Store(store_path, no_open_event=True) as s:
        assert s.seals is True  # for good
        assert [e.payload for e in s.stream("user:ada")] == [b"SECRET-PAYLOAD"]
    with batpak.Store(str(store_path) + "-plain", no_open_event=True) as p:
        assert p.seals is False
        r = p.append("user:bob", "crm", APP, b"x")
        assert not p.get(r.event_id).sealed


def test_stored_schema_checks_and_renders_values(store_path, tmp_path):
    # a C program records a type (tests/test_schema.c's helper would; here the CLI's view of
    # a store it recorded): the binding checks appends of that kind and renders them
    import subprocess
    cc = os.environ.get("BATPAK_CC")
    inc = os.environ.get("BATPAK_INCLUDE")
    lib = os.environ.get("BATPAK_LIB")
    if not (cc and inc and lib):
        pytest.skip("BATPAK_CC / BATPAK_INCLUDE / BATPAK_LIB not set")
    src = tmp_path / "rec.c"
    src.write_text(
        '#include <batpak/batpak.h>\n'
        '#define F_(F) F(ONE, I64, amount, 0) F(ONE, STR, memo, 8) F(OPT, U32, branch, 0)\n'
        'BP_TYPE_STATIC(dep, F_, "bank.deposit", BP_KIND(1, 0x21), 1);\n'
        'int main(int c, char **v) { bp_store *s; bp_open_options o = BP_OPEN_OPTIONS_INIT;\n'
        '  (void)c; if (bp_store_open(&s, v[1], &o)) return 1;\n'
        '  if (bp_schema_record(s, NULL, &dep_type)) return 2; return bp_store_close(s) ? 3 : 0; }\n')
    exe = tmp_path / "rec"
    subprocess.run([cc, "-std=c11", "-I", inc, str(src), "-o", str(exe), lib,
                    "-Wl,-rpath," + os.path.dirname(os.path.abspath(lib))], check=True)
    subprocess.run([str(exe), store_path], check=True)
    with batpak.Store(store_path) as s:
        assert [t["name"] for t in s.schemas()] == ["bank.deposit"]
        assert s.json_schema(batpak.kind(1, 0x21))["required"] == ["amount", "memo"]
        r = s.append("acct:1", "bank", batpak.kind(1, 0x21), {"memo": "hi", "amount": 5})
        ev = s.get(r.event_id)
        assert ev.value == {"amount": 5, "memo": "hi"}
        assert ev.flags & 0xFF == 1  # written as version 1 of the type
        with pytest.raises(batpak.InvalidArgument) as ei:
            s.append("acct:1", "bank", batpak.kind(1, 0x21), {"amount": "x", "memo": "m"})
        assert "field 'amount'" in ei.value.message
        with pytest.raises(batpak.NotFound):
            s.json_schema(batpak.kind(1, 0x22))
        # another kind: any JSON
        s.append("acct:1", "bank", batpak.kind(1, 0x22), {"free": [1]})
        # a type recorded from Python, then checked and rendered like a C one
        seq = s.record_schema("shop.order", batpak.kind(1, 0x30), 1,
                              [("total", "uint32"), ("note", "string", "opt", 16),
                               {"name": "qty", "type": "int16", "shape": "arr", "n": 4}])
        assert seq > 0
        assert s.record_schema("shop.order", batpak.kind(1, 0x30), 1,
                               [("total", "uint32"), ("note", "string", "opt", 16),
                                ("qty", "int16", "arr", 4)]) == 0  # already there
        with pytest.raises(batpak.Exists):
            s.record_schema("shop.order", batpak.kind(1, 0x30), 1, [("total", "int8")])
        with pytest.raises(batpak.InvalidArgument):
            s.record_schema("shop.bad", batpak.kind(1, 0x31), 1, [("x", "float128")])
        r = s.append("o:1", "shop", batpak.kind(1, 0x30), {"total": 7, "qty": [1, -2]})
        assert s.get(r.event_id).value == {"total": 7, "qty": [1, -2]}
        with pytest.raises(batpak.InvalidArgument) as ei:
            s.append("o:1", "shop", batpak.kind(1, 0x30), {"total": -1, "qty": []})
        assert "field 'total' (uint32): out of range" in ei.value.message
        # a batch checks its items the same way: a bad one writes none of them
        before = s.stats().events
        with pytest.raises(batpak.InvalidArgument) as ei:
            s.append_batch([("o:2", "shop", batpak.kind(1, 0x30), {"total": 1, "qty": []}),
                            ("o:2", "shop", batpak.kind(1, 0x30), {"total": "many"})])
        assert "item 1" in ei.value.op and "field 'total'" in ei.value.message
        assert s.stats().events == before
        rs = s.append_batch([("o:2", "shop", batpak.kind(1, 0x30), {"total": 1, "qty": [3]}),
                             ("o:2", "shop", batpak.kind(1, 0x22), {"free": True})])
        evs = [s.get(r.event_id) for r in rs]
        assert [e.value for e in evs] == [{"total": 1, "qty": [3]}, {"free": True}]
        assert [e.flags & 0xFF for e in evs] == [1, 0]  # the typed one as version 1
