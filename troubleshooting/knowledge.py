"""Loads and validates the troubleshooting knowledge file (``knowledge.yaml``).

The packaged file is read once, on first use, through importlib.resources. A malformed entry is
refused with a :class:`KnowledgeError` that names the entry and what is wrong with it.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from troubleshooting.vocabulary import (
    ACTIONS,
    ARTICLE_ANCHORS,
    AUDIENCES,
    FINDING_IDS,
    PLACEHOLDERS,
    SEVERITIES,
)

ENTRY_FIELDS: tuple[str, ...] = (
    "id",
    "severity",
    "audience",
    "title",
    "detail",
    "remedy",
    "actions",
    "article",
)
OPTIONAL_ENTRY_FIELDS: tuple[str, ...] = ("variants",)
VARIANT_FIELDS: tuple[str, ...] = ("severity", "audience", "title", "detail", "remedy", "actions")


class KnowledgeError(ValueError):
    """The knowledge file is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class Variant:
    """Overrides for one distinct cause of a finding (None: keep the entry's value)."""

    name: str
    severity: str | None = None
    audience: str | None = None
    title: str | None = None
    detail: str | None = None
    remedy: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Entry:
    """One finding's knowledge: what to say and what to offer."""

    id: str
    severity: str
    audience: str
    title: str
    detail: str
    remedy: tuple[str, ...]
    actions: tuple[str, ...]
    article: str
    variants: Mapping[str, Variant] = field(default_factory=dict)

    def resolved(self, variant: str | None) -> Entry:
        """This entry with the named variant's overrides applied."""
        if variant is None:
            return self
        try:
            v = self.variants[variant]
        except KeyError:
            raise KnowledgeError(f"entry {self.id!r}: no variant named {variant!r}") from None
        return Entry(
            id=self.id,
            severity=v.severity or self.severity,
            audience=v.audience or self.audience,
            title=v.title or self.title,
            detail=v.detail or self.detail,
            remedy=v.remedy if v.remedy is not None else self.remedy,
            actions=v.actions if v.actions is not None else self.actions,
            article=self.article,
            variants={},
        )


class Knowledge(Mapping[str, Entry]):
    """Validated knowledge: finding id → :class:`Entry`."""

    def __init__(self, entries: Mapping[str, Entry], source: str) -> None:
        self._entries = dict(entries)
        self.source = source

    def __getitem__(self, key: str) -> Entry:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def template_placeholders(template: str) -> set[str]:
    """The ``{names}`` a template uses; raises ValueError on malformed braces."""
    names: set[str] = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if name == "" or not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} is not a plain name")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must not carry a format spec or conversion")
        names.add(name)
    return names


def _text(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _check_template(where: str, key: str, template: str) -> None:
    try:
        names = template_placeholders(template)
    except ValueError as exc:
        raise KnowledgeError(f"{where}: field {key!r}: {exc}") from None
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        raise KnowledgeError(
            f"{where}: field {key!r} uses unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"known fact names are: {', '.join(sorted(PLACEHOLDERS))}"
        )


def _severity(where: str, value: Any) -> str:
    if value not in SEVERITIES:
        raise KnowledgeError(
            f"{where}: unknown severity {value!r} (expected one of: ok, info, warning, error)"
        )
    return str(value)


def _audience(where: str, value: Any) -> str:
    if value not in AUDIENCES:
        raise KnowledgeError(f"{where}: unknown audience {value!r} (expected one of: {', '.join(AUDIENCES)})")
    return str(value)


def _remedy(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise KnowledgeError(f"{where}: field 'remedy' must be a list of steps")
    steps = tuple(_text(where, f"remedy[{i}]", step) for i, step in enumerate(value))
    for i, step in enumerate(steps):
        _check_template(where, f"remedy[{i}]", step)
    return steps


def _actions(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise KnowledgeError(f"{where}: field 'actions' must be a list")
    for action in value:
        if action not in ACTIONS:
            raise KnowledgeError(
                f"{where}: unknown action {action!r} (expected any of: {', '.join(ACTIONS)})"
            )
    if len(set(value)) != len(value):
        raise KnowledgeError(f"{where}: field 'actions' lists an action twice")
    return tuple(value)


def _unknown_fields(where: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise KnowledgeError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(allowed)})"
        )


def _variant(where: str, name: Any, raw: Any) -> Variant:
    if not isinstance(name, str) or not name.isidentifier():
        raise KnowledgeError(f"{where}: variant name {name!r} must be a plain name")
    where = f"{where}, variant {name!r}"
    if not isinstance(raw, dict) or not raw:
        raise KnowledgeError(f"{where}: must be a mapping with at least one override")
    _unknown_fields(where, raw, VARIANT_FIELDS)
    title = _text(where, "title", raw["title"]) if "title" in raw else None
    detail = _text(where, "detail", raw["detail"]) if "detail" in raw else None
    for key, template in (("title", title), ("detail", detail)):
        if template is not None:
            _check_template(where, key, template)
    return Variant(
        name=name,
        severity=_severity(where, raw["severity"]) if "severity" in raw else None,
        audience=_audience(where, raw["audience"]) if "audience" in raw else None,
        title=title,
        detail=detail,
        remedy=_remedy(where, raw["remedy"]) if "remedy" in raw else None,
        actions=_actions(where, raw["actions"]) if "actions" in raw else None,
    )


def _entry(index: int, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise KnowledgeError(f"entry #{index + 1}: must be a mapping of fields")
    ident = raw.get("id")
    where = f"entry {ident!r}" if isinstance(ident, str) else f"entry #{index + 1}"
    _unknown_fields(where, raw, ENTRY_FIELDS + OPTIONAL_ENTRY_FIELDS)
    missing = [key for key in ENTRY_FIELDS if key not in raw]
    if missing:
        raise KnowledgeError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    ident = _text(where, "id", ident)
    if ident not in FINDING_IDS:
        raise KnowledgeError(
            f"{where}: {ident!r} is not a known finding id (known: {', '.join(FINDING_IDS)})"
        )
    title = _text(where, "title", raw["title"])
    detail = _text(where, "detail", raw["detail"])
    _check_template(where, "title", title)
    _check_template(where, "detail", detail)
    article = raw["article"]
    if article not in ARTICLE_ANCHORS:
        raise KnowledgeError(
            f"{where}: unknown article anchor {article!r} (expected one of: {', '.join(ARTICLE_ANCHORS)})"
        )
    raw_variants = raw.get("variants") or {}
    if not isinstance(raw_variants, dict):
        raise KnowledgeError(f"{where}: field 'variants' must be a mapping of name to overrides")
    return Entry(
        id=ident,
        severity=_severity(where, raw["severity"]),
        audience=_audience(where, raw["audience"]),
        title=title,
        detail=detail,
        remedy=_remedy(where, raw["remedy"]),
        actions=_actions(where, raw["actions"]),
        article=str(article),
        variants={name: _variant(where, name, v) for name, v in raw_variants.items()},
    )


def parse_knowledge(text: str, source: str = "<string>") -> Knowledge:
    """Validate knowledge given as YAML text."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"findings"} or not isinstance(doc["findings"], list):
        raise KnowledgeError(f"{source}: expected one top-level key 'findings' holding a list of entries")
    entries: dict[str, Entry] = {}
    for index, raw in enumerate(doc["findings"]):
        entry = _entry(index, raw)
        if entry.id in entries:
            raise KnowledgeError(f"entry {entry.id!r}: defined more than once")
        entries[entry.id] = entry
    missing = [fid for fid in FINDING_IDS if fid not in entries]
    if missing:
        raise KnowledgeError(f"{source}: no entry for required finding id(s) {', '.join(missing)}")
    if entries["healthy"].severity != "ok" or any(
        e.severity == "ok" or any(v.severity == "ok" for v in e.variants.values())
        for fid, e in entries.items()
        if fid != "healthy"
    ):
        raise KnowledgeError(f"{source}: severity 'ok' belongs to 'healthy' and to no other entry")
    return Knowledge(entries, source)


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
