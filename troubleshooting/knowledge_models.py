"""The typed shape of the knowledge file (``knowledge.yaml``): pydantic models, the vocabulary's enums.

A field's type is its check: severities, audiences, actions, article anchors and finding ids must be
words of ``troubleshooting.vocabulary``; text must be non-empty; ``{placeholders}`` must be known
fact names; unknown fields are refused. ``troubleshooting.knowledge`` turns a refusal into one
message naming the entry.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from troubleshooting.vocabulary import (
    FINDING_IDS,
    PLACEHOLDERS,
    Action,
    Article,
    Audience,
    FindingId,
    Need,
    Severity,
)


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


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must be a non-empty string")
    return text


def _known_placeholders(template: str) -> str:
    unknown = sorted(template_placeholders(_non_empty(template)) - PLACEHOLDERS)
    if unknown:
        raise ValueError(
            f"uses unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
            f"known fact names are: {', '.join(sorted(PLACEHOLDERS))}"
        )
    return template


def _each_once(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    if len(set(actions)) != len(actions):
        raise ValueError("lists an action twice")
    return actions


def _plain_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError("must be a plain name")
    return name


Text = Annotated[str, AfterValidator(_non_empty)]
Template = Annotated[str, AfterValidator(_known_placeholders)]  # filled from the facts
Steps = tuple[Template, ...]
Actions = Annotated[tuple[Action, ...], AfterValidator(_each_once)]
VariantName = Annotated[str, AfterValidator(_plain_name)]

class KnowledgeError(ValueError):
    """The knowledge file is malformed; the message names the entry and the problem."""


_STRICT = ConfigDict(frozen=True, extra="forbid")


class Variant(BaseModel):
    """Overrides for one distinct cause of a finding (None: keep the entry's value)."""

    model_config = _STRICT

    severity: Severity | None = None
    audience: Audience | None = None
    title: Template | None = None
    detail: Template | None = None
    remedy: Steps | None = None
    actions: Actions | None = None

    @model_validator(mode="after")
    def _overrides_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("must be a mapping with at least one override")
        return self


class Entry(BaseModel):
    """One finding's knowledge: what to say and what to offer."""

    model_config = _STRICT

    id: FindingId
    severity: Severity
    audience: Audience
    title: Template
    detail: Template
    remedy: Steps
    actions: Actions
    article: Article
    variants: Mapping[VariantName, Variant] = Field(default_factory=dict)

    def resolved(self, variant: str | None) -> Entry:
        """This entry with the named variant's overrides applied."""
        if variant is None:
            return self
        try:
            v = self.variants[variant]
        except KeyError:
            raise KnowledgeError(f"entry {self.id.value!r}: no variant named {variant!r}") from None
        return self.model_copy(update={**v.model_dump(exclude_none=True), "variants": {}})


class NeedWords(BaseModel):
    """What one shortfall of a grant (``vocabulary.Need``) costs, in words.

    ``named`` names what is missing inside a diagnosis sentence; ``for_agent`` says what stops
    working, to a support agent; ``for_user`` says it to the person, on the Connect result page.
    """

    model_config = _STRICT

    named: Text
    for_agent: Text
    for_user: Text


class KnowledgeFile(BaseModel):
    """The whole file: one entry per finding id, and words for every kind of missing permission."""

    model_config = _STRICT

    findings: list[Entry]
    permissions: dict[Need, NeedWords]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        seen: set[str] = set()
        for entry in self.findings:
            if entry.id in seen:
                raise ValueError(f"entry {entry.id.value!r}: defined more than once")
            seen.add(entry.id)
        missing = [fid for fid in FINDING_IDS if fid not in seen]
        if missing:
            raise ValueError(f"no entry for required finding id(s) {', '.join(missing)}")
        unworded = [need for need in Need if need not in self.permissions]
        if unworded:
            raise ValueError(f"permissions: no words for {', '.join(unworded)}")
        if _misused_ok(self.findings):
            raise ValueError("severity 'ok' belongs to 'healthy' and to no other entry")
        return self


def _misused_ok(entries: Iterable[Entry]) -> bool:
    for e in entries:
        if e.id == FindingId.HEALTHY:
            if e.severity != Severity.OK:
                return True
        elif Severity.OK in {e.severity, *(v.severity for v in e.variants.values())}:
            return True
    return False
