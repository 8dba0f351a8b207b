"""Driving a running sandbox from a test: its admin API (with the generated token) and the stand-in's
JSON control routes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.e2e.sandbox_proc import exported


class SandboxClient:
    def __init__(self, shown: dict[str, str]) -> None:
        self.admin = shown["Admin API"]
        self.controls = shown["Strava controls"].rstrip("/")
        self.token = exported(shown["export"])["FITGLUE_ADMIN_TOKEN"]

    async def _call(self, method: str, url: str, **kw: Any) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http, http.request(method, url, **kw) as answer:
            return answer.status, await answer.json(content_type=None)

    async def admin_call(self, method: str, path: str, **kw: Any) -> Any:
        status, body = await self._call(method, f"{self.admin}/{path}",
                                        headers={"Authorization": f"Bearer {self.token}"}, **kw)
        return body

    async def control(self, path: str, **params: Any) -> Any:
        status, body = await self._call("POST", f"{self.controls}{path}", json=params,
                                        headers={"Accept": "application/json"})
        assert status == 200, body
        return body

    async def status(self) -> Any:
        return (await self._call("GET", f"{self.controls}/sandbox/status"))[1]

    async def link(self, email: str) -> str:
        return (await self.admin_call("POST", f"users/{email}/connect-link"))["url"]

    async def diagnosis(self, who: str) -> dict[str, Any]:
        return await self.admin_call("GET", f"users/{who}/diagnosis")

    async def wait_for_finding(self, who: str, finding: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            diagnosis = await self.diagnosis(who)
            if finding in [f["id"] for f in diagnosis.get("findings", [])]:
                return diagnosis
            assert time.monotonic() < deadline, f"no {finding} finding: {diagnosis}"
            await asyncio.sleep(0.3)
