"""The worker's metrics port: delivery outcomes and task outcomes of its prefork children."""

from __future__ import annotations

from pathlib import Path

from tests.notifications.email_support import QUEUE, email_type, send, settled, unique
from tests.support.processes import free_port, running_worker, scrape_metrics, wait_until
from tests.support.smtp import smtp_sink


def test_a_sent_email_is_counted_on_the_workers_metrics_port(alpha, tmp_path: Path):
    key = email_type(alpha)
    port = free_port()
    recipient = {"id": unique("user"), "email": f"{unique('m')}@example.com"}
    with (
        smtp_sink() as sink,
        running_worker(
            QUEUE,
            pool="prefork",
            EMAIL_URL=sink.url,
            METRICS_PORT=str(port),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        ),
    ):
        wait_until(lambda: scrape_metrics(port) is not None, timeout=30, what="the metrics port")
        send_id = send(alpha, key, [recipient])
        wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")

        def counted():
            samples = scrape_metrics(port) or {}
            sent = samples.get(
                ("herald_deliveries_total", (("channel", "email"), ("status", "sent")))
            )
            tasks = [
                value
                for (name, labels), value in samples.items()
                if name == "herald_celery_tasks_total" and ("outcome", "success") in labels
            ]
            turns = samples.get(("herald_turns_started_total", (("result", "run"),)), 0)
            return samples if sent == 1 and sum(tasks) >= 1 and turns >= 1 else None

        samples = wait_until(counted, timeout=15, what="counted outcomes")
        assert sink.messages

    labels = {value for (_, pairs) in samples for (_, value) in pairs}
    assert alpha.host.split(".")[0] not in labels  # no tenant slug as a label
    assert recipient["id"] not in labels
