"""The knowledge file: the packaged one is complete and valid; broken ones are refused clearly."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from troubleshooting import ACTIONS, ARTICLE_ANCHORS, FINDING_IDS, KnowledgeError, load_knowledge

Doc = dict[str, Any]


def packaged_doc() -> Doc:
    text = resources.files("troubleshooting").joinpath("knowledge.yaml").read_text(encoding="utf-8")
    doc: Doc = yaml.safe_load(text)
    return doc


def entry(doc: Doc, finding_id: str) -> dict[str, Any]:
    return next(e for e in doc["findings"] if e["id"] == finding_id)


def test_packaged_knowledge_covers_every_finding() -> None:
    kb = load_knowledge()
    assert set(kb) == set(FINDING_IDS)
    assert load_knowledge() is kb, "loaded once"


def test_design_actions_contract() -> None:
    kb = load_knowledge()
    for fid in (
        "unknown_user",
        "not_connected",
        "authorization_failed",
        "missing_permissions",
        "needs_reauth",
        "revoked",
    ):
        assert "send_connect_link" in kb[fid].actions, fid
    assert "reregister_webhook" in kb["webhook_missing"].actions
    assert "refresh_token" in kb["token_refresh_failing"].actions
    assert kb["strava_app_misconfigured"].audience == "operator"
    assert kb["app_capacity_reached"].audience == "operator"
    assert kb["healthy"].severity == "ok" and kb["webhook_silent"].severity == "info"


def test_every_article_section_is_used() -> None:
    kb = load_knowledge()
    assert {e.article for e in kb.values()} == set(ARTICLE_ANCHORS)


def test_no_sentence_copied_from_the_article() -> None:
    # shared/ sits beside the checkout (CI clones elsewhere and copies shared/ beside the clone)
    seeds = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"
    found = sorted(seeds.glob("*.txt")) or sorted(Path("/work/shared/seeds").glob("*.txt"))
    if not found:
        pytest.skip("help article not available")
    article = found[0]
    sentences = {
        s.strip().lower()
        for s in re.split(r"(?<=[.!?])\s+|\n", re.sub(r"\*\*|—", " ", article.read_text(encoding="utf-8")))
        if len(s.split()) >= 6
    }
    kb = load_knowledge()
    ours = " ".join(
        " ".join(
            [e.title, e.detail, *e.remedy]
            + [" ".join([v.title or "", v.detail or "", *(v.remedy or ())]) for v in e.variants.values()]
        )
        for e in kb.values()
    ).lower()
    assert len(sentences) > 10
    assert not [s for s in sentences if s in ours]


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "knowledge.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


Mutation = Callable[[Doc], None]


def _set(fid: str, key: str, value: Any) -> Mutation:
    return lambda doc: entry(doc, fid).__setitem__(key, value)


def _drop(fid: str, key: str) -> Mutation:
    return lambda doc: entry(doc, fid).pop(key)


def _drop_entry(fid: str) -> Mutation:
    return lambda doc: doc["findings"].remove(entry(doc, fid))


def _duplicate(fid: str) -> Mutation:
    return lambda doc: doc["findings"].append(dict(entry(doc, fid)))


def _variant(fid: str, name: str, key: str, value: Any) -> Mutation:
    return lambda doc: entry(doc, fid)["variants"][name].__setitem__(key, value)


BROKEN: list[tuple[str, Mutation, str]] = [
    ("unknown field", _set("revoked", "colour", "red"), r"entry 'revoked': unknown field\(s\) 'colour'"),
    ("missing field", _drop("needs_reauth", "remedy"), r"entry 'needs_reauth': missing field\(s\) 'remedy'"),
    (
        "unknown severity",
        _set("webhook_silent", "severity", "critical"),
        r"entry 'webhook_silent': unknown severity 'critical'",
    ),
    (
        "unknown action",
        _set("webhook_missing", "actions", ["restart_strava"]),
        r"entry 'webhook_missing': unknown action 'restart_strava'",
    ),
    (
        "unknown audience",
        _set("revoked", "audience", "everyone"),
        r"entry 'revoked': unknown audience 'everyone'",
    ),
    (
        "unknown placeholder in detail",
        _set("revoked", "detail", "Gone since {revoked_when}."),
        r"entry 'revoked': field 'detail' uses unknown placeholder\(s\) \{revoked_when\}",
    ),
    (
        "unknown placeholder in a remedy step",
        _set("revoked", "remedy", ["Ask {athlete_name}."]),
        r"entry 'revoked': field 'remedy\[0\]' uses unknown placeholder\(s\) \{athlete_name\}",
    ),
    ("malformed template", _set("revoked", "title", "Revoked {"), r"entry 'revoked': field 'title'"),
    (
        "format spec not allowed",
        _set("revoked", "title", "Revoked {email!r}"),
        r"entry 'revoked': field 'title'",
    ),
    (
        "unknown article anchor",
        _set("revoked", "article", "#revoke"),
        r"entry 'revoked': unknown article anchor",
    ),
    (
        "unknown finding id",
        _set("revoked", "id", "revoked_twice"),
        r"'revoked_twice' is not a known finding id",
    ),
    (
        "required id missing",
        _drop_entry("webhook_silent"),
        r"no entry for required finding id\(s\) webhook_silent",
    ),
    ("duplicate id", _duplicate("healthy"), r"entry 'healthy': defined more than once"),
    (
        "remedy not a list",
        _set("revoked", "remedy", "Reconnect."),
        r"entry 'revoked': field 'remedy' must be a list",
    ),
    (
        "empty title",
        _set("revoked", "title", " "),
        r"entry 'revoked': field 'title' must be a non-empty string",
    ),
    (
        "unknown variant field",
        _variant("authorization_failed", "denied", "tone", "calm"),
        r"entry 'authorization_failed', variant 'denied': unknown field\(s\) 'tone'",
    ),
    (
        "unknown variant action",
        _variant("authorization_failed", "denied", "actions", ["call_user"]),
        r"entry 'authorization_failed', variant 'denied': unknown action 'call_user'",
    ),
    (
        "unknown variant placeholder",
        _variant("authorization_failed", "denied", "detail", "{secret}"),
        r"variant 'denied': field 'detail' uses unknown placeholder\(s\) \{secret\}",
    ),
    ("ok severity outside healthy", _set("revoked", "severity", "ok"), r"severity 'ok' belongs to 'healthy'"),
    (
        "ok severity taken from healthy",
        _set("healthy", "severity", "info"),
        r"severity 'ok' belongs to 'healthy'",
    ),
    (
        "permission words missing",
        lambda doc: doc["permissions"].pop("destination"),
        r"permissions: no words for destination",
    ),
    (
        "unknown permission need",
        lambda doc: doc["permissions"].__setitem__("heart_rate", doc["permissions"]["profile"]),
        r"permissions 'heart_rate': not a kind of missing permission",
    ),
    (
        "variant name not a plain name",
        lambda doc: entry(doc, "authorization_failed")["variants"].__setitem__("two words", {"title": "x"}),
        r"entry 'authorization_failed', variant 'two words': the variant name must be a plain name",
    ),
    (
        "empty words for the user",
        lambda doc: doc["permissions"]["source"].__setitem__("for_user", " "),
        r"permissions 'source': field 'for_user' must be a non-empty string",
    ),
    (
        "unknown permission field",
        lambda doc: doc["permissions"]["profile"].__setitem__("tone", "calm"),
        r"permissions 'profile': unknown field\(s\) 'tone'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [(m, msg) for _, m, msg in BROKEN], ids=[n for n, _, _ in BROKEN]
)
def test_broken_knowledge_is_refused(tmp_path: Path, mutate: Mutation, message: str) -> None:
    doc = packaged_doc()
    mutate(doc)
    with pytest.raises(KnowledgeError, match=message):
        load_knowledge(write(tmp_path, doc))


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text("findings: [\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not valid YAML"):
        load_knowledge(path)


def test_wrong_top_level(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="top-level key 'findings'"):
        load_knowledge(write(tmp_path, [{"id": "healthy"}]))


def test_valid_copy_round_trips(tmp_path: Path) -> None:
    kb = load_knowledge(write(tmp_path, packaged_doc()))
    assert set(kb) == set(FINDING_IDS)
    assert set().union(*(e.actions for e in kb.values())) == set(ACTIONS)


def test_permission_words_come_from_the_knowledge_file():
    """The diagnosis and the Connect pages word each missing permission from one place."""
    from service.web.connect_pages import explain_missing
    from troubleshooting import grant_verdict

    kb = load_knowledge()
    verdict = grant_verdict(set())
    assert explain_missing(verdict) == [kb.permissions[s.need].for_user for s in verdict.shortfalls]
    assert kb.shortfall_values([s.need for s in verdict.shortfalls])["missing_effects"].startswith(
        kb.permissions[verdict.shortfalls[0].need].for_agent)
