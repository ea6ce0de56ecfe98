"""Workers, tickets and projections from Python (batpak/deliver.py)."""
import os
import threading
import time

import pytest

import batpak

from conftest import APP


def test_worker_delivers_each_event_and_resumes_from_its_checkpoint(store_path):
    seen = []
    with batpak.Store(store_path, no_open_event=True) as s:
        rs = [s.append(f"a:{i % 3}", "s", APP, {"n": i}) for i in range(20)]
        w = s.worker(lambda ev, attempt, key: seen.append((ev.value["n"], key)),
                     checkpoint_id="py-test", entity_prefix="a:")
        assert w.wait(rs[-1].global_seq, 10000)
        w.stop()
        assert [n for n, _ in seen] == list(range(20))
        assert all(k.startswith("py-test:") for _, k in seen)
        more = [s.append("a:0", "s", APP, {"n": 100 + i}) for i in range(3)]
        seen.clear()
        with s.worker(lambda ev, a, k: seen.append((ev.value["n"], k)), checkpoint_id="py-test",
                      entity_prefix="a:") as w2:
            assert w2.wait(more[-1].global_seq, 10000)
        assert [n for n, _ in seen] == [100, 101, 102]  # resumed after its checkpoint


def test_worker_retries_a_handler_that_raises_then_skips_poison(store_path):
    attempts = {}

    def handler(ev, attempt, key):
        attempts[ev.global_seq] = attempt
        if ev.value == "bad":
            raise RuntimeError("cannot handle it")

    with batpak.Store(store_path, no_open_event=True) as s:
        s.append("b:1", "s", APP, "good")
        bad = s.append("b:1", "s", APP, "bad")
        last = s.append("b:1", "s", APP, "after")
        w = s.worker(handler, entity="b:1", max_attempts=3, backoff_ms=1, skip_poison=True)
        assert w.wait(last.global_seq, 10000)
        w.stop()
        assert attempts[bad.global_seq] == 3 and attempts[last.global_seq] == 1
        assert isinstance(w.errors[-1], RuntimeError)


def test_tickets_commit_while_the_caller_goes_on(store_path):
    with batpak.Store(store_path, no_open_event=True) as s:
        ts = [s.submit("t:1", "s", APP, {"i": i}) for i in range(50)]
        rs = [t.wait(10000) for t in ts]
        assert [r.clock for r in rs] == list(range(1, 51))
        assert all(t.done for t in ts)
        bad = s.submit("t:1", "s", APP, {"i": -1}, expected_clock=3)
        with pytest.raises(batpak.Conflict):
            bad.wait(10000)
        assert [ev.value["i"] for ev in s.stream("t:1")] == list(range(50))


def test_projection_folds_only_new_events_and_survives_a_restart(store_path, tmp_path):
    folds = []

    def fold(state, ev):
        folds.append(ev.global_seq)
        return state + ev.value["add"]

    path = str(tmp_path / "balance.pickle")
    with batpak.Store(store_path, no_open_event=True) as s:
        for i in range(10):
            s.append("acct:1", "bank", APP, {"add": i})
        s.append("acct:2", "bank", APP, {"add": 100})
        p = batpak.Projection(fold, 0, path=path)
        assert p.get(s, "acct:1") == 45 and len(folds) == 10
        assert p.get(s, "acct:1") == 45 and len(folds) == 10  # nothing new: nothing folded
        s.append("acct:1", "bank", APP, {"add": 5})
        assert p.get(s, "acct:1") == 50 and len(folds) == 11  # one new event: one fold
        assert p.get(s, "acct:2") == 100
    with batpak.Store(store_path) as s:  # a restart: the states come from the file
        folds.clear()
        p2 = batpak.Projection(fold, 0, path=path)
        assert p2.get(s, "acct:1") == 50 and folds == []


def test_lossy_subscription_counts_what_it_drops(store_path):
    with batpak.Store(store_path, no_open_event=True) as s:
        with s.subscribe(4, entity_prefix="n:") as sub:
            assert sub.next(0) is None
            rs = [s.append(f"n:{i}", "s", APP, {"i": i}) for i in range(10)]
            s.append("other", "s", APP, {})  # (outside the region: no notice)
            got = [sub.next(1000) for _ in range(4)]
            assert [n.global_seq for n in got] == [r.global_seq for r in rs[:4]]
            assert got[0].entity == "n:0" and got[0].event_id == rs[0].event_id
            assert sub.next(0) is None
            count, first = sub.missed()
            assert count == 6 and 0 < first <= rs[4].global_seq
            assert sub.missed() == (0, 0)
