#!/usr/bin/env python3
"""faults.py: lensd under bad input and faults (issue 7). Each case must
give a clear error (exit code 1 and a message naming the file, or a
stream state and last_error through the API) while the daemon keeps
serving and the other streams keep their frame rate:

- at start-up: corrupt, truncated and wrong-dtype ONNX models, a config
  full of garbage (file:line in the message), a labels file of invalid
  UTF-8;
- one lensd in motion mode running, beside a healthy stream: a non-video
  file URI, an unreachable RTSP host, an H.264 file with bytes flipped, an
  RTSP server that stalls mid-stream, one that changes resolution
  mid-stream, and a stream removed while a long-poll, an SSE and an MJPEG
  client wait on it;
- a model run with the program cache directory unusable: lensd still runs.

Exit 77 (skipped) when ../shared is absent.
"""

import os
import random
import re
import subprocess
import sys
import threading
import time

# no __pycache__ in the source tree
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lensdtest import (  # noqa: E402
    LABELS, MODEL, RTSP_VIDEO, Checks, Lensd, RtspServer, TestFailure,
    criticals, file_uri, find_key, free_port, log, main, make_workdir,
    read_sse, require_shared, wait_until, write_config)

HEALTHY = ("videotestsrc is-live=true pattern=ball ! "
           "video/x-raw,width=320,height=240,framerate=10/1 ! queue")


class Faults:
    def __init__(self, args):
        self.args = args
        self.shared = require_shared(args, MODEL, LABELS, RTSP_VIDEO)
        self.workdir = make_workdir(args, "lensd-faults-")
        self.checks = Checks()
        self.lensd = None
        self.servers = {}

    def path(self, name):
        return os.path.join(self.workdir, name)

    # -- start-up errors ------------------------------------------------------

    def run_expecting_exit(self, name, config_text, needle, timeout=120,
                           check_config=False):
        """lensd on @config_text must exit 1 within @timeout s, its stderr
        matching the regular expression @needle; the stderr."""
        config = self.path(name + ".conf")
        with open(config, "w") as f:
            f.write(config_text)
        argv = [self.args.lensd,
                "--check-config" if check_config else "--config", config]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s: lensd still running after %d s, expected "
                              "exit 1" % (name, timeout))
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 1:
            raise TestFailure("%s: expected exit 1, got %d; stderr:\n%s" %
                              (name, proc.returncode, err[-2000:]))
        if not re.search(needle, err):
            raise TestFailure("%s: stderr does not match %r:\n%s" %
                              (name, needle, err[-2000:]))
        if "CRITICAL" in err or "Segmentation" in err:
            raise TestFailure("%s: criticals on stderr:\n%s" %
                              (name, err[-2000:]))
        log("%s: %s" % (name, err.strip().splitlines()[-1][:200]))
        return err

    def model_config(self, model_path, labels=None):
        return ("[server]\nlisten=127.0.0.1:%d\n\n[model]\npath=%s\n%s\n"
                "[stream s]\npipeline=%s\n" %
                (free_port(), model_path,
                 "labels=%s\n" % labels if labels else "", HEALTHY))

    def check_corrupt_models(self):
        with open(os.path.join(self.shared, MODEL), "rb") as f:
            good = f.read()
        truncated = self.path("truncated.onnx")
        with open(truncated, "wb") as f:
            f.write(good[:len(good) // 2])
        garbage = self.path("garbage.onnx")
        rnd = random.Random(7)
        with open(garbage, "wb") as f:
            f.write(bytes(rnd.randrange(256) for _ in range(100000)))
        flipped = self.path("flipped.onnx")
        data = bytearray(good)
        for i in range(200, len(data), 997):
            data[i] ^= 0xFF
        with open(flipped, "wb") as f:
            f.write(bytes(data))
        empty = self.path("empty.onnx")
        open(empty, "wb").close()
        # the graph input "images" (ValueInfoProto: name, type.tensor_type.
        # elem_type = 1, FLOAT) declared a string tensor (elem_type 8)
        wrong_dtype = self.path("wrong-dtype.onnx")
        found = list(re.finditer(rb"\x0a\x06images\x12.\x0a.\x08\x01", good,
                                 re.S))
        if len(found) != 1:
            raise TestFailure("%s: the input's type not found where expected"
                              % MODEL)
        data = bytearray(good)
        data[found[0].end() - 1] = 8
        with open(wrong_dtype, "wb") as f:
            f.write(bytes(data))
        for path in (truncated, garbage, flipped, empty, wrong_dtype):
            name = os.path.basename(path)
            self.run_expecting_exit("model-" + name,
                                    self.model_config(path),
                                    re.escape(name))

    def check_garbage_configs(self):
        rnd = random.Random(11)
        binary = bytes(rnd.randrange(256) for _ in range(4000))
        cases = [
            ("garbage-binary", binary.decode("latin-1"), r":\d+:"),
            ("garbage-text", "[server]\nlisten=127.0.0.1:1\nthis is not a "
             "key file line\n", r":3:"),
            ("garbage-unknown-key", "[server]\nlisten=127.0.0.1:1\n\n"
             "[stream a]\npipeline=%s\nfrobnicate=yes\n" % HEALTHY,
             r":6:.*frobnicate"),
            ("garbage-bad-value", "[server]\nlisten=127.0.0.1:1\n\n"
             "[stream a]\npipeline=%s\ninterval=lots\n" % HEALTHY,
             r":6:.*interval"),
            ("garbage-group", "[sever]\nlisten=127.0.0.1:1\n", r":1:"),
            ("garbage-port", "[server]\nlisten=127.0.0.1:99999\n",
             r":2:.*listen"),
        ]
        for name, text, needle in cases:
            config = self.path(name + ".conf")
            with open(config, "w", encoding="latin-1") as f:
                f.write(text)
            # both ways in: validating only, and starting
            for check_config in (True, False):
                self._expect_config_error(name, config, needle, check_config)

    def _expect_config_error(self, name, config, needle, check_config):
        argv = [self.args.lensd,
                "--check-config" if check_config else "--config", config]
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s: lensd %s still running after 30 s" %
                              (name, argv[1]))
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 1:
            raise TestFailure("%s (%s): expected exit 1, got %d:\n%s" %
                              (name, argv[1], proc.returncode, err[-1500:]))
        if not re.search(re.escape(config) + needle, err):
            raise TestFailure("%s (%s): expected FILE:LINE: matching %r, "
                              "got:\n%s" % (name, argv[1], needle,
                                            err[-1500:]))

    def check_bad_labels(self):
        labels = self.path("bad-labels.names")
        with open(os.path.join(self.shared, LABELS), "rb") as f:
            names = f.read().split(b"\n")
        names[0] = b"pers\xc3\x28on\xff"      # invalid UTF-8
        with open(labels, "wb") as f:
            f.write(b"\n".join(names))
        self.run_expecting_exit("labels-invalid-utf8",
                                self.model_config(
                                    os.path.join(self.shared, MODEL), labels),
                                re.escape("bad-labels.names"))

    # -- one daemon, many bad streams -----------------------------------------

    def make_flipped_h264(self):
        """An MPEG-TS H.264 file (videotestsrc, 8 s), then a copy with bytes
        flipped all through it."""
        clean = self.path("clean.ts")
        cmd = ["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=200",
               "pattern=smpte", "!",
               "video/x-raw,width=320,height=240,framerate=25/1", "!",
               "x264enc", "speed-preset=ultrafast", "key-int-max=25", "!",
               "h264parse", "!", "mpegtsmux", "!", "filesink",
               "location=" + clean]
        subprocess.run(cmd, check=True, timeout=120,
                       stdin=subprocess.DEVNULL, capture_output=True)
        data = bytearray(open(clean, "rb").read())
        rnd = random.Random(3)
        # past the first packets (PAT/PMT, the first key frame) so the
        # stream starts and then meets the damage
        for _ in range(len(data) // 500):
            i = rnd.randrange(len(data) // 10, len(data))
            data[i] ^= 1 << rnd.randrange(8)
        flipped = self.path("flipped.ts")
        with open(flipped, "wb") as f:
            f.write(bytes(data))
        return flipped

    def start_fault_daemon(self):
        text_file = self.path("not-a-video.txt")
        with open(text_file, "w") as f:
            f.write("this is not a video\n" * 200)
        flipped = self.make_flipped_h264()
        video = os.path.join(self.shared, RTSP_VIDEO)
        self.servers["stall"] = RtspServer(
            self.args, self.workdir, video, name="rtsp-stall",
            extra=["--stall-after", "25", "--stall-for", "20"])
        self.servers["resize"] = RtspServer(
            self.args, self.workdir, video, name="rtsp-resize",
            extra=["--change-size-after", "25", "--change-size", "320x180"])
        self.checks.children += list(self.servers.values())
        self.port = free_port()
        streams = [
            ("healthy", {"pipeline": HEALTHY}),
            ("text", {"uri": file_uri(text_file)}),
            ("unreachable", {"uri": "rtsp://127.0.0.1:%d/x" % free_port()}),
            ("flipped", {"uri": file_uri(flipped), "loop": "true"}),
            ("stall", {"uri": self.servers["stall"].url,
                       "stall-timeout": "5"}),
            ("resize", {"uri": self.servers["resize"].url}),
            ("victim", {"pipeline": HEALTHY}),
        ]
        config = self.path("faults.conf")
        log(write_config(config, self.port, self.shared, streams,
                         model=False))
        self.lensd = Lensd(self.args, self.workdir, config, self.port)
        self.checks.children.append(self.lensd)
        self.lensd.wait_ready(timeout=120)
        self.healthy_mark = (time.monotonic(), self.lensd.seq("healthy"))

    def assert_healthy(self, what):
        """The daemon serves and the healthy stream keeps its frame rate
        (10 fps; at least a quarter of it counted over the time since the
        last call, so a loaded machine does not fail it)."""
        if not self.lensd.alive():
            raise TestFailure("lensd died (%r) during %s" %
                              (self.lensd.proc.returncode, what))
        status, _, _ = self.lensd.get("/healthz")
        if status != 200:
            raise TestFailure("/healthz %d during %s" % (status, what))
        if self.lensd.state("healthy") != "streaming":
            raise TestFailure("healthy stream %s during %s" %
                              (self.lensd.state("healthy"), what))
        t0, seq0 = self.healthy_mark
        t1, seq1 = time.monotonic(), self.lensd.seq("healthy")
        if t1 - t0 > 4 and seq1 - seq0 < (t1 - t0) * 10 / 4:
            raise TestFailure("healthy stream slowed during %s: %d frames "
                              "in %.1f s" % (what, seq1 - seq0, t1 - t0))
        self.healthy_mark = (t1, seq1)

    def stream_doc(self, name):
        return self.lensd.stream(name)

    def check_non_video(self):
        def failed():
            doc = self.stream_doc("text")
            state = find_key(doc, "state")
            return state in ("failed", "backoff") and \
                find_key(doc, "last_error") and doc
        doc = wait_until("the text-file stream to fail with last_error",
                         failed, 60)
        log("text: %s, last_error %r" % (find_key(doc, "state"),
                                         find_key(doc, "last_error")))
        self.assert_healthy("a non-video URI")

    def check_unreachable(self):
        def reconnects():
            return find_key(self.stream_doc("unreachable"), "reconnects") or 0
        first = wait_until("the unreachable stream to retry",
                           lambda: reconnects() >= 1 and reconnects(), 60)
        wait_until("the unreachable stream to keep retrying",
                   lambda: reconnects() > first, 60)
        doc = self.stream_doc("unreachable")
        if find_key(doc, "state") not in ("backoff", "connecting"):
            raise TestFailure("unreachable stream is %r, expected backoff" %
                              find_key(doc, "state"))
        if not find_key(doc, "last_error"):
            raise TestFailure("unreachable stream without last_error: %r" %
                              doc)
        self.assert_healthy("an unreachable RTSP host")

    def check_flipped(self):
        # the damaged file plays through at least once (it loops), whatever
        # its decoder makes of the damage
        start = time.monotonic()
        while time.monotonic() - start < 20:
            if not self.lensd.alive():
                raise TestFailure("lensd died on the flipped file")
            time.sleep(1)
        doc = self.stream_doc("flipped")
        log("flipped: %s, seq %r, last_error %r" % (
            find_key(doc, "state"), find_key(doc, "seq"),
            find_key(doc, "last_error")))
        if (find_key(doc, "seq") or 0) == 0 and not find_key(doc,
                                                             "last_error"):
            raise TestFailure("flipped stream: no frame and no last_error: %r"
                              % doc)
        self.assert_healthy("an H.264 file with bytes flipped")

    def check_stall(self):
        wait_until("the stalling RTSP stream to stream first",
                   lambda: self.lensd.seq("stall") > 0, 60)
        left = wait_until(
            "the stalled RTSP stream to leave streaming",
            lambda: (lambda s: s != "streaming" and s)(
                self.lensd.state("stall")), 60)
        doc = self.stream_doc("stall")
        log("stall: %s, last_error %r" % (left, find_key(doc, "last_error")))
        if left not in ("backoff", "connecting"):
            raise TestFailure("stalled stream went to %r" % left)
        if "stall" not in (find_key(doc, "last_error") or ""):
            raise TestFailure("stalled stream's last_error %r does not say "
                              "it stalled" % find_key(doc, "last_error"))
        self.assert_healthy("an RTSP stall")
        # the server sends again 45 s after its start: the stream recovers
        # (backoff at most 30 s, plus the reconnection)
        wait_until("the stalled stream to recover when frames come again",
                   lambda: self.lensd.state("stall") == "streaming" and
                   self.lensd.seq("stall") > 0, 90)
        seq = self.lensd.seq("stall")
        wait_until("frames after the stall",
                   lambda: self.lensd.seq("stall") > seq + 5, 30)
        self.assert_healthy("an RTSP stall's recovery")

    def check_resize(self):
        def size():
            doc = self.lensd.get_json(
                "/api/v1/streams/resize/detections?since=0&wait=5000")
            return (doc["frame"]["width"], doc["frame"]["height"])
        first = wait_until("a frame from the resizing stream", size, 60)
        if first not in ((640, 360), (320, 180)):
            raise TestFailure("resize stream's first size %r" % (first,))
        wait_until("the resized frames (320x180)",
                   lambda: size() == (320, 180), 60)
        if self.lensd.state("resize") != "streaming":
            raise TestFailure("resize stream is %s after the change" %
                              self.lensd.state("resize"))
        seq = self.lensd.seq("resize")
        wait_until("frames after the resize",
                   lambda: self.lensd.seq("resize") > seq + 5, 30)
        status, _, body = self.lensd.get(
            "/api/v1/streams/resize/snapshot.jpg")
        if status != 200:
            raise TestFailure("snapshot after the resize: %d" % status)
        self.assert_healthy("a resolution change")

    def check_removed_while_waiting(self):
        wait_until("victim streaming",
                   lambda: self.lensd.state("victim") == "streaming", 60)
        results = {}

        def long_poll():
            try:
                status, _, body = self.lensd.get(
                    "/api/v1/streams/victim/detections?since=%d&wait=60000" %
                    (10 ** 12), timeout=90)
                results["long-poll"] = ("ended", status)
            except Exception as e:
                results["long-poll"] = ("error", repr(e))

        def sse():
            try:
                conn, resp = self.lensd.open_stream(
                    "/api/v1/streams/victim/events", timeout=90)
                read_sse(resp, 1, 30)
                opened.set()
                resp.read()          # to the end: must come
                results["sse"] = ("ended", resp.status)
                conn.close()
            except Exception as e:
                results["sse"] = ("error", repr(e))
                opened.set()

        def mjpeg():
            try:
                conn, resp = self.lensd.open_stream(
                    "/api/v1/streams/victim/mjpeg?fps=5", timeout=90)
                resp.read1(1000)
                opened_mjpeg.set()
                resp.read()
                results["mjpeg"] = ("ended", resp.status)
                conn.close()
            except Exception as e:
                results["mjpeg"] = ("error", repr(e))
                opened_mjpeg.set()

        opened = threading.Event()
        opened_mjpeg = threading.Event()
        threads = [threading.Thread(target=f, daemon=True)
                   for f in (long_poll, sse, mjpeg)]
        for t in threads:
            t.start()
        if not (opened.wait(60) and opened_mjpeg.wait(60)):
            raise TestFailure("SSE or MJPEG client got nothing before the "
                              "removal: %r" % results)
        time.sleep(1)         # the long-poll is waiting by now
        status, _, body = self.lensd.request("DELETE",
                                             "/api/v1/streams/victim")
        if status not in (200, 204):
            raise TestFailure("DELETE victim: %d %r" % (status, body[:200]))
        t0 = time.monotonic()
        for t in threads:
            t.join(timeout=max(0.1, 20 - (time.monotonic() - t0)))
        hung = [t for t in threads if t.is_alive()]
        log("after the removal: %r" % results)
        if hung or len(results) != 3:
            raise TestFailure("clients still waiting 20 s after the stream "
                              "was removed: %r" % results)
        for name, (how, detail) in results.items():
            if how != "ended":
                raise TestFailure("%s client did not end cleanly: %s" %
                                  (name, detail))
        if results["long-poll"][1] not in (200, 404, 410, 503):
            raise TestFailure("long-poll ended with %r" %
                              (results["long-poll"],))
        self.assert_healthy("a stream removed under waiting clients")

    def stop_fault_daemon(self):
        self.lensd.signal(15)
        code = self.lensd.wait(10)
        if code != 0:
            raise TestFailure("lensd exited %r after SIGTERM" % code)
        for server in self.servers.values():
            server.stop()
        found = [line for line in criticals(self.lensd) if "CRITICAL" in line]
        if found:
            raise TestFailure("lensd logged criticals:\n" +
                              "\n".join(found[:20]))

    # -- the cache directory not usable ---------------------------------------

    def check_cache_unwritable(self):
        blocker = self.path("a-file")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        port = free_port()
        config = self.path("cache.conf")
        text = ("[server]\nlisten=127.0.0.1:%d\n\n[engine]\ncache-dir=%s\n\n"
                "[model]\npath=%s\nlabels=%s\n\n[stream s]\npipeline=%s\n" %
                (port, os.path.join(blocker, "cache"),
                 os.path.join(self.shared, MODEL),
                 os.path.join(self.shared, LABELS), HEALTHY))
        with open(config, "w") as f:
            f.write(text)
        env_lensd = Lensd(self.args, self.workdir, config, port,
                          name="lensd-cache")
        self.checks.children.append(env_lensd)
        # the environment's cache would hide the configured one
        env_lensd.wait_ready(timeout=300)
        wait_until("frames inferred without a cache",
                   lambda: env_lensd.seq("s") > 3, 120)
        doc = env_lensd.get_json(
            "/api/v1/streams/s/detections?since=0&wait=5000")
        if "detections" not in doc:
            raise TestFailure("detections document: %r" % doc)
        if not re.search(re.escape(blocker), env_lensd.stderr_tail(200)):
            log("note: no message names the unusable cache directory")
        env_lensd.signal(15)
        if env_lensd.wait(10) != 0:
            raise TestFailure("lensd (no cache) did not exit 0 on SIGTERM")

    def main(self):
        c = self.checks
        try:
            c.run("corrupt, truncated, wrong-dtype ONNX models",
                  self.check_corrupt_models)
            c.run("garbage configs: file:line", self.check_garbage_configs)
            c.run("labels of invalid UTF-8", self.check_bad_labels)
            if c.run("start lensd with faulty streams",
                     self.start_fault_daemon):
                c.run("a non-video URI", self.check_non_video)
                c.run("an unreachable RTSP host", self.check_unreachable)
                c.run("an H.264 file with bytes flipped", self.check_flipped)
                c.run("an RTSP server changing resolution",
                      self.check_resize)
                c.run("an RTSP server stalling", self.check_stall)
                c.run("a stream removed under waiting clients",
                      self.check_removed_while_waiting)
                c.run("SIGTERM exits 0, no criticals logged",
                  self.stop_fault_daemon)
            c.run("cache directory not usable", self.check_cache_unwritable)
            return c.finish()
        finally:
            c.cleanup(self.workdir, self.args.keep)


if __name__ == "__main__":
    main(Faults, __doc__)

