"""The processes the chart describes, run as the chart runs them, behave as one.

Two web processes, two workers and beat, each started through the container's entry point
(``bin/herald-process NAME``, the Procfile's line) against one PostgreSQL database and one Redis,
with a second beat for the overlap the chart's ``Recreate`` strategy should prevent and the beat
lease makes safe. Each test kills something; each starts again whatever it needs that an earlier
one killed.

Shorter timings than shipped, for every process alike, so that recoveries take seconds: the
email lease (4 s) and sweep (1 s), beat's lease (3 s) and the periodic jobs' intervals (1 and
2 s). ``test_email_recovery.py`` proves the shipped email lease and sweep; the beat lease's
bound is the same arithmetic at any length. Each worker sends to an SMTP sink of its own, so a
test knows which worker holds the message it is holding.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.client import HTTPException
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import tenant_context

from herald.beat import lease_name
from herald.redisio import shared_redis
from notifications.models import Notification, Send
from tests.notifications.test_realtime import Live, frame, new_user
from tests.support.processes import (
    HttpResult,
    Process,
    Server,
    free_port,
    http,
    scrape_metrics,
    start_process,
    wait_until,
)
from tests.support.smtp import SmtpSink, smtp_sink

BEAT_LEASE = 3.0
FOLLOWER_TICK = min(1.0, BEAT_LEASE / 10)  # herald.beat.LeaderScheduler
INTERVALS = {  # seconds, every periodic job
    "release-due-sends": 1.0,
    "sweep-deliveries": 1.0,
    "close-due-digests": 1.0,
    "rollup-usage": 2.0,
    "fill-spare-schemas": 2.0,
}
SHORT = {
    "BEAT_LEASE_SECONDS": str(BEAT_LEASE),
    "BEAT_INTERVALS": ",".join(
        f"{job}={seconds}" for job, seconds in INTERVALS.items() if job != "sweep-deliveries"
    ),
    "EMAIL_SWEEP_SECONDS": str(INTERVALS["sweep-deliveries"]),
    "DELIVERY_LEASE_SECONDS": "4",
    "DELIVERY_BATCH_SIZE": "10",
    # One turn per tenant: one worker child at a time sends a tenant's email, so holding a
    # message in one worker's sink leaves no other message of that worker half-recorded.
    "EMAIL_TENANT_CONCURRENCY": "1",
}
PROCESSES = ("web1", "web2", "worker1", "worker2", "beat1", "beat2")


class Topology:
    """The processes by name (``web1``, ``worker2``, ``beat1``...), started and restarted."""

    def __init__(self, directory: Path, sinks: dict[str, SmtpSink]) -> None:
        self.directory, self.sinks = directory, sinks
        self.ports = {name: free_port() for name in PROCESSES if not name.startswith("beat")}
        self.processes: dict[str, Process] = {}
        self._starts: Counter[str] = Counter()

    def ensure(self, *names: str) -> None:
        """Start whichever of ``names`` is not running, and wait until each answers."""
        for name in names:
            if name not in self.processes or not self.processes[name].alive():
                self._start(name)
        wait_until(lambda: all(self._ready(n) for n in names), timeout=90, what=f"{names}")

    def web(self, name: str) -> Server:
        port = self.ports[name]
        return Server(url=f"http://127.0.0.1:{port}", port=port, process=self.processes[name].popen)

    def leader(self) -> str | None:
        """The beat that holds the lease now, by the pid in its token."""
        token = shared_redis().get(lease_name())
        pid = int(token.decode().split(":")[1]) if token else None
        beats = ("beat1", "beat2")
        return next(
            (b for b in beats if b in self.processes and self.processes[b].pid == pid), None
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()

    def _start(self, name: str) -> None:
        if name in self.processes:
            self.processes[name].stop()
        kind, env = name.rstrip("12"), dict(SHORT)
        self._starts[name] += 1
        if kind == "web":
            env["PORT"] = str(self.ports[name])
        elif kind == "worker":  # a metrics directory per start, as a new pod gets an emptyDir
            metrics = self.directory / f"{name}-metrics-{self._starts[name]}"
            metrics.mkdir()
            env.update(
                METRICS_PORT=str(self.ports[name]),
                PROMETHEUS_MULTIPROC_DIR=str(metrics),
                EMAIL_URL=self.sinks[name].url,
            )
        else:  # the schedule file outlives a restart, as in the pod's emptyDir
            env["CELERY_BEAT_SCHEDULE"] = str(self.directory / f"{name}.schedule")
        self.processes[name] = start_process(kind, **env)

    def _ready(self, name: str) -> bool:
        process = self.processes[name]
        if not process.alive():
            raise RuntimeError(f"{name} exited: {process.log()[-3000:]}")
        if name.startswith("web"):
            try:
                return self.web(name).get("/healthz").status == 200
            except OSError:
                return False
        if name.startswith("worker"):
            return scrape_metrics(self.ports[name]) is not None
        return "beat: leading" in process.log() or "beat: following" in process.log()


@pytest.fixture(scope="module")
def topology(world, tmp_path_factory) -> Iterator[Topology]:
    with smtp_sink(delay=0.02) as one, smtp_sink(delay=0.02) as two:
        topology = Topology(tmp_path_factory.mktemp("topology"), {"worker1": one, "worker2": two})
        try:
            started = time.monotonic()
            topology.ensure(*PROCESSES)
            print(f"\nsix processes up in {time.monotonic() - started:.1f} s")
            yield topology
        finally:
            topology.stop()
            shared_redis().delete(lease_name())  # a killed beat's


def api(topology: Topology, name: str, world) -> Live:
    return Live(topology.web(name), world.alice.host, world.alice.api_key)


# --- a. One bus -----------------------------------------------------------------------------


def test_a_send_through_one_web_process_reaches_a_websocket_on_the_other(topology, world):
    topology.ensure("web1", "web2")
    one, two = api(topology, "web1", world), api(topology, "web2", world)
    user = new_user()
    token = one.token(user)
    with two.socket(token) as ws:
        assert frame(ws) == {"type": "unread_count", "count": 0}
        one.send(user, "sent through web 1")
        pushed = frame(ws)
        assert frame(ws) == {"type": "unread_count", "count": 1}
    assert pushed["type"] == "notification"
    assert pushed["notification"]["message"] == "sent through web 1"
    assert one.inbox_ids(token) == [pushed["notification"]["id"]]


# --- d. Two beats ---------------------------------------------------------------------------


def runs(topology: Topology) -> Counter[str]:
    """How many times each periodic job has run, from both workers' task counters."""
    tasks = {entry["task"]: job for job, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    counted: Counter[str] = Counter()
    for worker in ("worker1", "worker2"):
        samples = scrape_metrics(topology.ports[worker])
        assert samples is not None, topology.processes[worker].log()[-3000:]
        for (name, labels), value in samples.items():
            task = dict(labels).get("task")
            if name == "herald_celery_tasks_total" and task in tasks:
                counted[tasks[task]] += int(value)
    return counted


def assert_each_job_runs_once_per_interval(topology: Topology) -> None:
    """Time each job's next few runs (6 of a 1 s job, 4 of a 2 s one): n runs take between
    n - 1 and n intervals, give or take a second of worker lag. A job sent by two beats would
    take half that."""
    wanted = {job: 6 if interval == 1 else 4 for job, interval in INTERVALS.items()}
    before, started = runs(topology), time.monotonic()
    took: dict[str, float] = {}

    def all_counted() -> bool:
        now, ran = time.monotonic(), runs(topology)
        for job, count in wanted.items():
            if job not in took and ran[job] - before[job] >= count:
                took[job] = now - started
        return len(took) == len(wanted)

    wait_until(all_counted, timeout=30, interval=0.1, what="the periodic jobs to run")
    for job, seconds in took.items():
        interval = INTERVALS[job]
        low, high = (wanted[job] - 1) * interval - 1, wanted[job] * interval + 2
        assert low <= seconds <= high, (job, f"{wanted[job]} runs in {seconds:.1f} s", took)


def ran_since(topology: Topology, before: Counter[str]) -> bool:
    ran = runs(topology)
    return all(ran[job] > before[job] for job in INTERVALS)


def test_two_beats_run_each_periodic_job_once_and_one_takes_over_from_the_other(topology):
    """Both beats run all along. The leader is then stopped (SIGSTOP) past its lease, which the
    other takes over; woken, the old leader sends nothing. Then the new leader is killed and
    the old one takes over again."""
    assert set(INTERVALS) == set(settings.CELERY_BEAT_SCHEDULE)  # a new job must be idempotent
    topology.ensure("worker1", "worker2", "beat1", "beat2")
    wait_until(topology.leader, timeout=10, what="a leader")
    assert_each_job_runs_once_per_interval(topology)

    first = topology.leader()
    second = "beat2" if first == "beat1" else "beat1"
    stalled = topology.processes[first]
    followed = stalled.log().count("beat: following")
    before = runs(topology)
    os.killpg(stalled.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        wait_until(lambda: topology.leader() == second, timeout=30, what="the other beat to lead")
        stall_takeover = time.monotonic() - stopped_at
        wait_until(lambda: ran_since(topology, before), timeout=10, what="every job to run")
    finally:
        os.killpg(stalled.pid, signal.SIGCONT)
    wait_until(lambda: stalled.log().count("beat: following") > followed, timeout=10)
    assert_each_job_runs_once_per_interval(topology)  # the woken beat sends nothing
    assert topology.leader() == second

    before = runs(topology)
    topology.processes[second].kill()
    killed_at = time.monotonic()
    wait_until(lambda: topology.leader() == first, timeout=30, what="the first beat to lead")
    kill_takeover = time.monotonic() - killed_at
    wait_until(lambda: ran_since(topology, before), timeout=10, what="every job to run")

    print(f"\ntakeover {stall_takeover:.1f} s after a stall, {kill_takeover:.1f} s after a kill")
    bound = BEAT_LEASE + FOLLOWER_TICK + 1.5  # the last renewal was up to a tick before
    assert stall_takeover <= bound
    assert kill_takeover <= bound


# --- b. A web process killed ------------------------------------------------------------------


def test_a_web_process_killed_under_a_stream_of_sends_loses_no_accepted_send(
    topology, world, committed
):
    """Three clients send to web 1 without pause; web 1 is killed (SIGKILL) mid-stream. A
    request that fails with a connection error may or may not have committed, so the client
    sends it again to web 2 with the same Idempotency-Key. Every send answered 202 exists
    afterwards once, under the id it was answered with, with all its notifications."""
    topology.ensure("web1", "web2")
    kind = f"stream-{uuid.uuid4().hex[:8]}"
    api(topology, "web2", world).call("PUT", f"/api/v1/types/{kind}", {"name": "Stream"})
    answered: dict[str, tuple[str, dict[str, Any], HttpResult]] = {}  # key -> web, body, answer
    retried: list[str] = []
    errors: list[BaseException] = []
    lock, stop = threading.Lock(), threading.Event()

    def post(web: str, key: str, body: dict[str, Any]) -> HttpResult:
        server = topology.web(web)
        headers = {
            "Host": f"{world.alice.host}:{server.port}",
            "Authorization": f"Bearer {world.alice.api_key}",
            "Idempotency-Key": key,
        }
        return http("POST", f"{server.url}/api/v1/notifications", headers=headers, body=body)

    def client() -> None:
        try:
            stream()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def stream() -> None:
        web = "web1"
        while not stop.is_set():
            key = uuid.uuid4().hex
            recipients = [f"{key[:12]}-{n}" for n in range(3)]
            body = {"type": kind, "recipients": recipients, "message": key}
            try:
                result = post(web, key, body)
            except (OSError, HTTPException):  # not accepted, as far as we know
                web = "web2"
                with lock:
                    retried.append(key)
                result = post(web, key, body)
            with lock:
                answered[key] = (web, body, result)
                if len(answered) >= 60:
                    stop.set()

    def accepted_by(web: str) -> int:
        with lock:
            return sum(1 for name, _, result in answered.values() if name == web)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: accepted_by("web1") >= 15, timeout=30, what="sends through web 1")
        killed_at = timezone.now()  # web 1 commits nothing later
        topology.processes["web1"].kill()
        wait_until(stop.is_set, timeout=60, what="the stream to end")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    assert not errors, errors
    statuses = Counter(result.status for _, _, result in answered.values())
    assert statuses == {202: len(answered)}, statuses
    assert retried, "no request was cut off"
    assert accepted_by("web1") >= 15
    assert accepted_by("web2") >= 1
    with tenant_context(world.tenant_a):
        sends = {s.idempotency_key: s for s in Send.objects.filter(idempotency_key__in=answered)}
        notifications = dict(
            Notification.objects.filter(send__in=sends.values())
            .values_list("send")
            .annotate(n=Count("id"))
        )
        recipients: dict[int, set[str]] = {}
        for send_id, external_id in Notification.objects.filter(
            send__in=sends.values()
        ).values_list("send", "recipient__external_id"):
            recipients.setdefault(send_id, set()).add(external_id)
    for key, (_, body, result) in answered.items():
        send = sends[key]
        assert send.pk == result.body["id"]
        assert notifications[send.pk] == 3
        assert recipients[send.pk] == set(body["recipients"])
    web2 = api(topology, "web2", world)
    for key in retried:  # answered by web 2, whether web 1 had committed it or not
        assert web2.call("GET", f"/api/v1/sends/{sends[key].pk}")["recipients"] == 3
    unanswered = sum(1 for key in retried if sends[key].created_at < killed_at)
    print(f"\n{len(answered)} sends; {len(retried)} cut off and sent again to web 2, which "
          f"replayed {unanswered} that web 1 had committed")  # fmt: skip


# --- c. A worker killed -------------------------------------------------------------------


def test_a_worker_killed_mid_batch_loses_and_duplicates_no_email(topology, world):
    """Worker 1 dies (SIGKILL, its whole process group) while its sink holds a message before
    the 250 reply, so that message was never accepted. Worker 2 goes on, and once worker 1's
    lease on its claimed rows and the tenant's turn lapses, the sweep gives the tenant a turn
    and worker 2 sends the rest. Each recipient gets exactly one email."""
    topology.ensure("web2", "worker1", "worker2", "beat1")
    web2 = api(topology, "web2", world)
    kind = f"mail-{uuid.uuid4().hex[:8]}"
    web2.call("PUT", f"/api/v1/types/{kind}", {"name": "Mail", "channels": ["in_app", "email"]})
    prefix = uuid.uuid4().hex[:8]
    addresses = [f"topo-{prefix}-{n}@example.com" for n in range(120)]
    wanted = set(addresses)
    one, two = topology.sinks["worker1"], topology.sinks["worker2"]

    def ours(sink: SmtpSink) -> list[str]:
        return sink.addressed(wanted)

    recipients = [{"id": a.split("@")[0], "email": a} for a in addresses]
    body = {"type": kind, "recipients": recipients, "message": "hello"}
    send_id = web2.call("POST", "/api/v1/notifications", body)["id"]
    wait_until(lambda: len(ours(one)) >= 2, timeout=60, what="worker 1 to send some")
    one.hold_next_message()
    wait_until(one.held.is_set, timeout=60, what="worker 1 in the middle of a message")
    topology.processes["worker1"].kill()
    killed_at = time.monotonic()
    sent_by_one = len(ours(one))

    def all_sent() -> bool:
        summary = web2.call("GET", f"/api/v1/sends/{send_id}")["channels"]["email"]
        return summary == {"sent": len(addresses)}

    wait_until(all_sent, timeout=60, interval=0.3, what="every email")
    print(
        f"\nworker 1 killed after {sent_by_one}; all out {time.monotonic() - killed_at:.1f} s later"
    )
    assert len(ours(one)) == sent_by_one
    assert Counter(ours(one) + ours(two)) == dict.fromkeys(addresses, 1)
