"""lensdtest.py: what lensd's integration, web page and fault tests share
(Python 3 standard library only): the command line every driver takes,
finding ../shared, free loopback ports, the RTSP server and lensd as child
processes (their stderr kept in files, its tail printed on failure), an
HTTP client, bounded waits, and the parsers the checks need (PNG header,
JPEG markers, multipart/x-mixed-replace, Server-Sent Events, Prometheus
text).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import zlib

SKIP = 77


class TestFailure(Exception):
    pass


def log(*args):
    print(*args, flush=True)


def skip(message):
    log("SKIP: " + message)
    sys.exit(SKIP)


# ---- the command line and the test data -----------------------------------

def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--lensd", required=True, help="the lensd binary")
    parser.add_argument("--rtsp-server", required=True,
                        help="the lens-rtsp-server binary")
    parser.add_argument("--source-root", required=True)
    parser.add_argument("--build-root", required=True)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory")
    return parser.parse_args()


def shared_dir(source_root):
    """../shared as tests/lens-shared.c finds it, or None."""
    env = os.environ.get("LENS_SHARED_DIR")
    if env:
        candidates = [env]
    else:
        candidates = [os.path.join(os.getcwd(), "..", "shared"),
                      os.path.join(source_root, "..", "shared")]
    for candidate in candidates:
        if (os.path.isdir(os.path.join(candidate, "models")) and
                os.path.isdir(os.path.join(candidate, "videos"))):
            return os.path.realpath(candidate)
    return None


def require_shared(args, *relative):
    """The shared directory, and every file of @relative in it; skips the
    test when one is absent."""
    shared = shared_dir(args.source_root)
    if shared is None:
        skip("../shared (the test data) not found; set LENS_SHARED_DIR")
    for rel in relative:
        if not os.path.isfile(os.path.join(shared, rel)):
            skip("%s not found in %s" % (rel, shared))
    for binary in (args.lensd, args.rtsp_server):
        if not os.access(binary, os.X_OK):
            raise TestFailure("%s is not built" % binary)
    return shared


# the model: small and fast on a CPU device (~30 ms per frame), COCO classes
MODEL = "models/ultralytics/yolo11n_int8_320.onnx"
LABELS = "models/coco.names"
RTSP_VIDEO = "videos/pedestrians_overhead_vtest.avi"
FILE_VIDEO = "videos/office_people_indoor_720p.mp4"


def free_port():
    """A TCP port free on the loopback interface now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, predicate, timeout, interval=0.25):
    """Calls @predicate until it returns something true (returned) or
    @timeout seconds pass (TestFailure naming @what). Exceptions of the
    predicate count as false; the last one is reported."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError, TypeError,
                http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %g s waiting for %s%s" %
                              (timeout, what,
                               " (last error: %r)" % last if last else ""))
        time.sleep(interval)


# ---- child processes --------------------------------------------------------

class Child:
    """A child process whose stdout and stderr go to files in @workdir."""

    def __init__(self, name, argv, workdir, env=None, stdout_pipe=False):
        self.name = name
        self.argv = argv
        self.err_path = os.path.join(workdir, name + ".stderr")
        self.err = open(self.err_path, "ab")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.err,
            stderr=self.err, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after @timeout s; the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.err.close()
        return self.proc.returncode

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()

    def stderr_tail(self, lines=60):
        try:
            with open(self.err_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no stderr)"
        return "\n".join(data[-lines:])


class RtspServer(Child):
    """lens-rtsp-server serving @video; .url once it listens."""

    def __init__(self, args, workdir, video, port=0, extra=(), name="rtsp"):
        argv = [args.rtsp_server, "--port", str(port), "--file", video,
                "--width", "640", "--height", "360"] + list(extra)
        super().__init__(name, argv, workdir, stdout_pipe=True)
        line = self._read_url(30)
        if not line.startswith("rtsp://"):
            code = self.proc.poll()
            if code == SKIP:
                skip("lens-rtsp-server skipped: " + self.stderr_tail(3))
            raise TestFailure("lens-rtsp-server did not start (exit %r): %s"
                              % (code, self.stderr_tail(10)))
        self.url = line
        self.port = int(urllib.parse.urlsplit(line).port)

    def _read_url(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data and time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                break
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                break
            data += chunk
        sel.close()
        return data.decode("utf-8", "replace").strip()


def test_env():
    """lensd's environment: the build tree's plugin, registry and caches
    come from meson's test environment."""
    return dict(os.environ)


def criticals(child):
    """The GLib criticals and warnings @child wrote to stderr (bugs, even
    when it carried on)."""
    with open(child.err_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return [line for line in text.splitlines()
            if re.search(r"-(CRITICAL|WARNING) \*\*", line)]


class Lensd(Child):
    """lensd --config @config_path, and an HTTP client for it."""

    def __init__(self, args, workdir, config_path, port, name="lensd",
                 extra=()):
        argv = [args.lensd, "--config", config_path] + list(extra)
        super().__init__(name, argv, workdir, env=test_env())
        self.port = port
        self.host = "127.0.0.1"

    # -- HTTP --

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if body is not None and not isinstance(body, bytes):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return (resp.status,
                    {k.lower(): v for k, v in resp.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, timeout=30):
        return self.request("GET", path, timeout=timeout)

    def get_json(self, path, expect=200, timeout=30):
        status, headers, data = self.get(path, timeout=timeout)
        if status != expect:
            raise TestFailure("GET %s: expected %d, got %d: %s" %
                              (path, expect, status, data[:300]))
        try:
            return json.loads(data)
        except ValueError as e:
            raise TestFailure("GET %s: not JSON (%s): %r" %
                              (path, e, data[:300]))

    def open_stream(self, path, timeout=30):
        """A response left open, to read a long-lived body from."""
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=timeout)
        conn.request("GET", path)
        return conn, conn.getresponse()

    def ready(self):
        status, _, _ = self.get("/readyz", timeout=5)
        return status == 200

    def wait_ready(self, timeout=300):
        def check():
            if not self.alive():
                raise TestFailure("lensd exited with %r before it was ready"
                                  " (its stderr below)" %
                                  self.proc.returncode)
            return self.ready()
        wait_until("lensd's /readyz to answer 200", check, timeout, 0.5)

    # -- the streams API, tolerant of how the list is wrapped --

    def streams(self):
        doc = self.get_json("/api/v1/streams")
        if isinstance(doc, dict):
            doc = doc.get("streams", doc)
        if isinstance(doc, dict):
            # {"name": {...}}
            return {k: v for k, v in doc.items()}
        return {s["name"]: s for s in doc}

    def stream(self, name):
        return self.get_json("/api/v1/streams/" + urllib.parse.quote(name))

    def state(self, name):
        return find_key(self.stream(name), "state")

    def seq(self, name):
        """The stream's latest frame sequence number (0: none yet)."""
        doc = self.stream(name)
        value = find_key(doc, "seq")
        return int(value) if value is not None else 0


def find_key(doc, key):
    """@key's value in @doc, at the top or in a nested object (the first
    found, breadth first); None when absent."""
    queue = [doc]
    while queue:
        node = queue.pop(0)
        if isinstance(node, dict):
            if key in node:
                return node[key]
            queue.extend(v for v in node.values() if isinstance(v, dict))
    return None


def write_config(path, port, shared, streams, model=True, extra=""):
    """A lensd configuration: @streams is a list of (name, {key: value})."""
    lines = ["[server]", "listen=127.0.0.1:%d" % port, ""]
    if model:
        lines += ["[model]", "path=" + os.path.join(shared, MODEL),
                  "labels=" + os.path.join(shared, LABELS), ""]
    for name, keys in streams:
        lines.append("[stream %s]" % name)
        lines += ["%s=%s" % (k, v) for k, v in keys.items()]
        lines.append("")
    text = "\n".join(lines) + extra
    with open(path, "w") as f:
        f.write(text)
    return text


def file_uri(path):
    return "file://" + urllib.parse.quote(os.path.abspath(path))


# ---- format checks ----------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    """(width, height) from a PNG's IHDR, its CRC checked, and the image
    data inflated to the size the header implies."""
    if data[:8] != PNG_SIGNATURE:
        raise TestFailure("not a PNG: starts with %r" % data[:8])
    pos = 8
    width = height = None
    idat = b""
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    info = None
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xffffffff != crc:
            raise TestFailure("PNG chunk %r: bad CRC" % ctype)
        if ctype == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            info = (depth, color)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            break
        pos += 12 + length
    if width is None:
        raise TestFailure("PNG without IHDR")
    depth, color = info
    if depth == 8 and color in bpp:
        raw = zlib.decompress(idat)
        expected = height * (1 + width * bpp[color])
        if len(raw) != expected:
            raise TestFailure("PNG %dx%d: %d bytes of image data, expected %d"
                              % (width, height, len(raw), expected))
    return width, height


def jpeg_ok(data):
    return data[:2] == b"\xff\xd8" and data.rstrip(b"\r\n")[-2:] == b"\xff\xd9"


def jpeg_size(data):
    """(width, height) from the SOFn marker of a JPEG."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise TestFailure("JPEG: marker expected at %d" % pos)
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length, = struct.unpack(">H", data[pos + 2:pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    raise TestFailure("JPEG without SOF marker")


def read_multipart(resp, boundary, count, timeout):
    """Reads @count parts of a multipart/x-mixed-replace body; a list of
    (headers, body). A part ends at its Content-Length, or else at the
    next delimiter."""
    delim = b"--" + boundary.encode()
    buf = b""
    parts = []
    deadline = time.monotonic() + timeout
    while len(parts) < count:
        while len(parts) < count:
            part = _next_part(buf, delim)
            if part is None:
                break
            headers, body, buf = part
            parts.append((headers, body))
        if len(parts) >= count:
            break
        if time.monotonic() > deadline:
            raise TestFailure("only %d of %d multipart parts in %g s" %
                              (len(parts), count, timeout))
        chunk = _read_some(resp, "multipart parts (%d of %d so far)" %
                           (len(parts), count))
        if not chunk:
            raise TestFailure("multipart body ended after %d parts" %
                              len(parts))
        buf += chunk
    return parts


def _next_part(buf, delim):
    """(headers, body, rest of @buf) of the first whole part in @buf, or
    None."""
    start = buf.find(delim)
    if start < 0:
        return None
    head_start = start + len(delim)
    while buf[head_start:head_start + 2] == b"\r\n":
        head_start += 2
    head_end = buf.find(b"\r\n\r\n", head_start)
    if head_end < 0:
        return None
    headers = {}
    for line in buf[head_start:head_end].split(b"\r\n"):
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body_start = head_end + 4
    if "content-length" in headers:
        end = body_start + int(headers["content-length"])
        if len(buf) < end:
            return None
        return headers, buf[body_start:end], buf[end:]
    nxt = buf.find(delim, body_start)
    if nxt < 0:
        return None
    body = buf[body_start:nxt]
    if body.endswith(b"\r\n"):
        body = body[:-2]
    return headers, body, buf[nxt:]


def _read_some(resp, what):
    """What the body has now, b"" at its end; TestFailure when nothing
    comes within the connection's timeout."""
    try:
        return resp.read1(65536)
    except (TimeoutError, socket.timeout):
        raise TestFailure("no data for %s within the connection's timeout"
                          % what)


def boundary_of(content_type):
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m:
        raise TestFailure("no boundary in Content-Type %r" % content_type)
    return m.group(1)


def read_sse(resp, count, timeout, event_name="detections"):
    """Reads Server-Sent Events until @count events named @event_name;
    a list of (event, data)."""
    events = []
    event, data = None, []
    deadline = time.monotonic() + timeout
    buf = b""
    while len([e for e in events if e[0] == event_name]) < count:
        if time.monotonic() > deadline:
            raise TestFailure("only %d SSE events in %g s: %r" %
                              (len(events), timeout, events[-3:]))
        chunk = _read_some(resp, "SSE events (%d so far)" % len(events))
        if not chunk:
            raise TestFailure("SSE body ended after %d events" % len(events))
        buf += chunk
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            line = line.rstrip(b"\r").decode("utf-8")
            if line == "":
                if data or event:
                    events.append((event or "message", "\n".join(data)))
                event, data = None, []
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "event":
                    event = value
                elif field == "data":
                    data.append(value)
    return events


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="'
    r'(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*,?)?\})?'
    r' +([^ ]+)( +-?[0-9]+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format: a list of (name, {label: value}, float);
    every line must parse; TYPE lines are checked too."""
    samples = []
    types = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?$",
                         line)
            if line.startswith("# TYPE") or line.startswith("# HELP"):
                if not m:
                    raise TestFailure("metrics line %d: bad %r" % (n, line))
                if m.group(1) == "TYPE":
                    kind = (m.group(3) or "").strip()
                    if kind not in ("counter", "gauge", "histogram",
                                    "summary", "untyped"):
                        raise TestFailure("metrics line %d: type %r" %
                                          (n, kind))
                    types[m.group(2)] = kind
            continue
        m = METRIC_LINE.match(line)
        if not m:
            raise TestFailure("metrics line %d does not parse: %r" % (n, line))
        labels = dict(LABEL.findall(m.group(2) or ""))
        value = m.group(3)
        try:
            number = float(value)
        except ValueError:
            raise TestFailure("metrics line %d: value %r" % (n, value))
        samples.append((m.group(1), labels, number))
    return samples, types


# ---- the driver's frame -----------------------------------------------------

class Checks:
    """Runs named checks in order, each to completion or failure; prints a
    line per check and, on failure, what the children wrote."""

    def __init__(self):
        self.failures = []
        self.passed = 0
        self.children = []

    def run(self, name, func, *args):
        log("--- %s" % name)
        start = time.monotonic()
        try:
            func(*args)
        except TestFailure as e:
            self.failures.append((name, str(e)))
            log("FAIL %s: %s" % (name, e))
            return False
        except Exception as e:    # a bug or an unexpected answer: a failure
            import traceback
            traceback.print_exc()
            self.failures.append((name, repr(e)))
            log("FAIL %s: %r" % (name, e))
            return False
        self.passed += 1
        log("ok   %s (%.1f s)" % (name, time.monotonic() - start))
        return True

    def finish(self):
        if self.failures:
            for child in self.children:
                log("==== %s stderr (last lines) ====" % child.name)
                log(child.stderr_tail())
        for child in self.children:
            if child.alive():
                child.kill()
        log("%d passed, %d failed" % (self.passed, len(self.failures)))
        for name, message in self.failures:
            log("  FAILED %s: %s" % (name, message))
        return 1 if self.failures else 0


    def cleanup(self, workdir, keep):
        """Kills the children left; removes @workdir unless a check failed
        or @keep."""
        for child in self.children:
            if child.alive():
                child.kill()
        if not keep and not self.failures:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log("logs kept in %s" % workdir)


def main(driver_class, description):
    """The entry point of a driver: exit 1 when it cannot even start,
    else its checks' status."""
    try:
        driver = driver_class(parse_args(description))
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    sys.exit(driver.main())


def make_workdir(args, prefix):
    return tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR"))
