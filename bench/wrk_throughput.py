"""Maximum throughput of `/webhooks/strava` under `wrk -t2 -c32`, against a bare aiohttp handler.

wrk (a Debian package; scripts/install installs it) drives each server as fast as 32 connections
allow, every request a distinct activity event (its Lua script numbers them per thread). The
bare handler only answers 200; FitGlue runs as the one-process `fitglue serve` (intake on the main
event loop, the queue worker processing the same events in its background thread) on a fresh
database. Prints requests/s of both and their ratio (target >= 0.5), non-2xx answers, and events
stored vs 2xx answers (an answered event is a stored one).

    python bench/wrk_throughput.py                      # SQLite, 10 s each
    python bench/wrk_throughput.py --database postgres
    python bench/wrk_throughput.py --smoke              # 2 s each, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import string
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import machine, wait_ready  # noqa: E402
from bench._servers import SUBSCRIPTION_ID, count, scratch_database, start_child, stop_child  # noqa: E402

RUN_TAG = 1_800_000_003
LUA = string.Template("""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
request = function()
  counter = counter + 1
  local body = string.format('{"aspect_type":"create","event_time":$run_tag,"object_id":%d,'
    .. '"object_type":"activity","owner_id":%d,"subscription_id":$subscription,"updates":{}}',
    tid * 100000000 + counter, 9000000 + counter % 1000)
  return wrk.format("POST", "/webhooks/strava", {["Content-Type"] = "application/json"}, body)
end
""")


def run_wrk(url: str, seconds: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp(prefix="fitglue-wrk-")) / "events.lua"
    script.write_text(LUA.substitute(run_tag=RUN_TAG, subscription=SUBSCRIPTION_ID))
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    found = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0.0,
        "errors": float(sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))),
    }
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            found[f"p{pct}_ms"] = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return found


async def measure(database: str, seconds: int, role: str = "all") -> int:
    from tests.e2e.procs import free_port

    results = {}
    label = "one-process" if role == "all" else "web role"
    port = free_port()
    bare = start_child("bare", "--port", str(port))
    try:
        await wait_ready(f"http://127.0.0.1:{port}", bare)
        results["bare"] = run_wrk(f"http://127.0.0.1:{port}", seconds)
    finally:
        stop_child(bare)
    async with scratch_database(database) as url:
        port = free_port()
        service = start_child("service", "--port", str(port), "--database-url", url, "--role", role)
        try:
            await wait_ready(f"http://127.0.0.1:{port}", service)
            results[label] = run_wrk(f"http://127.0.0.1:{port}", seconds)
        finally:
            stop_child(service)
        stored = await count(url, f"SELECT count(*) FROM webhook_events WHERE event_time = {RUN_TAG}")
    print(f"wrk -t2 -c32 for {seconds} s each, {database}; machine: {machine()}")
    for name, r in results.items():
        print(f"  {name:<12} {r['rps']:9.1f} requests/s   p50 {r.get('p50_ms', 0):7.2f} ms   "
              f"p99 {r.get('p99_ms', 0):7.2f} ms   non-2xx {r['non_2xx']:.0f}   socket errors {r['errors']:.0f}")
    ratio = results[label]["rps"] / results["bare"]["rps"]
    answered = results[label]["requests"] - results[label]["non_2xx"]
    print(f"  ratio ({label} / bare requests/s): {ratio:.2f} (target >= 0.5)")
    print(f"  events stored {stored}, 2xx answers counted by wrk {answered:.0f} (in-flight ones at the end are "
          "stored but not counted)")
    failures = []
    if stored < answered:
        failures.append("fewer events stored than answered 2xx")
    if results[label]["non_2xx"]:
        failures.append("non-2xx answers")
    if seconds >= 10 and ratio < 0.5:
        failures.append(f"ratio {ratio:.2f} < 0.5")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="2 s each, no target enforced")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--role", default="all", choices=["all", "web"],
                        help="all: the one-process serve (the target's subject); web: the web role alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (scripts/install installs it with apt-get)")
        sys.exit(2)
    sys.exit(asyncio.run(measure(args.database, 2 if args.smoke else args.seconds, args.role)))


if __name__ == "__main__":
    main()
