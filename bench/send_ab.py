"""Sends through two checkouts of Herald at once, alternately, on one database: the before and
after of a change to the send path, measured in the same minutes.

    .venv/bin/python bench/send_ab.py OTHER_CHECKOUT [--rounds 40] [--recipients 10000]

``send_and_inbox.py`` judges each figure against a raw COPY in interleaved rounds, but two of
its runs, one per checkout, are minutes apart: on a shared machine the same code's figures move
by more than most changes do between such runs (a 10,000-recipient send's median 120 ms in one
minute, 170 ms a few minutes later). Here each checkout runs its own web process (the
Procfile's web command, from its directory, with its ``.venv`` if it has one) against the same
database and tenant, and the sends alternate between them, each pair in turn order swapped.
Printed per shape: both sides' p50 and best, and the median of the per-pair ratios
(this checkout's time over the other's: below 1 is faster).

The shapes: to ``--recipients`` existing users, to as many new users (bare ids; objects with a
locale each, to a type with five locales; objects with an email and a name each), and to one
existing user; ``--shapes`` picks some by the start of their labels.
This checkout migrates the database, so the other one must work with its schema (as the
release before an expand/contract change does). Throwaway database ``herald_bench_send``, as
``send_and_inbox.py``'s; its sends' Celery tasks and cache keys are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
from itertools import islice
from pathlib import Path

from benchdb import ROOT, WEB_LOG, Api, drop_database, recreate_database, web_server
from send_and_inbox import (
    BENCH_LOCALES,
    DB,
    IN_APP_TYPE,
    LOCALISED_TYPE,
    api_send_seconds,
    bench_tenant,
    forget_run,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=40, help="pairs of sends per shape")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument(
        "--shapes", nargs="*", default=[], help="only the shapes whose labels start so"
    )
    args = parser.parse_args()
    other = args.other.resolve()
    if not (other / "Procfile").is_file():
        parser.error(f"{other} is not a checkout of Herald (no Procfile)")

    recreate_database(DB)
    prefix = ""
    try:
        _schema, key, env, prefix = bench_tenant()
        other_log = WEB_LOG.with_name("herald-bench-web-other.log")
        with web_server(env, other, other_log) as (other_port, _), web_server(env) as (port, _):
            host = "bench.localhost"
            sides = {"other": Api(other_port, host), "this": Api(port, host)}
            print(f"this: {ROOT}\nother: {other}\n{args.rounds} pairs per shape, medians\n")
            existing = [f"e-{n}" for n in range(args.recipients)]
            fresh = iter(range(10**9))
            count = f"{args.recipients:,}"
            shapes = {
                f"{count} existing recipients": (IN_APP_TYPE, lambda: existing),
                f"{count} new recipients": (IN_APP_TYPE, lambda: [
                    f"n{next(fresh)}" for _ in range(args.recipients)]),
                f"{count} new, locales, localised": (LOCALISED_TYPE, lambda: [
                    {"id": f"n{next(fresh)}", "locale": BENCH_LOCALES[n % len(BENCH_LOCALES)]}
                    for n in range(args.recipients)]),
                f"{count} new, emails and names": (IN_APP_TYPE, lambda: [
                    {"id": f"n{n}", "email": f"u{n}@example.com", "name": f"User {n}"}
                    for n in islice(fresh, args.recipients)]),
                "1 existing recipient": (IN_APP_TYPE, lambda: ["e-0"]),
            }  # fmt: skip
            shapes = {
                label: shape for label, shape in shapes.items()
                if not args.shapes or any(label.startswith(start) for start in args.shapes)
            }  # fmt: skip
            locales = {tag: {"title": f"[{tag}] {{{{ title }}}}",
                             "message": f"{{{{ message }}}} ({tag})"}
                       for tag in BENCH_LOCALES}  # fmt: skip
            sides["this"].call("PUT", f"/api/v1/types/{LOCALISED_TYPE}", key, {"locales": locales})
            for api in sides.values():  # warm both: the type, the users, the caches
                for _ in range(3):
                    api_send_seconds(api, key, IN_APP_TYPE, existing)
                    api_send_seconds(api, key, LOCALISED_TYPE, existing[:10])
            print(f"{'':38}{'this p50':>10}{'other p50':>11}{'this best':>11}{'other best':>12}"
                  f"{'this/other':>12}")  # fmt: skip
            for label, (type_key, recipients) in shapes.items():
                times: dict[str, list[float]] = {"this": [], "other": []}
                for round_ in range(args.rounds):
                    order = ("this", "other") if round_ % 2 else ("other", "this")
                    for side in order:
                        seconds = api_send_seconds(sides[side], key, type_key, recipients())
                        times[side].append(seconds * 1000)
                pairs = zip(times["this"], times["other"], strict=True)
                ratio = statistics.median(mine / theirs for mine, theirs in pairs)
                print(f"{label:38}{statistics.median(times['this']):>8.1f}ms"
                      f"{statistics.median(times['other']):>9.1f}ms{min(times['this']):>9.1f}ms"
                      f"{min(times['other']):>10.1f}ms{ratio:>11.3f}x")  # fmt: skip
    finally:
        drop_database(DB)
        if prefix:
            forget_run(prefix)


if __name__ == "__main__":
    main()
