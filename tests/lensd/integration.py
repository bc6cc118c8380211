#!/usr/bin/env python3
"""integration.py: lensd end to end (issue 6). lens-rtsp-server serves
../shared/videos/pedestrians_overhead_vtest.avi in a loop; lensd runs
yolo11n (int8, 320) on that RTSP stream and on a second, looping file
stream; the checks go through the HTTP API: persons detected, heatmap.png
at the frame's and the grid's size, mjpeg parts, SSE events, /metrics,
streams added and removed at runtime, the RTSP server killed and started
again, SIGHUP reload and SIGTERM. Every wait is bounded; a failure prints
lensd's stderr. Exit 77 (skipped) when ../shared is absent.
"""

import json
import os
import signal
import sys
import time

# no __pycache__ in the source tree
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lensdtest import (  # noqa: E402
    FILE_VIDEO, LABELS, MODEL, RTSP_VIDEO, Checks, Lensd, RtspServer,
    TestFailure, boundary_of, criticals, file_uri, find_key, free_port,
    jpeg_ok, jpeg_size, log, main, make_workdir, parse_metrics,
    png_size, read_multipart, read_sse, require_shared, wait_until,
    write_config)

RTSP_W, RTSP_H = 640, 360     # what lens-rtsp-server scales to
FILE_W, FILE_H = 1280, 720    # office_people_indoor_720p.mp4
TICK_PIPELINE = ("videotestsrc is-live=true pattern=ball ! "
                 "video/x-raw,width=320,height=240,framerate=5/1 ! queue")


class Integration:
    def __init__(self, args):
        self.args = args
        self.shared = require_shared(args, MODEL, LABELS, RTSP_VIDEO,
                                     FILE_VIDEO)
        self.workdir = make_workdir(args, "lensd-integration-")
        self.checks = Checks()
        self.rtsp = None
        self.lensd = None
        self.port = free_port()
        self.config_path = os.path.join(self.workdir, "lensd.conf")
        self.rtsp_port = None

    # -- set-up --

    def start_rtsp(self, port=0):
        self.rtsp = RtspServer(self.args, self.workdir,
                               os.path.join(self.shared, RTSP_VIDEO), port)
        self.checks.children.append(self.rtsp)
        self.rtsp_port = self.rtsp.port
        log("RTSP server at %s" % self.rtsp.url)

    def streams_config(self, with_cam=True, extra=()):
        streams = []
        if with_cam:
            streams.append(("cam", {"uri": self.rtsp.url}))
        streams.append(("office", {
            "uri": file_uri(os.path.join(self.shared, FILE_VIDEO)),
            "loop": "true"}))
        streams += list(extra)
        return streams

    def start_lensd(self):
        text = write_config(self.config_path, self.port, self.shared,
                            self.streams_config())
        log("lensd config:\n" + text)
        self.lensd = Lensd(self.args, self.workdir, self.config_path,
                           self.port)
        self.checks.children.append(self.lensd)
        self.lensd.wait_ready(timeout=300)
        status, _, body = self.lensd.get("/healthz")
        if status != 200:
            raise TestFailure("/healthz: expected 200, got %d: %r" %
                              (status, body[:200]))

    # -- the checks --

    def check_streams_listed(self):
        streams = self.lensd.streams()
        for name in ("cam", "office"):
            if name not in streams:
                raise TestFailure("GET /api/v1/streams: expected stream %r "
                                  "in %r" % (name, list(streams)))
        info = self.lensd.get_json("/api/v1/info")
        if find_key(info, "sha256") is None:
            raise TestFailure("/api/v1/info has no model sha256: %r" % info)

    def wait_streaming(self, name, timeout):
        return wait_until("stream %s to be streaming" % name,
                          lambda: self.lensd.state(name) == "streaming",
                          timeout)

    def check_persons_detected(self):
        self.wait_streaming("cam", 120)
        seen = {}

        def person_in_latest():
            seq = seen.get("seq", 0)
            status, _, body = self.lensd.get(
                "/api/v1/streams/cam/detections?since=%d&wait=5000" % seq,
                timeout=30)
            if status != 200:
                seen["last"] = "%d %r" % (status, body[:200])
                return False
            doc = json.loads(body)
            if doc["seq"] <= seq:
                raise TestFailure("detections?since=%d answered seq %d" %
                                  (seq, doc["seq"]))
            seen["seq"] = doc["seq"]
            seen["last"] = doc
            labels = [d["label"] for d in doc["detections"]]
            return "person" in labels and doc

        try:
            doc = wait_until("a 'person' in cam's detections",
                             person_in_latest, 90)
        except TestFailure as e:
            raise TestFailure("%s; last answer: %s" % (e, seen.get("last")))
        frame = doc["frame"]
        if (frame["width"], frame["height"]) != (RTSP_W, RTSP_H):
            raise TestFailure("detections frame: expected %dx%d, got %r" %
                              (RTSP_W, RTSP_H, frame))
        for key in ("stream", "seq", "pts", "timestamp", "model",
                    "inference_ms"):
            if key not in doc:
                raise TestFailure("detections document lacks %r: %r" %
                                  (key, doc))
        if doc["stream"] != "cam":
            raise TestFailure("detections: stream %r, expected cam" %
                              doc["stream"])
        if not doc["timestamp"].endswith("Z"):
            raise TestFailure("timestamp %r is not RFC 3339 UTC" %
                              doc["timestamp"])
        person = [d for d in doc["detections"] if d["label"] == "person"][0]
        box, norm = person["box"], person["box_norm"]
        if not (0 <= box["x"] < RTSP_W and 0 <= box["y"] < RTSP_H and
                0 < box["w"] <= RTSP_W and 0 < box["h"] <= RTSP_H):
            raise TestFailure("person box outside the frame: %r" % box)
        if abs(norm["x"] - box["x"] / RTSP_W) > 0.01 or \
                abs(norm["w"] - box["w"] / RTSP_W) > 0.01:
            raise TestFailure("box_norm %r does not match box %r" %
                              (norm, box))
        if person["class_id"] != 0 or not 0 < person["score"] <= 1:
            raise TestFailure("person detection: %r" % person)
        log("cam: seq %d, %d detections, first person %r" %
            (doc["seq"], len(doc["detections"]), person))

    def check_file_stream(self):
        self.wait_streaming("office", 120)
        doc = wait_until(
            "a frame from the office stream",
            lambda: self.lensd.get_json(
                "/api/v1/streams/office/detections?since=0&wait=5000"), 60)
        if (doc["frame"]["width"], doc["frame"]["height"]) != (FILE_W,
                                                               FILE_H):
            raise TestFailure("office frame: expected %dx%d, got %r" %
                              (FILE_W, FILE_H, doc["frame"]))

    def check_heatmap(self):
        status, headers, body = self.lensd.get(
            "/api/v1/streams/cam/heatmap.png")
        if status != 200:
            raise TestFailure("heatmap.png: expected 200, got %d: %r" %
                              (status, body[:200]))
        if not headers.get("content-type", "").startswith("image/png"):
            raise TestFailure("heatmap.png: Content-Type %r" %
                              headers.get("content-type"))
        size = png_size(body)
        if size != (RTSP_W, RTSP_H):
            raise TestFailure("heatmap.png: expected %dx%d, got %dx%d" %
                              ((RTSP_W, RTSP_H) + size))
        # one pixel per cell: the model's input over the level's stride
        info = self.lensd.get_json("/api/v1/info")
        model = info.get("model", {})
        in_w = find_key(model, "width") or find_key(model, "input_width")
        in_h = find_key(model, "height") or find_key(model, "input_height")
        for level, kind in (("8", "activation"), ("16", "score"),
                            ("32", "activation")):
            status, _, body = self.lensd.get(
                "/api/v1/streams/cam/heatmap.png?level=%s&kind=%s&scale=grid"
                % (level, kind))
            if status != 200:
                raise TestFailure("heatmap.png?level=%s&kind=%s&scale=grid: "
                                  "expected 200, got %d: %r" %
                                  (level, kind, status, body[:200]))
            size = png_size(body)
            expected = (in_w // int(level), in_h // int(level))
            if size != expected:
                raise TestFailure("heatmap.png level %s scale=grid: expected "
                                  "%dx%d (input %dx%d / stride), got %dx%d" %
                                  ((level,) + expected + (in_w, in_h) + size))
        status, _, body = self.lensd.get(
            "/api/v1/streams/cam/heatmap.png?level=fused&kind=score")
        if status != 200 or png_size(body) != (RTSP_W, RTSP_H):
            raise TestFailure("heatmap.png?level=fused&kind=score: %d" %
                              status)
        # fused on the grid: the finest level's (stride 8)
        status, _, body = self.lensd.get(
            "/api/v1/streams/cam/heatmap.png?level=fused&scale=grid")
        if status != 200 or png_size(body) != (in_w // 8, in_h // 8):
            raise TestFailure("heatmap.png?level=fused&scale=grid: %d, "
                              "expected %dx%d" % (status, in_w // 8,
                                                  in_h // 8))
        status, _, body = self.lensd.get(
            "/api/v1/streams/cam/heatmap.png?level=7")
        if status != 400:
            raise TestFailure("heatmap.png?level=7: expected 400, got %d" %
                              status)
        status, _, body = self.lensd.get(
            "/api/v1/streams/cam/featuremaps.png?level=16")
        if status != 200:
            raise TestFailure("featuremaps.png?level=16: expected 200, got "
                              "%d: %r" % (status, body[:200]))
        png_size(body)

    def check_snapshot(self):
        status, headers, body = self.lensd.get(
            "/api/v1/streams/cam/snapshot.jpg?overlay=boxes,heatmap")
        if status != 200 or not jpeg_ok(body):
            raise TestFailure("snapshot.jpg: status %d, %d bytes, starts %r" %
                              (status, len(body), body[:4]))
        if jpeg_size(body) != (RTSP_W, RTSP_H):
            raise TestFailure("snapshot.jpg: expected %dx%d, got %r" %
                              (RTSP_W, RTSP_H, jpeg_size(body)))

    def check_mjpeg(self):
        conn, resp = self.lensd.open_stream("/api/v1/streams/cam/mjpeg?fps=5")
        try:
            if resp.status != 200:
                raise TestFailure("mjpeg: expected 200, got %d: %r" %
                                  (resp.status, resp.read(200)))
            ctype = resp.getheader("Content-Type")
            if not ctype.startswith("multipart/x-mixed-replace"):
                raise TestFailure("mjpeg: Content-Type %r" % ctype)
            parts = read_multipart(resp, boundary_of(ctype), 3, 60)
            for i, (headers, body) in enumerate(parts):
                if not headers.get("content-type", "").startswith(
                        "image/jpeg"):
                    raise TestFailure("mjpeg part %d: Content-Type %r" %
                                      (i, headers.get("content-type")))
                if not jpeg_ok(body):
                    raise TestFailure("mjpeg part %d: not a whole JPEG (%d "
                                      "bytes, %r...%r)" % (i, len(body),
                                                           body[:4],
                                                           body[-4:]))
                if jpeg_size(body) != (RTSP_W, RTSP_H):
                    raise TestFailure("mjpeg part %d: size %r" %
                                      (i, jpeg_size(body)))
        finally:
            conn.close()

    def check_events(self):
        conn, resp = self.lensd.open_stream("/api/v1/streams/cam/events")
        try:
            if resp.status != 200:
                raise TestFailure("events: expected 200, got %d" %
                                  resp.status)
            ctype = resp.getheader("Content-Type")
            if not ctype.startswith("text/event-stream"):
                raise TestFailure("events: Content-Type %r" % ctype)
            events = read_sse(resp, 2, 60)
            seqs = []
            for name, data in events:
                if name != "detections":
                    continue
                doc = json.loads(data)
                if doc.get("stream") != "cam" or "detections" not in doc:
                    raise TestFailure("SSE data is not cam's detections: %r"
                                      % data[:200])
                seqs.append(doc["seq"])
            if seqs != sorted(set(seqs)):
                raise TestFailure("SSE seqs not increasing: %r" % seqs)
        finally:
            conn.close()

    def check_metrics(self):
        status, headers, body = self.lensd.get("/metrics")
        if status != 200:
            raise TestFailure("/metrics: expected 200, got %d" % status)
        if not headers.get("content-type", "").startswith("text/plain"):
            raise TestFailure("/metrics: Content-Type %r" %
                              headers.get("content-type"))
        samples, types = parse_metrics(body.decode("utf-8"))

        def family(name, labels=("stream",)):
            found = [x for x in samples if x[0] == name and
                     all(k in x[1] for k in labels)]
            if not found:
                raise TestFailure("/metrics: no %s with labels %r; names: %r"
                                  % (name, labels,
                                     sorted({x[0] for x in samples})))
            return found

        family("lensd_stream_fps_in")
        family("lensd_stream_fps_out")
        if types.get("lensd_inference_seconds") != "histogram":
            raise TestFailure("/metrics: lensd_inference_seconds is %r, "
                              "expected a histogram" %
                              types.get("lensd_inference_seconds"))
        counts = {x[1]["stream"]: x[2] for x in
                  family("lensd_inference_seconds_count")}
        family("lensd_inference_seconds_sum")
        by_stream = {}
        for name, labels, value in family("lensd_inference_seconds_bucket",
                                          ("stream", "le")):
            le = float("inf") if labels["le"] == "+Inf" else \
                float(labels["le"])
            by_stream.setdefault(labels["stream"], []).append((le, value))
        for stream, buckets in by_stream.items():
            buckets.sort()
            values = [v for _, v in buckets]
            if values != sorted(values) or buckets[-1][0] != float("inf"):
                raise TestFailure("/metrics: %s's latency buckets are not "
                                  "cumulative up to +Inf: %r" %
                                  (stream, buckets))
            if buckets[-1][1] != counts.get(stream):
                raise TestFailure("/metrics: %s: +Inf bucket %r != count %r"
                                  % (stream, buckets[-1][1],
                                     counts.get(stream)))
        if counts.get("cam", 0) <= 0:
            raise TestFailure("/metrics: no inference counted for cam")
        reasons = {x[1]["reason"] for x in
                   family("lensd_frames_dropped_total", ("stream", "reason"))}
        if len(reasons) < 2:
            raise TestFailure("/metrics: dropped reasons %r" % reasons)
        family("lensd_stream_reconnects_total")
        states = family("lensd_stream_state", ("stream", "state"))
        for stream in {x[1]["stream"] for x in states}:
            on = [x[1]["state"] for x in states
                  if x[1]["stream"] == stream and x[2] == 1]
            if len(on) != 1:
                raise TestFailure("/metrics: %s in states %r" % (stream, on))
        if not any(x[1]["le"] == "+Inf" for x in samples
                   if x[0] == "lensd_inference_seconds_bucket"):
            raise TestFailure("/metrics: no le=\"+Inf\" bucket")
        routes = family("lensd_http_requests_total", ("route", "code"))
        if not any(x[1]["code"] == "200" and x[2] > 0 for x in routes):
            raise TestFailure("/metrics: no HTTP 200 counted: %r" % routes)
        for name, labels, value in samples:
            if name.endswith("_total") and value < 0:
                raise TestFailure("counter %s %r negative" % (name, labels))
        streams = {x[1]["stream"] for x in samples if "stream" in x[1]}
        if not {"cam", "office"} <= streams:
            raise TestFailure("/metrics: streams %r, expected cam and office"
                              % streams)

    def check_add_remove(self):
        status, _, body = self.lensd.request(
            "POST", "/api/v1/streams",
            {"name": "posted", "pipeline": TICK_PIPELINE})
        if status not in (200, 201):
            raise TestFailure("POST /api/v1/streams: expected 201, got %d: %r"
                              % (status, body[:300]))
        if "posted" not in self.lensd.streams():
            raise TestFailure("posted stream not in the list")
        status, _, _ = self.lensd.request(
            "POST", "/api/v1/streams",
            {"name": "posted", "pipeline": TICK_PIPELINE})
        if status != 409:
            raise TestFailure("POST of an existing name: expected 409, got %d"
                              % status)
        self.wait_streaming("posted", 60)
        wait_until("a frame from the posted stream",
                   lambda: self.lensd.seq("posted") > 0, 60)
        status, _, body = self.lensd.request("DELETE",
                                             "/api/v1/streams/posted")
        if status not in (200, 204):
            raise TestFailure("DELETE /api/v1/streams/posted: expected 204, "
                              "got %d: %r" % (status, body[:300]))
        if "posted" in self.lensd.streams():
            raise TestFailure("deleted stream still in the list")
        status, _, body = self.lensd.get("/api/v1/streams/posted")
        if status != 404:
            raise TestFailure("GET of a deleted stream: expected 404, got %d"
                              % status)
        err = json.loads(body)
        if "error" not in err:
            raise TestFailure("404 body is not an error document: %r" % err)

    def check_errors(self):
        """Errors are JSON {"error", "detail"} with their codes."""
        cases = [
            ("GET", "/api/v1/streams/nope/detections", None, 404),
            ("GET", "/no/such/route", None, 404),
            ("PUT", "/api/v1/streams", b"{}", 405),
            ("DELETE", "/api/v1/info", None, 405),
            ("GET", "/api/v1/streams/cam/detections?wait=soon", None, 400),
            ("GET", "/api/v1/streams/cam/heatmap.png?kind=nope", None, 400),
            ("POST", "/api/v1/streams", b"{not json", 400),
            ("POST", "/api/v1/streams", {"name": "bad/name",
                                         "pipeline": TICK_PIPELINE}, 400),
            ("POST", "/api/v1/streams", {"name": "x", "uri": "gopher://h/"},
             400),
            ("POST", "/api/v1/streams", b"{\"name\":\"" + b"a" * 200000 +
             b"\"}", 413),
        ]
        for method, path, body, expected in cases:
            status, headers, data = self.lensd.request(method, path, body)
            if status != expected:
                raise TestFailure("%s %s: expected %d, got %d: %r" %
                                  (method, path, expected, status,
                                   data[:200]))
            doc = json.loads(data)
            if not isinstance(doc.get("error"), str) or "detail" not in doc:
                raise TestFailure("%s %s: not an error document: %r" %
                                  (method, path, doc))
        if "x" in self.lensd.streams():
            raise TestFailure("a refused POST added a stream")

    def stream_counter(self, name, key):
        value = find_key(self.lensd.stream(name), key)
        if value is None:
            raise TestFailure("stream %s has no %r: %r" %
                              (name, key, self.lensd.stream(name)))
        return value

    def check_rtsp_restart(self):
        self.wait_streaming("cam", 60)
        office_seq = self.lensd.seq("office")
        reconnects = self.stream_counter("cam", "reconnects")
        port = self.rtsp_port
        log("killing the RTSP server (port %d)" % port)
        self.rtsp.kill()
        left = wait_until("cam to leave streaming",
                          lambda: (lambda s: s != "streaming" and s)(
                              self.lensd.state("cam")), 60)
        log("cam is %s" % left)
        if left not in ("connecting", "backoff"):
            raise TestFailure("cam went to %r, expected backoff or "
                              "connecting" % left)
        # the other stream does not notice
        before = self.lensd.seq("office")
        wait_until("office's seq to keep increasing while cam is down",
                   lambda: self.lensd.seq("office") > before + 2, 30)
        if before < office_seq or self.lensd.state("office") != "streaming":
            raise TestFailure("office disturbed by cam's failure: seq %d -> "
                              "%d, state %s" % (office_seq, before,
                                                self.lensd.state("office")))
        self.start_rtsp(port)
        t0 = time.monotonic()
        wait_until("cam back to streaming within 10 s",
                   lambda: self.lensd.state("cam") == "streaming", 10)
        log("cam streaming again after %.1f s" % (time.monotonic() - t0))
        seq = self.lensd.seq("cam")
        wait_until("new frames from cam", lambda: self.lensd.seq("cam") > seq,
                   30)
        after = self.stream_counter("cam", "reconnects")
        if after <= reconnects:
            raise TestFailure("cam's reconnects %r -> %r: expected it to grow"
                              % (reconnects, after))

    def check_reload(self):
        office_reconnects = self.stream_counter("office", "reconnects")
        office_seq = self.lensd.seq("office")
        text = write_config(
            self.config_path, self.port, self.shared,
            self.streams_config(with_cam=False,
                                extra=[("tick", {"pipeline": TICK_PIPELINE})]))
        log("reloading with:\n" + text)
        self.lensd.signal(signal.SIGHUP)
        wait_until("tick added and cam removed by the reload",
                   lambda: (lambda s: "tick" in s and "cam" not in s)(
                       self.lensd.streams()), 30)
        self.wait_streaming("tick", 60)
        wait_until("a frame from tick", lambda: self.lensd.seq("tick") > 0, 60)
        wait_until("office's seq to keep counting",
                   lambda: self.lensd.seq("office") > office_seq + 2, 30)
        if self.lensd.seq("office") < office_seq:
            raise TestFailure("office restarted: seq went back")
        after = self.stream_counter("office", "reconnects")
        if after != office_reconnects:
            raise TestFailure("office was touched by the reload: reconnects "
                              "%r -> %r" % (office_reconnects, after))
        if self.lensd.state("office") != "streaming":
            raise TestFailure("office not streaming after the reload")
        if not self.lensd.ready():
            raise TestFailure("not ready after the reload")

    def check_sigterm(self):
        self.lensd.signal(signal.SIGTERM)
        t0 = time.monotonic()
        code = self.lensd.wait(5)
        if code is None:
            raise TestFailure("lensd still running 5 s after SIGTERM")
        log("lensd exited %d after %.1f s" % (code, time.monotonic() - t0))
        if code != 0:
            raise TestFailure("lensd exited %d after SIGTERM, expected 0" %
                              code)

    def check_no_criticals(self):
        found = criticals(self.lensd)
        if found:
            raise TestFailure("lensd logged criticals or warnings:\n" +
                              "\n".join(found[:20]))

    def main(self):
        c = self.checks
        try:
            if not (c.run("start the RTSP server", self.start_rtsp) and
                    c.run("start lensd", self.start_lensd)):
                return c.finish()
            c.run("streams listed, info", self.check_streams_listed)
            c.run("persons detected on the RTSP stream",
                  self.check_persons_detected)
            c.run("the file stream runs", self.check_file_stream)
            c.run("heatmap.png sizes", self.check_heatmap)
            c.run("snapshot.jpg", self.check_snapshot)
            c.run("mjpeg: 3 JPEG parts", self.check_mjpeg)
            c.run("events: SSE", self.check_events)
            c.run("metrics parse", self.check_metrics)
            c.run("add and remove a stream", self.check_add_remove)
            c.run("errors: JSON and codes", self.check_errors)
            c.run("RTSP server killed and restarted", self.check_rtsp_restart)
            c.run("SIGHUP reload", self.check_reload)
            c.run("SIGTERM exits 0 within 5 s", self.check_sigterm)
            c.run("no GLib criticals or warnings from lensd",
                  self.check_no_criticals)
            return c.finish()
        finally:
            c.cleanup(self.workdir, self.args.keep)


if __name__ == "__main__":
    main(Integration, __doc__)
