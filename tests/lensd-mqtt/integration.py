#!/usr/bin/env python3
"""integration.py: issue 8's acceptance test (Python 3 standard library
only). One Mosquitto broker on a free loopback port, two lensd instances
("alpha" and "beta", each its own configuration with a moving-ball test
stream in motion mode), and mosquitto_sub as the consumer:

- the subscriber sees both instances' detections on
  lens-it/<instance>/ball/detections, valid JSON, and their retained
  status and state;
- the broker goes away while both keep inferring, and comes back: both
  reconnect within 10 s (lensd_mqtt_connected in /metrics), and once the
  streams are stopped, the frames that never arrived are exactly those
  /metrics counts as dropped (and the others arrived: as many as
  /metrics counts as published);
- the broker is killed (SIGKILL) and restarted at once: both reconnect
  within 10 s by their own backoff;
- SIGKILL of an instance brings its last will, "offline"; SIGTERM of the
  other publishes "offline" itself and exits 0.

The subscriber's session is persistent (qos 1) and the broker saves it
when it goes away, so the subscriber gets what the instances deliver
whenever it reconnects itself: what it received is what they delivered.
"""

import argparse
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

# the end-to-end tests' helpers (tests/lensd/lensdtest.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lensd"))
import lensdtest  # noqa: E402
from lensdtest import TestFailure, free_port, log  # noqa: E402

SKIP = 77
MOSQUITTO = "/usr/sbin/mosquitto"
PREFIX = "lens-it"
INSTANCES = ("alpha", "beta")
QUEUE_SIZE = 5
RECONNECT_S = 10.0      # what the issue asks of a reconnection
WAIT_S = 120.0          # a bound on things that must happen, not a measure


def wait_until(what, predicate, timeout=WAIT_S, interval=0.1):
    return lensdtest.wait_until(what, predicate, timeout, interval)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Broker:
    """mosquitto on a free loopback port, its files in @workdir."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "broker")
        os.mkdir(self.dir)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.log = os.path.join(self.dir, "mosquitto.log")
        self.proc = None
        self.port = None

    def _write_conf(self):
        with open(self.conf, "w") as f:
            # mosquitto started as root switches to this user
            f.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name +
                    "listener %d 127.0.0.1\n" % self.port +
                    "allow_anonymous true\n"
                    "log_dest file %s\n" % self.log +
                    "persistence true\n"
                    "persistence_location %s/\n" % self.dir +
                    "queue_qos0_messages true\n"
                    "max_queued_messages 0\n")

    def start(self):
        """The first time on a free port (another one if that was taken
        before mosquitto could bind it); then on the same port again."""
        for _ in range(5):
            if self.port is None:
                self.port = free_port()
                self._write_conf()
                first = True
            else:
                first = False
            if self._try_start():
                return
            if not first:
                raise TestFailure("port %d was taken while the broker was "
                                  "away" % self.port)
            self.port = None
        raise TestFailure("no free port for the broker")

    def _try_start(self):
        offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def since_start():
            try:
                with open(self.log, "rb") as f:
                    f.seek(offset)
                    return f.read()
            except OSError:
                return b""

        def listening():
            if self.proc.poll() is not None:
                if b"Address already in use" in since_start():
                    return "taken"
                raise TestFailure("mosquitto exited with %d; log:\n%s" % (
                    self.proc.returncode, self.log_text()))
            # its own "running" line: a port that accepts could be another
            # test's that picked the same free port
            if b" running" not in since_start():
                return False
            return port_accepts(self.port)
        if wait_until("mosquitto to listen", listening) == "taken":
            self.proc = None
            return False
        return True

    def kill(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=WAIT_S)
        self.proc = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return "(no log)"


class Subscriber:
    """mosquitto_sub on PREFIX/#, qos 1, a persistent session; the messages
    as (retained, topic, payload) in arrival order."""

    def __init__(self, broker, workdir):
        self.err = open(os.path.join(workdir, "mosquitto_sub.stderr"), "wb")
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto_sub"), "-h", "127.0.0.1",
             "-p", str(broker.port), "-i", "lensd-it-subscriber", "-c",
             "-q", "1", "-t", PREFIX + "/#", "-F", "%r %t %p"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.err)
        self.lock = threading.Lock()
        self.messages = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            parts = raw.decode("utf-8", "replace").rstrip("\n").split(" ", 2)
            if len(parts) < 3:
                parts.append("")
            with self.lock:
                self.messages.append((parts[0] == "1", parts[1], parts[2]))

    def payloads(self, topic):
        with self.lock:
            return [p for _, t, p in self.messages if t == topic]

    def last(self, topic):
        found = self.payloads(topic)
        return found[-1] if found else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.err.close()


class Lensd:
    def __init__(self, args, workdir, name, broker):
        self.name = name
        self.port = free_port()
        self.config = os.path.join(workdir, name + ".conf")
        with open(self.config, "w") as f:
            f.write("[server]\nlisten=127.0.0.1:%d\n\n" % self.port +
                    "[stream ball]\n"
                    # 320x240 at 30 fps
                    "pipeline=videotestsrc pattern=ball is-live=true\n\n"
                    "[mqtt]\nhost=127.0.0.1\nport=%d\n" % broker.port +
                    "instance=%s\nclient-id=lensd-it-%s\n" % (name, name) +
                    "topic-prefix=%s\nqos=1\nkeepalive=5\n" % PREFIX +
                    "queue-size=%d\n" % QUEUE_SIZE)
        self.err_path = os.path.join(workdir, name + ".stderr")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([args.lensd, "--config", self.config],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)

    def request(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("lensd %s exited with %d" % (
                    self.name, self.proc.returncode))
            return self.request("GET", "/readyz")[0] == 200
        wait_until("lensd %s to be ready" % self.name, ready, 300, 0.5)

    def mqtt_metrics(self):
        """The lensd_mqtt_* samples of /metrics."""
        status, body = self.request("GET", "/metrics")
        if status != 200:
            raise TestFailure("GET /metrics of %s: %d" % (self.name, status))
        samples = {}
        for line in body.decode().splitlines():
            if line.startswith("lensd_mqtt_"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        for name in ("lensd_mqtt_published_total", "lensd_mqtt_dropped_total",
                     "lensd_mqtt_queued", "lensd_mqtt_connected",
                     "lensd_mqtt_reconnects_total"):
            if name not in samples:
                raise TestFailure("%s: no %s in /metrics" % (self.name, name))
        return samples

    def stderr_tail(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.err.close()


def topic(instance, *levels):
    return "/".join((PREFIX, instance) + levels)


def check_detections(sub):
    for name in INSTANCES:
        t = topic(name, "ball", "detections")
        wait_until("3 detections on %s" % t,
                   lambda: len(sub.payloads(t)) >= 3)
        for payload in sub.payloads(t)[:3]:
            try:
                doc = json.loads(payload)
            except ValueError as e:
                raise TestFailure("%s: not JSON (%s): %r" % (t, e, payload))
            if not isinstance(doc, dict) or doc.get("stream") != "ball":
                raise TestFailure("%s: expected stream \"ball\": %r" % (
                    t, payload))
            if not isinstance(doc.get("seq"), int) or not isinstance(
                    doc.get("detections"), list):
                raise TestFailure("%s: expected seq and detections: %r" % (
                    t, payload))
            if doc.get("frame", {}).get("width") != 320:
                raise TestFailure("%s: expected a 320 pixel wide frame: %r"
                                  % (t, payload))
            if doc.get("model", {}).get("name") != "motion":
                raise TestFailure("%s: expected motion mode: %r" % (
                    t, payload))
        wait_until("%s online" % name,
                   lambda: sub.last(topic(name, "status")) == "online")
        wait_until("%s's ball streaming" % name,
                   lambda: sub.last(topic(name, "ball", "state"))
                   == "streaming")
    # one instance's topics carry only its own stream
    for name in INSTANCES:
        for payload in sub.payloads(topic(name, "ball", "detections")):
            if json.loads(payload).get("stream") != "ball":
                raise TestFailure("a stranger on %s" % name)


def probe_subscriber(broker, sub, payload):
    """Waits until @sub gets @payload on PREFIX/probe, published (qos 1)
    until it does: it is subscribed, or back on its persistent session."""
    def probe():
        subprocess.run([shutil.which("mosquitto_pub"), "-h", "127.0.0.1",
                        "-p", str(broker.port), "-t", PREFIX + "/probe",
                        "-m", payload, "-q", "1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return payload in sub.payloads(PREFIX + "/probe")
    wait_until("the subscriber to get %r" % payload, probe, interval=0.5)


def wait_reconnected(instances, since, what):
    for d in instances:
        wait_until("%s to reconnect within %g s %s" % (d.name, RECONNECT_S,
                                                      what),
                   lambda: d.mqtt_metrics()["lensd_mqtt_connected"] == 1,
                   max(0.1, since + RECONNECT_S - time.monotonic()))
        log("%s reconnected %.1f s %s" % (d.name, time.monotonic() - since,
                                           what))


def check_outage_queues(broker, sub, instances):
    """The broker goes away (SIGTERM: it saves the subscriber's session)
    while both instances keep inferring; their queues overflow. The
    instances are frozen (SIGSTOP) while the broker comes back and the
    subscriber resumes its session, so that nothing they send meets a
    session in the middle of its takeover (Mosquitto 2.0.11 can lose a
    message there), then they go on and reconnect."""
    broker.kill(signal.SIGTERM)
    for d in instances:
        wait_until("%s to notice the broker is gone" % d.name,
                   lambda: d.mqtt_metrics()["lensd_mqtt_connected"] == 0)
    # long enough for the queues (5 messages, 30 fps) to overflow
    time.sleep(2)
    for d in instances:
        d.proc.send_signal(signal.SIGSTOP)
    try:
        broker.start()
        probe_subscriber(broker, sub, "after-outage")
    finally:
        for d in instances:
            d.proc.send_signal(signal.SIGCONT)
    wait_reconnected(instances, time.monotonic(), "after SIGCONT")


def check_broker_restart(broker, instances):
    """Killed (SIGKILL) and restarted at once, the instances running: both
    back within 10 s, by their own backoff."""
    before = {d.name: d.mqtt_metrics()["lensd_mqtt_reconnects_total"]
              for d in instances}
    broker.kill(signal.SIGKILL)
    for d in instances:
        wait_until("%s to notice the broker is gone" % d.name,
                   lambda: d.mqtt_metrics()["lensd_mqtt_connected"] == 0)
    broker.start()
    wait_reconnected(instances, time.monotonic(), "after the restart")
    for d in instances:
        if d.mqtt_metrics()["lensd_mqtt_reconnects_total"] != \
                before[d.name] + 1:
            raise TestFailure("%s: expected one more reconnection counted"
                              % d.name)


def check_loss_accounting(sub, instances):
    for d in instances:
        status, body = d.request("DELETE", "/api/v1/streams/ball")
        if status not in (200, 204):
            raise TestFailure("DELETE ball of %s: %d %r" % (d.name, status,
                                                           body[:200]))
    for d in instances:
        t = topic(d.name, "ball", "detections")
        wait_until("%s's queue to drain" % d.name,
                   lambda: d.mqtt_metrics()["lensd_mqtt_queued"] == 0)
        m = d.mqtt_metrics()
        published = int(m["lensd_mqtt_published_total"])
        dropped = int(m["lensd_mqtt_dropped_total"])

        def seqs():
            return {json.loads(p)["seq"] for p in sub.payloads(t)}
        try:
            wait_until("the %d messages %s published" % (published,
                                                         d.name),
                       lambda: len(seqs()) >= published, 60)
        except TestFailure as e:
            got = sorted(seqs())
            raise TestFailure("%s; %d distinct received: %s; %d dropped" % (
                e, len(got), got, dropped))
        got = seqs()
        last = max(got)
        missing = sorted(set(range(1, last + 1)) - got)
        log("%s: frames 1..%d, %d received, %d missing, %d dropped by the "
            "queue" % (d.name, last, len(got), len(missing), dropped))
        if len(got) != published:
            raise TestFailure("%s: %d distinct frames received, /metrics "
                              "says %d published" % (d.name, len(got),
                                                     published))
        if dropped == 0:
            raise TestFailure("%s: expected the outage to overflow the "
                              "queue of %d" % (d.name, QUEUE_SIZE))
        if len(missing) != dropped:
            raise TestFailure("%s: %d frames never arrived (%s...), /metrics "
                              "says %d dropped" % (d.name, len(missing),
                                                   missing[:10], dropped))


def check_last_will(sub, instances):
    alpha, beta = instances
    # after the broker's restart, beta's "online" may still be on its way
    wait_until("beta online before the kill",
               lambda: sub.last(topic(beta.name, "status")) == "online", 20)
    beta.proc.send_signal(signal.SIGKILL)
    beta.proc.wait(timeout=30)
    wait_until("beta's last will", lambda: sub.last(topic(beta.name,
                                                          "status"))
               == "offline")
    if sub.last(topic(alpha.name, "status")) != "online":
        raise TestFailure("expected alpha still online")
    alpha.proc.send_signal(signal.SIGTERM)
    code = alpha.proc.wait(timeout=30)
    if code != 0:
        raise TestFailure("alpha: SIGTERM gave exit code %d" % code)
    wait_until("alpha's own \"offline\"", lambda: sub.last(topic(
        alpha.name, "status")) == "offline")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lensd", required=True)
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory")
    args = parser.parse_args()

    for path in (MOSQUITTO, shutil.which("mosquitto_sub") or ""):
        if not os.access(path, os.X_OK):
            log("SKIP: %s not found (Debian packages mosquitto and "
                "mosquitto-clients)" % (path or "mosquitto_sub"))
            return SKIP
    if not os.access(args.lensd, os.X_OK):
        raise SystemExit("no lensd at %s" % args.lensd)

    workdir = tempfile.mkdtemp(prefix="lensd-mqtt-it-")
    broker = Broker(workdir)
    broker.start()
    sub = Subscriber(broker, workdir)
    instances = []
    failures = []
    try:
        probe_subscriber(broker, sub, "before")

        instances = [Lensd(args, workdir, name, broker) for name in INSTANCES]
        for d in instances:
            d.wait_ready()
        for name, check, check_args in (
                ("detections from both instances", check_detections, (sub,)),
                ("broker away, queues overflow", check_outage_queues,
                 (broker, sub, instances)),
                ("loss is what the queue dropped", check_loss_accounting,
                 (sub, instances)),
                ("broker killed and restarted", check_broker_restart,
                 (broker, instances)),
                ("last will", check_last_will, (sub, instances))):
            log("--- " + name)
            start = time.monotonic()
            try:
                check(*check_args)
            except TestFailure as e:
                log("FAIL %s: %s" % (name, e))
                failures.append(name)
                break
            log("ok   %s (%.1f s)" % (name, time.monotonic() - start))
    finally:
        if failures:
            for d in instances:
                log("==== lensd %s stderr ====\n%s" % (d.name,
                                                        d.stderr_tail()))
            log("==== broker log ====\n%s" % broker.log_text())
        for d in instances:
            d.stop()
        sub.stop()
        if broker.proc is not None:
            broker.kill(signal.SIGKILL)
        if args.keep:
            log("kept " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
