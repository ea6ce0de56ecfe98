"""The README's Python example: append JSON-like values, read them back, follow from a
second (read-only) handle as another process would. Usage: quickstart.py DIR"""
import sys

import batpak

path = sys.argv[1] if len(sys.argv) > 1 else "./py-data"
DEPOSIT = batpak.kind(1, 1)

with batpak.Store(path) as s:                              # creates the store
    r = s.append("account:7", "bank", DEPOSIT, {"add": 10, "memo": "first"})
    print("appended", r.global_seq, "clock", r.clock, r.durability.name)
    s.append("account:7", "bank", DEPOSIT, {"add": 5}, expected_clock=r.clock)
    balance = sum(ev.value["add"] for ev in s.stream("account:7"))
    print("balance", balance)
    with batpak.Store(path, read_only=True) as reader:     # what a second process does
        print("reader sees", [ev.value for ev in reader.stream("account:7")])
        s.append("account:7", "bank", DEPOSIT, {"add": 1})
        reader.refresh()                                   # (its cursors do this themselves)
        print("after refresh", len(list(reader.stream("account:7"))), "deposits")
