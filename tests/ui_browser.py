#!/usr/bin/env python3
"""The page of `batpak ui` in a real browser: headless Chromium, driven through the DevTools
protocol over a pipe (--remote-debugging-pipe: no port, no extra package). Against a store
that a live writer appends to, it checks the entity list, one entity's stream with its chain
marks, that the live tail shows events appended after it started (and only those of its
filter), that verify runs from the page to a clean result with its progress bar full, and
that a pasted receipt verifies, that kinds show their stored schema's name and the worker its
position; then it saves a screenshot of the page.

Usage: ui_browser.py URL SCREENSHOT.png   (exit 0 pass, 1 fail, 77 when there is no chromium)
The store must hold acct:1 (2 events of kind bank.Deposit, a stored schema), acct:2, acct:3,
and a live writer appending to live:1..3 with a checkpointed worker live.counter; RECEIPT
(environment) names a file with a signed receipt of it.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def fail(msg):
    print("ui_browser: " + msg, file=sys.stderr)
    sys.exit(1)


class Browser:
    """Chromium with the DevTools protocol on fds 3 (commands in) and 4 (replies out)."""

    def __init__(self, exe, profile):
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()

        def child_fds():  # (runs before the fds but pass_fds are closed)
            os.dup2(cmd_r, 100)
            os.dup2(res_w, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-extensions", "--no-first-run",
             "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
             "--user-data-dir=" + profile, "--remote-debugging-pipe", "--window-size=1400,1300",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(cmd_r)
        os.close(res_w)
        self.next_id = 0
        self.buf = b""
        self.session = None

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + 30
        while time.time() < deadline:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        fail("%s: %s" % (method, reply["error"]))
                    return reply.get("result", {})
            chunk = os.read(self.res_r, 1 << 16)
            if not chunk:
                fail("chromium closed its pipe: %s" % self.proc.stderr.read().decode()[-2000:])
            self.buf += chunk
        fail(method + ": no reply in 30 s")

    def open(self, url):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        att = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                        session=False)
        self.session = att["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 1300, "deviceScaleFactor": 1, "mobile": False})
        self.send("Page.navigate", {"url": url})

    def js(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            fail("page script %r: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, what, expr, timeout=20):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            value = self.js(expr)
            if value:
                return value
            time.sleep(0.1)
        fail("%s: not seen in %d s (last: %r)" % (what, timeout, value))

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, shot = sys.argv[1], sys.argv[2]
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("ui_browser: skipped (no chromium: scripts/install-deps.sh installs it)")
        return 77
    with tempfile.TemporaryDirectory() as profile:
        b = Browser(exe, profile)
        try:
            b.open(url)
            # the store's figures and the entity list
            b.wait("the store's figures", "document.querySelectorAll('#store .fig').length === 6")
            names = b.wait("the entity list", """(() => {
                const n = [...document.querySelectorAll('#entities tr[data-entity]')]
                    .map(r => r.dataset.entity);
                return n.includes('acct:1') && n.includes('live:2') ? n : null })()""")
            if names != sorted(names):
                fail("entities not in name order: %r" % names)
            # names and payloads are shown as text, never run as HTML
            evil = 'x:<img src=x onerror="window.pwned=1">'
            if evil not in names:
                fail("the entity %r is not listed: %r" % (evil, names))
            b.js("document.querySelector('#entities tr[data-entity^=\"x:\"] a').click()")
            b.wait("the stream of %r" % evil, """[...document.querySelectorAll('#stream code.payload')]
                .some(c => c.textContent.includes('<script>'))""")
            if b.js("document.getElementById('stream-title').textContent") != "Stream " + evil:
                fail("the stream's title is not the entity's name as text")
            if b.js("window.pwned === undefined && !document.querySelector('#entities img, #stream img, #stream script')") is not True:
                fail("a name or payload was run as HTML")
            # one entity's stream, with its chain marks
            b.js("document.querySelector('#entities tr[data-entity=\"acct:1\"] a').click()")
            marks = b.wait("acct:1's stream", """(() => {
                if (document.getElementById('stream-title').textContent !== 'Stream acct:1')
                    return null;
                const m = [...document.querySelectorAll('#stream td.chain')]
                    .map(c => c.dataset.chain);
                return m.length ? m : null })()""")
            if marks != ["start", "ok"]:
                fail("acct:1's chain marks: %r, want ['start', 'ok']" % marks)
            kinds = b.js("[...document.querySelectorAll('#stream tr')].slice(1)"
                         ".map(r => r.cells[3].textContent)")
            if kinds != ["bank.Deposit", "bank.Deposit"]:
                fail("acct:1's kinds by their stored schema's name: %r" % kinds)
            payloads = b.js("[...document.querySelectorAll('#stream code.payload')]"
                            ".map(c => c.textContent)")
            if payloads != ['{"add":1}', '{"add":10}']:
                fail("acct:1's payloads: %r" % payloads)
            # the worker the writer runs, with its position and lag
            b.wait("the worker live.counter", """[...document.querySelectorAll('#checkpoints tr')]
                .some(r => r.cells[0].textContent === 'live.counter' && r.cells[1].textContent
                    === 'worker' && Number(r.cells[2].textContent) > 0)""")
            # the live tail, filtered to one entity: events appended after it started
            b.js("document.getElementById('t-entity-prefix').value = 'live:2';"
                 "document.getElementById('tail-go').click()")
            start = b.wait("the tail's start", """(() => {
                const t = document.getElementById('tail-state').textContent;
                const m = t.match(/following from seq (\\d+)/); return m ? Number(m[1]) : null
                })()""")
            rows = b.wait("new events in the tail", """(() => {
                const r = [...document.querySelectorAll('#tail tr[data-seq]')]
                    .map(r => [Number(r.dataset.seq), r.cells[2].textContent]);
                return r.length >= 3 ? r : null })()""")
            for seq, entity in rows:
                if seq <= start:
                    fail("the tail shows seq %d, from before its start %d" % (seq, start))
                if entity != "live:2":
                    fail("the tail filtered to live:2 shows %r" % entity)
            # verify from the page: progress bar, then the clean result
            b.js("document.getElementById('verify-go').click()")
            result = b.wait("verify's result", """(() => {
                const r = document.getElementById('verify-result').textContent;
                return r.startsWith('clean') || r.includes('problem') ? r : null })()""", 60)
            if not result.startswith("clean"):
                fail("verify from the page: %r" % result)
            bar = b.js("[document.getElementById('verify-progress').value,"
                       " document.getElementById('verify-progress').max]")
            if bar[1] <= 1 or bar[0] != bar[1]:
                fail("verify's progress bar at the end: %r" % bar)
            # a signed receipt pasted into the page
            receipt = open(os.environ["RECEIPT"]).read()
            b.js("document.getElementById('receipts-in').value = %s;"
                 "document.getElementById('receipts-go').click()" % json.dumps(receipt))
            verdict = b.wait("the receipt's check", """(() => {
                const c = document.querySelector('#receipts-result td.ok, #receipts-result td.bad');
                return c ? c.textContent : null })()""")
            if "verifies" not in verdict:
                fail("the signed receipt: %r" % verdict)
            # the stream back on top for the picture
            b.js("window.scrollTo(0, 0)")
            time.sleep(0.3)
            png = base64.b64decode(b.send("Page.captureScreenshot", {"format": "png"})["data"])
            if not png.startswith(b"\x89PNG") or len(png) < 10000:
                fail("the screenshot is not a picture (%d bytes)" % len(png))
            with open(shot, "wb") as f:
                f.write(png)
        finally:
            b.close()
    print("ui_browser: entities, chain marks, live tail (%d new events), verify, receipt; "
          "screenshot %s" % (len(rows), shot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
