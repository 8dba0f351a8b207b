"""Loads the troubleshooting knowledge file (``knowledge.yaml``) through its typed models.

The packaged file is read once, on first use, through importlib.resources, and validated by
``troubleshooting.knowledge_models``. A malformed file is refused with a :class:`KnowledgeError`
whose message names the entry (``entry 'revoked'``, ``entry 'authorization_failed', variant
'denied'``, ``permissions 'source'``) and what is wrong with it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from troubleshooting.knowledge_models import (
    Entry,
    KnowledgeError,
    KnowledgeFile,
    NeedWords,
    Variant,
    template_placeholders,
)
from troubleshooting.vocabulary import ACTIONS, ARTICLE_ANCHORS, AUDIENCES, FINDING_IDS, SEVERITY_ORDER, Need

__all__ = ["Entry", "Knowledge", "KnowledgeError", "NeedWords", "Variant", "load_knowledge", "parse_knowledge",
           "template_placeholders"]


class Knowledge(Mapping[str, Entry]):
    """Validated knowledge: finding id → :class:`Entry`, plus the words for missing permissions."""

    def __init__(self, validated: KnowledgeFile, source: str) -> None:
        self._entries = {entry.id: entry for entry in validated.findings}
        self.permissions: Mapping[Need, NeedWords] = dict(validated.permissions)
        self.source = source

    def __getitem__(self, key: str) -> Entry:
        return self._entries[key]  # type: ignore[index]  # a StrEnum key is found by its value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def shortfall_values(self, needs: Iterable[str]) -> dict[str, str]:
        """The ``missing_scopes`` and ``missing_effects`` placeholders for a grant's shortfalls."""
        words = [self.permissions[Need(need)] for need in needs]
        named = [w.named for w in words]
        return {"missing_scopes": " and ".join(named) if len(named) <= 2 else ", ".join(named),
                "missing_effects": " ".join(w.for_agent for w in words)}


# What a refused enum value is called in the message, and the words it may be.
_ENUM_FIELDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "severity": ("unknown severity", "one of", SEVERITY_ORDER[::-1]),
    "audience": ("unknown audience", "one of", AUDIENCES),
    "actions": ("unknown action", "any of", ACTIONS),
    "article": ("unknown article anchor", "one of", ARTICLE_ANCHORS),
}
_FIELD_ERRORS = {"missing": "missing field(s)", "extra_forbidden": "unknown field(s)"}


def _where(doc: Any, loc: tuple[int | str, ...]) -> tuple[str, tuple[int | str, ...]]:
    """Who the error is about (``entry 'revoked', variant 'denied'``) and the rest of its location."""
    if loc[:1] == ("permissions",) and len(loc) > 1:
        return f"permissions {loc[1]!r}", loc[2:]
    if loc[:1] != ("findings",) or len(loc) < 2:
        return str(doc.get("__source__", "knowledge")), loc
    index = int(loc[1])
    raw = doc["findings"][index]
    ident = raw.get("id") if isinstance(raw, dict) else None
    where = f"entry {ident!r}" if isinstance(ident, str) else f"entry #{index + 1}"
    rest = loc[2:]
    if rest[:1] == ("variants",) and len(rest) > 1:
        return f"{where}, variant {rest[1]!r}", rest[2:]
    return where, rest


def _field(rest: tuple[int | str, ...]) -> str:
    """``remedy[0]`` for ('remedy', 0)."""
    return str(rest[0]) + "".join(f"[{part}]" for part in rest[1:])


def _message(error: ErrorDetails, where: str, rest: tuple[int | str, ...]) -> str:
    kind, given = error["type"], error.get("input")
    if kind == "model_type" or (kind == "dict_type" and not rest):
        return f"{where}: must be a mapping of fields"
    if rest == ("[key]",):  # a mapping key: the need or the variant name itself
        if where.startswith("permissions"):
            return f"{where}: not a kind of missing permission (expected one of: {', '.join(Need)})"
        return f"{where}: the variant name must be a plain name"
    if kind == "enum" and rest[0] in _ENUM_FIELDS:
        label, quantifier, words = _ENUM_FIELDS[str(rest[0])]
        return f"{where}: {label} {given!r} (expected {quantifier}: {', '.join(words)})"
    if kind == "enum" and rest == ("id",):
        return f"{where}: {given!r} is not a known finding id (known: {', '.join(FINDING_IDS)})"
    if kind in ("tuple_type", "list_type"):
        what = "a list of steps" if rest[0] == "remedy" else "a list"
        return f"{where}: field {_field(rest)!r} must be {what}"
    if kind == "string_type":
        return f"{where}: field {_field(rest)!r} must be a non-empty string"
    if kind == "value_error":
        reason = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{where}: field {_field(rest)!r} {reason}" if rest else f"{where}: {reason}"
    return f"{where}: field {_field(rest)!r}: {error['msg']}" if rest else f"{where}: {error['msg']}"


def _refusal(exc: ValidationError, doc: Any, source: str) -> KnowledgeError:
    """The first problem, in the order a reader fixes them: unknown and missing fields first."""
    errors = exc.errors()
    for kind, label in _FIELD_ERRORS.items():
        found = [e for e in errors if e["type"] == kind]
        if found:
            where, _ = _where(doc, found[0]["loc"][:-1])
            names = [e["loc"][-1] for e in found if _where(doc, e["loc"][:-1])[0] == where]
            return KnowledgeError(f"{where}: {label} {', '.join(map(repr, names))}")
    first = errors[0]
    if not first["loc"]:  # the whole file: duplicates, completeness
        reason = str(first.get("ctx", {}).get("error", first["msg"]))
        return KnowledgeError(reason if reason.startswith("entry ") else f"{source}: {reason}")
    where, rest = _where(doc, first["loc"])
    return KnowledgeError(_message(first, where, rest))


def parse_knowledge(text: str, source: str = "<string>") -> Knowledge:
    """Validate knowledge given as YAML text."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise KnowledgeError(f"{source}: expected the top-level key 'findings' holding a list of entries "
                             "(and 'permissions': the words for each missing permission)")
    try:
        return Knowledge(KnowledgeFile.model_validate(doc), source)
    except ValidationError as exc:
        raise _refusal(exc, {**doc, "__source__": source}, source) from None


@functools.cache
def _packaged() -> Knowledge:
    text = resources.files(__package__).joinpath("knowledge.yaml").read_text(encoding="utf-8")
    return parse_knowledge(text, "troubleshooting/knowledge.yaml")


def load_knowledge(path: str | Path | None = None) -> Knowledge:
    """The validated knowledge: the packaged file (cached) or, for tests and tooling, ``path``."""
    if path is None:
        return _packaged()
    p = Path(path)
    return parse_knowledge(p.read_text(encoding="utf-8"), str(p))
