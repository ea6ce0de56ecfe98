"""stream / by_scope / by_kind / query (every region filter, limit, paging) and cursors."""
import threading
import time

import pytest

import batpak
from conftest import APP, APP2, OTHER_CAT


@pytest.fixture
def loaded(store):
    """Three groups of appends, a few ms apart (for the time filters)."""
    groups = []
    plan = [
        [("order:1", "shop", APP), ("order:2", "shop", APP2), ("user:1", "crm", APP)],
        [("order:1", "shop", APP2), ("order:10", "shop", OTHER_CAT), ("user:2", "crm", APP2)],
        [("order:2", "shop", APP), ("user:1", "crm", OTHER_CAT), ("misc", "other", APP)],
    ]
    n = 0
    for g in plan:
        rs = []
        for entity, scope, k in g:
            rs.append(store.append(entity, scope, k, b"p%d" % n))
            n += 1
        groups.append(rs)
        time.sleep(0.01)
    return store, groups


def _seqs(events):
    return [e.global_seq for e in events]


def test_query_all_and_every_filter(loaded):
    s, groups = loaded
    every = list(s.query())
    assert _seqs(every) == list(range(1, 10))
    assert [e.payload for e in every] == [b"p%d" % i for i in range(9)]
    by = {e.global_seq: e for e in every}

    def expect(pred):
        return [q for q, e in by.items() if pred(e)]

    assert _seqs(s.query(entity="order:1")) == expect(lambda e: e.entity == "order:1") == [1, 4]
    assert _seqs(s.query(entity_prefix="order:")) == expect(
        lambda e: e.entity.startswith("order:")) == [1, 2, 4, 5, 7]
    assert _seqs(s.query(scope="crm")) == expect(lambda e: e.scope == "crm") == [3, 6, 8]
    assert _seqs(s.query(kinds=[APP2])) == expect(lambda e: e.kind == APP2) == [2, 4, 6]
    assert _seqs(s.query(kinds=[APP2, OTHER_CAT])) == expect(
        lambda e: e.kind in (APP2, OTHER_CAT)) == [2, 4, 5, 6, 8]
    assert _seqs(s.query(category=2)) == expect(lambda e: e.category == 2) == [5, 8]
    assert _seqs(s.query(category=1, scope="shop")) == [1, 2, 4, 7]
    assert _seqs(s.query(from_seq=4, to_seq=6)) == [4, 5, 6]
    assert _seqs(s.query(entity_prefix="user:", kinds=[APP, APP2])) == [3, 6]
    assert list(s.query(entity="nobody")) == []
    # time range on the HLC wall clock
    g2 = groups[1]
    lo, hi = g2[0].hlc >> 16, g2[-1].hlc >> 16
    assert (groups[0][-1].hlc >> 16) < lo and hi < (groups[2][0].hlc >> 16)
    assert _seqs(s.query(since_ms=lo, until_ms=hi)) == [4, 5, 6]
    assert _seqs(s.query(since_ms=lo)) == [4, 5, 6, 7, 8, 9]
    assert _seqs(s.query(until_ms=hi)) == [1, 2, 3, 4, 5, 6]
    # a Region object is the same as keywords
    reg = batpak.Region(entity_prefix="order:", category=1, from_seq=2)
    assert _seqs(s.query(reg)) == [2, 4, 7]


def test_query_limit_position_and_resume(loaded):
    s, _ = loaded
    it = s.query(scope="shop", limit=2)
    first = list(it)
    assert _seqs(first) == [1, 2]
    assert it.position == 2
    rest = list(s.query(scope="shop", from_seq=it.position + 1))
    assert _seqs(rest) == [4, 5, 7]
    with s.query(scope="shop") as it2:
        next(it2)
        assert it2.position == 1
    assert list(it2) == []  # closed


def test_query_page(loaded):
    s, _ = loaded
    pages, after = [], 0
    while True:
        page = s.query_page(limit=4, after_seq=after, entity_prefix="order:")
        pages.append(page)
        after = page.position
        if not page.more:
            break
    assert [_seqs(p.events) for p in pages] == [[1, 2, 4, 5], [7]]
    assert [p.more for p in pages] == [True, False]
    assert pages[0].position == 5 and pages[1].position == 7
    exact = s.query_page(limit=5, entity_prefix="order:")
    assert _seqs(exact.events) == [1, 2, 4, 5, 7] and exact.more is False
    empty = s.query_page(limit=3, after_seq=9)
    assert empty.events == [] and empty.position == 9 and not empty.more
    with pytest.raises(batpak.InvalidArgument):
        s.query_page(limit=0)


def test_stream_by_scope_by_kind_and_index_only(loaded):
    s, groups = loaded
    evs = list(s.stream("order:1"))
    assert [(e.clock, e.global_seq, e.kind) for e in evs] == [(1, 1, APP), (2, 4, APP2)]
    assert list(s.stream("order:404")) == []
    assert _seqs(s.by_scope("crm")) == [3, 6, 8]
    assert _seqs(s.by_kind(OTHER_CAT)) == [5, 8]
    assert _seqs(s.stream("user:1", limit=1)) == [3]
    idx = list(s.query(scope="crm", index_only=True))
    assert _seqs(idx) == [3, 6, 8]
    full = list(s.query(scope="crm"))
    for i, f in zip(idx, full):
        assert i.header_only is True and i.payload is None
        assert (i.event_id, i.global_seq, i.clock, i.hlc, i.kind, i.entity, i.scope) == (
            f.event_id, f.global_seq, f.clock, f.hlc, f.kind, f.entity, f.scope)
    assert groups[0][2].event_id == full[0].event_id


def test_iterator_is_a_snapshot_and_store_close_frees_it(store_path):
    s = batpak.Store(store_path, no_open_event=True)
    s.append("e", "s", APP, b"1")
    it = s.stream("e")
    s.append("e", "s", APP, b"2")  # after the iterator was made: not in it
    assert [e.payload for e in it] == [b"1"]
    it2 = s.query()
    assert next(it2).payload == b"1"
    cur = s.cursor()
    s.close()  # frees it2 and cur first
    with pytest.raises(batpak.StoreClosed):
        next(it2)
    with pytest.raises(batpak.StoreClosed):
        cur.next_batch()
    it2.close()
    cur.close()


def test_region_errors(store):
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.query(category=16)
    assert "category" in ei.value.message
    with pytest.raises(batpak.InvalidArgument) as ei:
        store.query(entity="")
    assert "region entity" in ei.value.message  # the library's message
    with pytest.raises(batpak.InvalidArgument):
        store.query(entity_prefix="x" * 256)
    with pytest.raises(batpak.InvalidArgument):
        store.query(kinds=[])
    with pytest.raises(batpak.InvalidArgument):
        store.query(kinds=[0x10000])
    with pytest.raises(batpak.InvalidArgument):
        store.query(from_seq=-1)
    with pytest.raises(TypeError):
        store.query(batpak.Region(), scope="x")
    with pytest.raises(TypeError):
        store.query(no_such_filter=1)
    with pytest.raises(TypeError):
        store.query(kinds=APP)


# --------------------------------------------------------------------- cursor
def test_cursor_batches_and_position(loaded):
    s, _ = loaded
    with s.cursor(scope="shop") as c:
        assert c.position == 0
        b1 = c.next_batch(max_events=2)
        assert _seqs(b1) == [1, 2] and c.position == 2
        b2 = c.next_batch(max_events=100)
        assert _seqs(b2) == [4, 5, 7] and c.position == 7
        assert c.next_batch() == []  # nothing more, no wait
        s.append("order:3", "shop", APP, b"new")  # the cursor sees later appends
        s.append("user:9", "crm", APP, b"not in the region")
        b3 = c.next_batch()
        assert [(e.global_seq, e.entity, e.payload) for e in b3] == [(10, "order:3", b"new")]
    with s.cursor(after_seq=8) as c:
        assert _seqs(c) == [9, 10, 11]
    with s.cursor(entity="order:2", to_seq=5) as c:
        assert _seqs(c.events()) == [2]
        assert c.next_batch(timeout_ms=2000) == []  # to_seq passed: no wait
    with s.cursor() as c:
        with pytest.raises(batpak.InvalidArgument):
            c.next_batch(max_events=0)
        with pytest.raises(batpak.InvalidArgument):
            c.next_batch(max_events=4097)
        assert len(c.next_batch(max_events=4096)) == 11


def test_cursor_waits_for_new_events(store):
    store.append("w", "s", APP, b"0")
    with store.cursor(entity="w") as c:
        assert _seqs(c.next_batch()) == [1]
        t0 = time.monotonic()
        assert c.next_batch(timeout_ms=150) == []
        assert time.monotonic() - t0 >= 0.12

        def later():
            time.sleep(0.2)
            store.append("w", "s", APP, b"1")

        th = threading.Thread(target=later)
        th.start()
        t0 = time.monotonic()
        got = c.next_batch(timeout_ms=10000)
        waited = time.monotonic() - t0
        th.join()
        assert [(e.clock, e.payload) for e in got] == [(2, b"1")]
        assert 0.1 <= waited < 5
        assert c.position == 2
