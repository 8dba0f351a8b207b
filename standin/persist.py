"""The stand-in's world saved to a JSON file and read back, for `fitglue serve --sandbox-dir DIR`: the
athletes, activities, grants and tokens FitGlue's own database refers to survive a restart."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from standin.state import AccessToken, Activity, Athlete, AuthCode, RefreshToken, SandboxState

VERSION = 1
# Each table of SandboxState: the class of its rows and the field that keys them.
_TABLES: dict[str, tuple[type, str]] = {"athletes": (Athlete, "id"), "activities": (Activity, "id"),
                                        "codes": (AuthCode, "code"), "access_tokens": (AccessToken, "token"),
                                        "refresh_tokens": (RefreshToken, "token")}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, frozenset | set | tuple):
        return sorted(value) if not isinstance(value, tuple) else list(value)
    return value


def _row(cls: type, raw: dict[str, Any]) -> Any:
    values = {}
    for f in fields(cls):
        value = raw[f.name]
        if isinstance(value, dict) and "$dt" in value:
            value = datetime.fromisoformat(value["$dt"])
        elif f.name == "scopes":
            value = tuple(value) if cls is AuthCode else frozenset(value)
        values[f.name] = value
    return cls(**values)


def dump_state(state: SandboxState, subscription: dict[str, Any] | None, next_subscription_id: int) -> str:
    tables = {name: [{k: _plain(v) for k, v in asdict(row).items()} for row in getattr(state, name).values()]
              for name in _TABLES}
    return json.dumps({
        "version": VERSION, **tables,
        "grants": {str(k): list(v) for k, v in state.grants.items()},
        "issued_tokens": sorted(state.issued_tokens),
        "next_activity_id": state._next_activity_id,
        "subscription": subscription, "next_subscription_id": next_subscription_id,
    })


def load_state(text: str) -> tuple[SandboxState, dict[str, Any] | None, int]:
    """(state, subscription, next subscription id); ValueError when the text is not a saved state."""
    try:
        raw = json.loads(text)
        if raw.get("version") != VERSION:
            raise ValueError(f"unknown version {raw.get('version')!r}")
        state = SandboxState()
        for name, (cls, key) in _TABLES.items():
            table = getattr(state, name)
            for row in raw[name]:
                item = _row(cls, row)
                table[getattr(item, key)] = item
        state.grants = {int(k): tuple(v) for k, v in raw["grants"].items()}
        state.issued_tokens = set(raw["issued_tokens"])
        state._next_activity_id = int(raw["next_activity_id"])
        return state, raw["subscription"], int(raw["next_subscription_id"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a saved stand-in state ({exc})") from None


def save(path: Path, state: SandboxState, subscription: dict[str, Any] | None, next_subscription_id: int) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(dump_state(state, subscription, next_subscription_id))
    temporary.replace(path)
