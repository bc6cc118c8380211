#!/usr/bin/env python3
"""webpage.py: lensd's web page (GET /) in headless Chromium (issue 6).
lensd runs in motion mode on two videotestsrc streams (no test data
needed); Chromium loads http://127.0.0.1:PORT/ and is driven through the
DevTools protocol over --remote-debugging-pipe (NUL-separated JSON on
fds 3 and 4: no WebSocket, no packages). The page must list both streams
(<section class="stream" data-stream="NAME">), show their live overlay
(an image that loaded), fill the detections table and count the SSE
events it receives (document.body.dataset.sseEvents). Exit 77 (skipped)
only when chromium is not installed.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import time

# no __pycache__ in the source tree
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lensdtest import (  # noqa: E402
    Checks, Lensd, TestFailure, free_port, log, main, make_workdir,
    skip, wait_until)

STREAMS = {
    "ball": "videotestsrc is-live=true pattern=ball ! "
            "video/x-raw,width=320,height=240,framerate=10/1 ! queue",
    "snow": "videotestsrc is-live=true pattern=snow ! "
            "video/x-raw,width=320,height=240,framerate=10/1 ! queue",
}

# what the page shows, as one JSON document
PAGE_STATE_JS = r"""
(() => {
  if (!document.body)
    return JSON.stringify({title: '', sseEvents: 0, streams: []});
  const sections = [...document.querySelectorAll('section.stream')];
  return JSON.stringify({
    title: document.title,
    sseEvents: Number(document.body.dataset.sseEvents || 0),
    streams: sections.map(s => ({
      name: s.dataset.stream,
      images: [...s.querySelectorAll('img')].map(i => ({
        src: i.getAttribute('src'), width: i.naturalWidth,
        height: i.naturalHeight, complete: i.complete})),
      tables: s.querySelectorAll('.detections').length,
      rows: s.querySelectorAll('.detections tbody tr').length,
      text: s.innerText.slice(0, 300),
    })),
  });
})()
"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if os.access(path, os.X_OK):
            return path
    return None


class DevTools:
    """Chromium driven over --remote-debugging-pipe."""

    def __init__(self, chromium, workdir, url):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        profile = os.path.join(workdir, "chromium-profile")
        argv = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--mute-audio",
                "--user-data-dir=" + profile, "--remote-debugging-pipe",
                "about:blank"]
        # the protocol's fds are 3 (commands in) and 4 (answers out)
        script = 'exec "$0" "$@" 3<&%d 4>&%d' % (to_chrome_r, from_chrome_w)
        self.err_path = os.path.join(workdir, "chromium.stderr")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", script] + argv, stdin=subprocess.DEVNULL,
            stdout=self.err, stderr=self.err,
            pass_fds=(to_chrome_r, from_chrome_w))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.name = "chromium"
        self.next_id = 0
        self.buf = b""
        self.events = []
        self.url = url
        self.session = None

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        try:
            if self.alive():
                self.send("Browser.close", timeout=10)
        except (TestFailure, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        for fd in (self.to_chrome, self.from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self.err.close()

    def stderr_tail(self, lines=30):
        with open(self.err_path, "rb") as f:
            text = f.read().decode("utf-8", "replace").splitlines()
        # headless Chromium complains of the absent D-Bus at length
        return "\n".join([line for line in text
                          if "dbus" not in line][-lines:])

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise TestFailure("chromium closed the DevTools pipe:\n" +
                                  self.stderr_tail())
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method, params=None, session=None, timeout=30):
        """A command's result (TestFailure on a protocol error)."""
        self.next_id += 1
        cmd = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            cmd["sessionId"] = session
        data = json.dumps(cmd).encode() + b"\0"
        while data:
            n = os.write(self.to_chrome, data)
            data = data[n:]
        deadline = time.monotonic() + timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                raise TestFailure("DevTools %s: no answer in %g s" %
                                  (method, timeout))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise TestFailure("DevTools %s: %r" %
                                      (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def open_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"},
                           timeout=60)["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True}
                                 )["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(domain, session=self.session)
        self.send("Page.navigate", {"url": self.url}, session=self.session,
                  timeout=60)

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate",
                           {"expression": expression, "returnByValue": True},
                           session=self.session)
        if "exceptionDetails" in result:
            raise TestFailure("page script failed: %r" %
                              result["exceptionDetails"])
        return result["result"].get("value")

    def console(self):
        """What the page logged: console calls, exceptions, log entries."""
        lines = []
        for ev in self.events:
            p = ev.get("params", {})
            if ev["method"] == "Runtime.consoleAPICalled":
                lines.append("console.%s: %s" % (p.get("type"), " ".join(
                    str(a.get("value", a.get("description", "")))
                    for a in p.get("args", []))))
            elif ev["method"] == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                lines.append("exception: %s %s" % (
                    d.get("text"), d.get("exception", {}).get("description")))
            elif ev["method"] == "Log.entryAdded":
                e = p.get("entry", {})
                lines.append("log %s: %s %s" % (e.get("level"), e.get("text"),
                                                 e.get("url", "")))
        return lines


class WebPage:
    def __init__(self, args):
        self.args = args
        self.chromium = find_chromium()
        if self.chromium is None:
            skip("chromium is not installed (Debian package chromium)")
        if not os.access(args.lensd, os.X_OK):
            raise TestFailure("%s is not built" % args.lensd)
        self.workdir = make_workdir(args, "lensd-webpage-")
        self.port = free_port()
        self.checks = Checks()
        self.lensd = None
        self.browser = None
        self.state = None

    def start_lensd(self):
        path = os.path.join(self.workdir, "lensd.conf")
        lines = ["[server]", "listen=127.0.0.1:%d" % self.port, ""]
        for name, pipeline in STREAMS.items():
            lines += ["[stream %s]" % name, "pipeline=" + pipeline, ""]
        with open(path, "w") as f:
            f.write("\n".join(lines))
        self.lensd = Lensd(self.args, self.workdir, path, self.port)
        self.checks.children.append(self.lensd)
        self.lensd.wait_ready(timeout=120)
        for name in STREAMS:
            wait_until("stream %s streaming" % name,
                       lambda: self.lensd.state(name) == "streaming", 60)

    def check_page_served(self):
        status, headers, body = self.lensd.get("/")
        if status != 200:
            raise TestFailure("GET /: expected 200, got %d" % status)
        if not headers.get("content-type", "").startswith("text/html"):
            raise TestFailure("GET /: Content-Type %r" %
                              headers.get("content-type"))
        if b"<html" not in body.lower():
            raise TestFailure("GET /: not an HTML page: %r" % body[:200])

    def start_browser(self):
        self.browser = DevTools(self.chromium, self.workdir,
                                "http://127.0.0.1:%d/" % self.port)
        self.checks.children.append(self.browser)
        version = self.browser.send("Browser.getVersion", timeout=120)
        log("browser: %s" % version.get("product"))
        self.browser.open_page()

    def page_state(self):
        self.state = json.loads(self.browser.evaluate(PAGE_STATE_JS))
        return self.state

    def check_streams_listed(self):
        def listed():
            names = {s["name"] for s in self.page_state()["streams"]}
            return set(STREAMS) <= names
        try:
            wait_until("both streams listed on the page", listed, 60, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))

    def check_sse(self):
        def enough():
            return self.page_state()["sseEvents"] >= 3
        try:
            wait_until("3 SSE events counted by the page", enough, 60, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))

    def check_overlay_images(self):
        def loaded():
            streams = self.page_state()["streams"]
            # the snapshot of a 320x240 stream, whatever the page's scaling
            return all(any((i["width"], i["height"]) == (320, 240)
                           for i in s["images"])
                       for s in streams if s["name"] in STREAMS)
        try:
            wait_until("each stream's live overlay image to load", loaded,
                       60, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))

    def check_detections_table(self):
        def tables():
            streams = self.page_state()["streams"]
            ball = [s for s in streams if s["name"] == "ball"]
            # the moving ball is a motion detection: a row in its table
            return all(s["tables"] > 0 for s in streams
                       if s["name"] in STREAMS) and ball and \
                ball[0]["rows"] > 0
        try:
            wait_until("a .detections table in each stream's section, with "
                       "a row for the ball", tables, 30, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))

    def check_stream_added(self):
        """A stream added through the API shows up without a reload, and
        goes when it is removed."""
        status, _, body = self.lensd.request(
            "POST", "/api/v1/streams",
            {"name": "added", "pipeline": STREAMS["ball"]})
        if status not in (200, 201):
            raise TestFailure("POST /api/v1/streams: %d %r" %
                              (status, body[:200]))

        def listed():
            return "added" in {s["name"] for s in
                               self.page_state()["streams"]}
        try:
            wait_until("the added stream listed on the page", listed, 60, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))
        status, _, body = self.lensd.request("DELETE",
                                             "/api/v1/streams/added")
        if status not in (200, 204):
            raise TestFailure("DELETE /api/v1/streams/added: %d %r" %
                              (status, body[:200]))
        try:
            wait_until("the removed stream gone from the page",
                       lambda: not listed(), 60, 0.5)
        except TestFailure as e:
            raise TestFailure("%s; page: %r" % (e, self.state))

    def main(self):
        c = self.checks
        try:
            if not (c.run("start lensd (motion mode)", self.start_lensd) and
                    c.run("GET / serves HTML", self.check_page_served) and
                    c.run("start headless Chromium", self.start_browser)):
                return c.finish()
            c.run("the page lists the streams", self.check_streams_listed)
            c.run("the page receives SSE events", self.check_sse)
            c.run("the page shows the live overlays",
                  self.check_overlay_images)
            c.run("the page has detections tables",
                  self.check_detections_table)
            c.run("a stream added and removed at runtime shows",
                  self.check_stream_added)
            if c.failures and self.browser:
                log("==== page console ====")
                for line in self.browser.console()[-40:]:
                    log(line)
            return c.finish()
        finally:
            if self.browser:
                self.browser.stop()
            if self.lensd and self.lensd.alive():
                self.lensd.stop()
            c.cleanup(self.workdir, self.args.keep)


if __name__ == "__main__":
    main(WebPage, __doc__)
