#!/usr/bin/python3
"""Golden-output, terminal and documentation tests of the `batpak` command-line tool.

usage: cli_golden.py BATPAK SOURCE_DIR SCRATCH_DIR VERSION [--update]

1. golden   A fixed session of commands on a fresh store; each command's exit code, stdout
            and stderr are compared with tests/golden/cli.txt after the fields that change
            from run to run (ids, hashes, clocks of time, sizes that depend on them) are
            replaced by placeholders. Key order, field names, messages and exit codes are
            the stable contract that this pins. --update rewrites the file (review the diff).
2. tty      On a pseudo-terminal, verify, export, import and compact draw a progress bar on
            stderr; with pipes they print nothing there.
3. docs     Every command and option that `batpak --help` and `batpak help CMD` name is in
            the man page (doc/batpak.1, which groff reads without a warning) and in the bash
            completion `batpak completion bash` prints, and that completion completes.
4. version  `batpak --version` names the version of common.h and of CMake's project().

Prints "N passed, N failed" and exits 1 when anything failed.
"""
import difflib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys

BIN, SRC, SCRATCH = (os.path.abspath(a) for a in sys.argv[1:4])
VERSION = sys.argv[4]
UPDATE = "--update" in sys.argv[5:]
GOLDEN = os.path.join(SRC, "tests", "golden", "cli.txt")
passed = failed = 0


def report(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}" + (f"\n{detail}" if detail else ""), file=sys.stderr)


def run(args, stdin=None, cwd=None):
    env = dict(os.environ)
    for k in ("BATPAK_DIR", "BATPAK_SIGNING_KEY"):
        env.pop(k, None)
    p = subprocess.run([BIN] + args, input=stdin, capture_output=True, cwd=cwd or SCRATCH,
                       env=env, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# ------------------------------------------------------------------ normalisation

UUID_KEYS = {"store_uuid", "store_id", "event_id", "correlation_id", "causation_id"}
HASH_KEYS = {"prev_hash", "event_hash", "key_id", "signature", "hash", "anchor_hash"}
SIZE_KEYS = {"bytes_on_disk", "index_bytes", "bytes", "bytes_before", "bytes_after",
             "bytes_scanned"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX64_RE = re.compile(r"\b[0-9a-f]{64}\b")


def norm_value(key, v):
    if isinstance(v, dict):
        if key == "payload" and "duration_us" in v:  # an open report: all of it varies
            return {k: norm_value(k, x) if k in ("duration_us",) else x for k, x in v.items()}
        return {k: norm_value(k, x) for k, x in v.items()}
    if isinstance(v, list):
        return [norm_value(key, x) for x in v]
    if v is None or isinstance(v, bool):
        return v
    if key in UUID_KEYS:
        return "<uuid>"
    if key in HASH_KEYS:
        return v if isinstance(v, str) and set(v) == {"0"} else "<hash>"
    if key == "hlc" or key.endswith("_us") or key.endswith("_ms") or key in SIZE_KEYS:
        return "<n>"
    if isinstance(v, str):
        return HEX64_RE.sub("<hash>", UUID_RE.sub("<uuid>", v))
    return v


def norm_line(line):
    try:
        v = json.loads(line)
    except ValueError:
        v = None
    if isinstance(v, dict):
        if str(v.get("entity", "")).startswith("batpak:") and isinstance(v.get("payload"), str):
            v["payload"] = "<base64 open report>"  # an export's system event: it holds times
        return json.dumps(norm_value("", v), separators=(",", ":"))
    line = HEX64_RE.sub("<hash>", UUID_RE.sub("<uuid>", line))
    line = re.sub(r"\b\d+ us\b", "<n> us", line)
    # human tables and Prometheus samples: sizes and times that vary from run to run
    if re.match(r"^(bytes on disk|index memory|open |segment \d+|batpak_(disk_bytes|index_bytes"
                r"|open_duration_seconds))", line):
        line = re.sub(r"\d+(\.\d+)?", "<n>", line)
    return line


def norm(text):
    return "\n".join(norm_line(l) for l in text.splitlines())


# ------------------------------------------------------------------ 1. golden session

def golden():
    store = "store"
    shutil.rmtree(os.path.join(SCRATCH, store), ignore_errors=True)
    batch = "\n".join(json.dumps(x) for x in [
        {"entity": "acct:2", "scope": "bank", "kind": 4097, "payload": {"amount": 7}},
        {"entity": "acct:3", "scope": "bank", "kind": "0x1002", "payload": [1, "two", None]},
    ]) + "\n"
    session = [
        (["--help"], None),
        (["help", "append"], None),
        (["--dir", store, "init"], None),
        (["--dir", store, "append", "acct:1", "bank", "0x1001", '{"amount":5,"memo":"first"}'],
         None),
        (["--dir", store, "append", "acct:1", "bank", "4097", "--expect-clock", "1"],
         b'{"amount":6}'),
        (["--dir", store, "append", "acct:1", "bank", "4097", "--expect-clock", "1", "{}"], None),
        (["--dir", store, "append", "acct:1", "bank", "4097", "--idempotency-key", "k1", "1"],
         None),
        (["--dir", store, "append", "acct:1", "bank", "4097", "--idempotency-key", "k1", "1"],
         None),
        (["--dir", store, "append", "--batch", "-"], batch.encode()),
        (["--dir", store, "stream", "acct:1"], None),
        (["--dir", store, "query", "--kind", "0x1001", "--limit", "2"], None),
        (["--dir", store, "query", "--entity-prefix", "acct:", "--after", "2"], None),
        (["--dir", store, "tail", "--limit", "1"], None),
        (["--dir", store, "verify"], None),
        (["--dir", store, "entities", "--prefix", "acct:"], None),
        (["--dir", store, "entities", "--after", "acct:1", "--limit", "1"], None),
        (["--dir", store, "stats"], None),
        (["--dir", store, "stats", "--json"], None),
        (["--dir", store, "stats", "--prom"], None),
        (["--dir", store, "export"], None),
        (["--dir", store, "compact", "--keep-last", "1", "--dry-run"], None),
        # bad input: one line on stderr, the exit code batpak.1 documents, nothing written
        (["--dir", store, "append", "acct:1", "bank", "0x0001", "{}"], None),
        (["--dir", store, "append", "acct:1", "bank", "0x1001", "{bad json"], None),
        (["--dir", store, "append", "", "bank", "0x1001", "{}"], None),
        (["--dir", store, "get", "not-an-id"], None),
        (["--dir", store, "get", "01a24965-0b1b-7622-868a-7967e4495ab5"], None),
        (["--dir", store, "stream", "acct:none"], None),
        (["--dir", store, "query", "--since", "yesterday"], None),
        (["--dir", store, "stats", "--json", "--prom"], None),
        (["--dir", store, "entities", "--limit", "many"], None),
        (["--dir", store, "entities", "acct:"], None),
        (["--dir", "missing-store", "verify"], None),
        (["frobnicate"], None),
        (["completion", "zsh"], None),
    ]
    out = []
    for args, stdin in session:
        code, so, se = run(args, stdin)
        out.append("$ batpak " + " ".join(a if a and " " not in a else repr(a) for a in args))
        out.append(f"[exit {code}]")
        if so:
            out.append(norm(so))
        if se:
            out.append("--- stderr")
            out.append(norm(se))
    got = "\n".join(out) + "\n"
    if UPDATE:
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with open(GOLDEN, "w") as f:
            f.write(got)
        print(f"wrote {GOLDEN}")
    try:
        with open(GOLDEN) as f:
            want = f.read()
    except OSError as e:
        report(False, "golden file", str(e))
        return
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        "tests/golden/cli.txt", "this run"))
    report(not diff, "golden CLI output (run with --update after an intended change)",
           diff[:6000])


# ------------------------------------------------------------------ 2. terminal or pipe

def on_pty(args, stdin_file=None, typed=None):
    """Run batpak with stdout and stderr on a pseudo-terminal (stdin too, unless stdin_file),
    typing `typed` on it; return (code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(SCRATCH)
        if stdin_file:
            f = os.open(stdin_file, os.O_RDONLY)
            os.dup2(f, 0)
        os.execv(BIN, [BIN] + args)
    if typed:
        os.write(fd, typed)
    chunks = []
    while True:
        r, _, _ = select.select([fd], [], [], 60)
        if not r:
            break
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def tty():
    store = "tty-store"
    shutil.rmtree(os.path.join(SCRATCH, store), ignore_errors=True)
    lines = "".join(json.dumps({"entity": f"e:{i % 50}", "scope": "s", "kind": 4097,
                                "payload": {"i": i, "pad": "x" * 64}}) + "\n"
                    for i in range(3000))
    code, _, se = run(["--dir", store, "init"], None)
    if code == 0:
        code, _, se = run(["--dir", store, "append", "--batch", "-"], lines.encode())
    report(code == 0, "tty: make a store of 3000 events", se)
    code, exported, se = run(["--dir", store, "export"])
    report(code == 0 and not se, "pipe: export prints nothing on stderr", se)
    path = os.path.join(SCRATCH, "tty-export.ndjson")
    with open(path, "w") as f:
        f.write(exported)
    for args, label in [(["--dir", store, "verify"], "verify"),
                        (["--dir", "tty-import", "import", path], "import"),
                        (["--dir", store, "compact", "--keep-last", "2"], "compact")]:
        shutil.rmtree(os.path.join(SCRATCH, "tty-import"), ignore_errors=True)
        code, text = on_pty(args)
        report(code == 0 and f"\r{label} [" in text and "\x1b[K" in text,
               f"tty: {label} draws a progress bar and erases it", repr(text[:400]))
        shutil.rmtree(os.path.join(SCRATCH, "tty-import"), ignore_errors=True)
        code, so, se = run(args)
        report(code == 0 and se == "" and "[" not in so.split("\n")[0][:1],
               f"pipe: {label} prints no progress", repr(se[:300]))
    # a command that reads standard input says so when it is a terminal (never a silent wait)
    code, text = on_pty(["--dir", store, "append", "tty:1", "s", "0x1001"], typed=b'{"a":1}\n\x04')
    report(code == 0 and "reading the input from standard input (end it with Ctrl-D)" in text
           and '"global_seq":' in text, "tty: append says it reads stdin", repr(text[:300]))
    code, so, se = run(["--dir", store, "append", "tty:1", "s", "0x1001"], b'{"a":2}')
    report(code == 0 and se == "", "pipe: append reads stdin without a word", repr(se[:300]))
    # on a terminal the progress goes to stderr only: stdout stays clean when redirected
    code, text = on_pty(["--dir", store, "export"])
    report(code == 0 and "\rexport [" in text, "tty: export draws a progress bar",
           repr(text[:200]))


# ------------------------------------------------------------------ 3. man page, completion

def commands_and_options():
    code, so, _ = run(["--help"])
    cmds = []
    for l in so.splitlines():
        m = re.match(r"^  batpak (\S+)", l)
        if m and m.group(1) not in cmds:
            cmds.append(m.group(1))
    opts = {}
    for c in cmds:
        _, text, _ = run(["help", c])
        found = set()
        for l in text.splitlines():
            if l.startswith("usage:"):
                for o in re.findall(r"(?<=[\[ ])(--?[a-z][a-z-]*)", l.split(" " + c, 1)[1]):
                    found.add(o)
        if c in ("query", "tail", "relay"):
            found |= {"--entity", "--entity-prefix", "--scope", "--kind", "--category",
                      "--from-seq", "--to-seq", "--since", "--until", "--limit", "--after"}
        opts[c] = found
    return cmds, opts


def complete(words):
    """Run the completion function on COMP_WORDS = words (the last is being completed)."""
    script = subprocess.run([BIN, "completion", "bash"], capture_output=True).stdout.decode()
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = (script + f"\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _batpak; "
            'printf "%s\\n" "${COMPREPLY[@]}"\n')
    p = subprocess.run(["bash", "--norc", "--noprofile"], input=prog.encode(),
                       capture_output=True, cwd=SCRATCH)
    return sorted(x for x in p.stdout.decode().split("\n") if x)


def docs():
    cmds, opts = commands_and_options()
    report(len(cmds) >= 20, "docs: batpak --help lists the commands", str(cmds))
    with open(os.path.join(SRC, "doc", "batpak.1")) as f:
        man = f.read().replace("\\-", "-")
    for c in cmds:
        report(re.search(r"^\.(B|TP\n\.B|BR)\s+" + re.escape(c) + r"\b", man, re.M) is not None
               or f".B {c}" in man, f"docs: man page describes '{c}'")
        for o in sorted(opts[c]):
            report(o in man, f"docs: man page names {c} {o}")
    if shutil.which("groff"):
        p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(SRC, "doc", "batpak.1")], capture_output=True)
        report(p.returncode == 0 and not p.stderr, "docs: groff reads the man page cleanly",
               p.stderr.decode()[:500])
    else:
        report(False, "docs: groff missing (scripts/install-deps.sh installs groff-base)")
    got = complete(["batpak", ""])
    report(set(cmds) <= set(got), "completion: every command completes", str(got))
    for c in cmds:
        got = complete(["batpak", c, "-"])
        missing = sorted(opts[c] - set(got))
        report(not missing, f"completion: options of {c}", f"missing {missing}, got {got}")
    report(complete(["batpak", "comp"]) == ["compact", "completion"], "completion: prefix",
           str(complete(["batpak", "comp"])))
    report(complete(["batpak", "--dir", "d", "stats", "--p"]) == ["--prom"],
           "completion: after --dir DIR")
    report(complete(["batpak", "help", "veri"]) == ["verify", "verify-receipt"],
           "completion: help COMMAND")
    open(os.path.join(SCRATCH, "events-for-completion.ndjson"), "w").close()
    report(complete(["batpak", "import", "events-for-c"]) == ["events-for-completion.ndjson"],
           "completion: file names for import")


def version():
    code, so, _ = run(["--version"])
    with open(os.path.join(SRC, "include", "batpak", "common.h")) as f:
        h = f.read()
    parts = [re.search(rf"#define BP_VERSION_{p} (\d+)", h).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    string = re.search(r'#define BP_VERSION_STRING "([^"]+)"', h).group(1)
    report(code == 0 and so == f"batpak {string} (libbatpak {string})\n",
           "version: --version", so)
    report(string == ".".join(parts) == VERSION, "version: common.h and CMake agree",
           f"{string} {parts} {VERSION}")


os.makedirs(SCRATCH, exist_ok=True)
for part in (golden, tty, docs, version):
    try:
        part()
    except Exception as e:  # a crash of the test itself is a failure, not a pass
        report(False, f"{part.__name__}: {type(e).__name__}: {e}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
