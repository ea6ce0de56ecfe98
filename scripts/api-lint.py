#!/usr/bin/env python3
"""api-lint: the public headers against doc/API.md's rules, mechanically.

usage: api-lint.py INCLUDE_DIR     (exit 0 when clean; each finding on stderr, file:line)

Checks:
  rule 1  a function ending in _get or _list returns bp_status;
  rule 2  a handle made through an out-parameter (a `T **` that is not const data) comes
          first, or second after the receiver;
  rule 6  every struct starts with `uint32_t struct_size;`, but the frozen value types and
          the structs the library allocates (listed below, as doc/API.md lists them), and
          every such struct has a BP_X_INIT macro;
  rule 8  no third-party or test type (json_t, bp_fault) and no bare __attribute__.
"""
import os
import re
import sys

FROZEN = {"bp_id", "bp_hash", "bp_durability", "bp_gap", "bp_denial", "bp_signing_key",
          "bp_field", "bp_batch_item", "bp_typed_item"}
LIBRARY_OWNED = {"bp_event", "bp_delivery"}
MADE_BY_MACRO = {"bp_type": "BP_TYPE_DEFINE"}  # struct_size set by these macros, no INIT


def strip_comments(text):
    # keep line numbers: replace each comment by as many newlines as it spans
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def main(inc):
    findings = []
    hdir = os.path.join(inc, "batpak")
    headers = sorted(f for f in os.listdir(hdir) if f.endswith(".h"))
    if len(headers) < 5:
        print(f"api-lint: only {len(headers)} headers in {hdir}", file=sys.stderr)
        return 1
    all_text = ""
    for h in headers:
        path = os.path.join(hdir, h)
        raw = open(path).read()
        text = strip_comments(raw)
        all_text += text

        def line_of(pos):
            return text.count("\n", 0, pos) + 1

        # rule 8
        for m in re.finditer(r"\bjson_t\b|\bbp_fault\b|__attribute__", text):
            ln = line_of(m.start())
            line = text.split("\n")[ln - 1]
            if "__attribute__" in m.group(0) and re.search(r"#\s*define\s+BP_\w+", line):
                continue  # behind a macro of ours, defined per compiler
            findings.append(f"{h}:{ln}: rule 8: '{m.group(0)}' in a public header")

        # rule 6
        for m in re.finditer(r"typedef struct (\w+) \{(.*?)\} \1;", text, re.S):
            name, body = m.group(1), m.group(2)
            if name in FROZEN or name in LIBRARY_OWNED:
                continue
            first = body.strip().split(";")[0].split()
            if first != ["uint32_t", "struct_size"]:
                findings.append(f"{h}:{line_of(m.start())}: rule 6: {name} does not start with "
                                f"uint32_t struct_size")
            init = MADE_BY_MACRO.get(name, name.upper() + "_INIT")
            if not re.search(r"#\s*define\s+" + init + r"\b", all_text + open(path).read()):
                findings.append(f"{h}:{line_of(m.start())}: rule 6: {name} has no {init}")

        # functions
        for m in re.finditer(r"BP_API\s+([^;{]*?)\b(bp_\w+)\s*\(([^;]*?)\)\s*;", text, re.S):
            ret, name, params = " ".join(m.group(1).split()), m.group(2), m.group(3)
            ln = line_of(m.start())
            if re.search(r"_(get|list)$", name) and ret != "bp_status":
                findings.append(f"{h}:{ln}: rule 1: {name} returns '{ret}', not bp_status")
            ps = [" ".join(p.split()) for p in params.split(",")] if params.strip() != "void" else []
            for i, p in enumerate(ps):
                if "(" in p:  # a function pointer parameter
                    continue
                if re.search(r"\*\s*\*", p) and not p.startswith("const ") and "char **" not in p:
                    if i > 1:
                        findings.append(f"{h}:{ln}: rule 2: {name}: the out-parameter '{p}' is "
                                        f"parameter {i + 1} (outputs come first, after the "
                                        f"receiver)")
    for f in findings:
        print(f, file=sys.stderr)
    print(f"api-lint: {len(headers)} headers, {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
