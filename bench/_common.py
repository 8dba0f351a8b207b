"""Shared by the benchmarks: machine description, peak RSS, seeding connected users fast."""

from __future__ import annotations

import os
import platform
import resource
import secrets
from datetime import datetime, timedelta

from sqlalchemy import insert

from service.core.crypto import TokenCipher
from service.db.models import StravaConnection, User
from standin import StravaStandin


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def mint_grant(standin: StravaStandin, athlete_id: int, issued_at: datetime) -> tuple[str, str, datetime]:
    """Tokens the stand-in really knows, as if the athlete had connected at `issued_at`."""
    scopes = frozenset({"read", "activity:read_all", "activity:write", "profile:read_all"})
    state = standin.state
    state.add_athlete(issued_at, athlete_id, "Bench", f"Athlete{athlete_id}")
    state.grants[athlete_id] = tuple(sorted(scopes))
    access = state._issue_access(athlete_id, scopes, issued_at)
    refresh = state._issue_refresh(athlete_id, scopes, access.token)
    return access.token, refresh.token, access.expires_at


async def seed_connections(sessions, cipher: TokenCipher, count: int, now: datetime, expires_in: timedelta,
                           grants: list | None = None, first_athlete: int = 5_000_000, chunk: int = 2000,
                           offset: int = 0) -> None:
    """`count` users, each with a connected Strava connection expiring `expires_in` from `now`.

    `grants` ([athlete_id, access, refresh, expires_epoch] per user) are tokens the stand-in knows;
    without them the tokens are random (enough for anything that never calls Strava). `offset`
    numbers the users after ones seeded before (user n is athlete{n}@bench.example).
    """
    issued_at = now + expires_in - timedelta(hours=6)
    scopes = "activity:read_all,activity:write,profile:read_all,read"
    for start in range(0, count, chunk):
        users, conns = [], []
        for n in range(offset + start, offset + min(count, start + chunk)):
            if grants is not None:
                athlete, access, refresh, _expires = grants[n - offset]
            else:
                athlete, access, refresh = first_athlete + n, secrets.token_hex(20), secrets.token_hex(20)
            users.append({"id": n + 1, "email": f"athlete{n}@bench.example", "email_normalized":
                          f"athlete{n}@bench.example", "created_at": now})
            conns.append({"user_id": n + 1, "athlete_id": athlete, "status": "connected", "granted_scopes": scopes,
                          "access_token_enc": cipher.encrypt(access), "refresh_token_enc": cipher.encrypt(refresh),
                          "expires_at": now + expires_in, "connected_at": issued_at, "refresh_failures": 0,
                          "status_changed_at": issued_at})
        async with sessions() as session, session.begin():
            await session.execute(insert(User), users)
            await session.execute(insert(StravaConnection), conns)


async def wait_ready(url: str, proc, timeout: float = 30) -> None:  # noqa: ANN001 - a subprocess.Popen
    """Wait until the server child `proc` answers 200 at `url`/readyz; SystemExit when it exits or times out."""
    import asyncio
    import time

    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                async with http.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


class StandinProcess:
    """bench/_standin_process.py as a child process."""

    def __init__(self, latency: float = 0.0, unlimited: bool = False) -> None:
        import subprocess
        import sys
        from pathlib import Path

        script = Path(__file__).with_name("_standin_process.py")
        self.proc = subprocess.Popen([sys.executable, str(script), "--latency", str(latency),
                                      *(["--unlimited"] if unlimited else [])],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the stand-in process did not start")

    async def mint(self, http, count: int, seconds_left: int, first_athlete: int = 5_000_000) -> list:
        grants: list = []
        for start in range(0, count, 5000):
            body = {"count": min(5000, count - start), "first_athlete": first_athlete + start,
                    "seconds_left": seconds_left}
            async with http.post(f"{self.base_url}/bench/mint", json=body) as response:
                grants.extend(await response.json())
        return grants

    async def activities(self, http, athletes: list[int], per_athlete: int) -> list:
        async with http.post(f"{self.base_url}/bench/activities",
                             json={"athletes": athletes, "per_athlete": per_athlete}) as response:
            return await response.json()

    async def calls(self, http) -> dict:
        async with http.get(f"{self.base_url}/bench/calls") as response:
            return await response.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
