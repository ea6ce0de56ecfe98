"""A projection folded in Python, a durable worker, and tickets.
Usage: projections_and_workers.py DIR"""
import os
import sys

import batpak

path = sys.argv[1] if len(sys.argv) > 1 else "./py-data-workers"
ORDER = batpak.kind(2, 1)

with batpak.Store(path) as s:
    # tickets: queue appends, then collect the receipts (one shared fdatasync)
    tickets = [s.submit(f"order:{i % 4}", "shop", ORDER, {"total": 10 * i}) for i in range(12)]
    last = max(t.wait().global_seq for t in tickets)

    # a projection: per order entity, the sum of totals, folded once per new event
    totals = batpak.Projection(lambda acc, ev: acc + ev.value["total"], 0,
                               path=os.path.join(path, "totals.pickle"))
    print("order:1 total", totals.get(s, "order:1"))

    # a durable worker: each order event at least once, resuming after its checkpoint
    shipped = []
    with s.worker(lambda ev, attempt, key: shipped.append(ev.entity),
                  checkpoint_id="shipping", entity_prefix="order:") as w:
        w.wait(last)
    print("shipped", len(shipped), "events")
