"""Slack's mrkdwn as safe HTML: every character of the text is escaped, then only the formatting
Slack documents ("Formatting text for app surfaces") is turned into tags we write ourselves.

Covered: `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ``` ```pre``` ```, line breaks, `<url|text>` and
`<url>` links (http, https and mailto only; anything else shows as text), `<@U…>` user and `<#C…>`
channel mentions, `<!date^…|fallback>` (the fallback), `<!here>`-style specials, Slack's `&amp;` `&lt;`
`&gt;` escapes, and the few `:emoji:` names the bot uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from html import unescape

from markupsafe import Markup, escape

# The emoji the bot uses, as a symbol every common font has and a colour: a machine without a colour
# emoji font (a server, a CI browser) still shows them. Any other :name: stays as typed.
EMOJI = {"red_circle": ("●", "red"), "large_orange_circle": ("●", "orange"), "large_green_circle": ("●", "green"),
         "white_check_mark": ("✔", "green"), "information_source": ("ℹ", "blue"), "grey_question": ("?", "grey"),
         "no_entry": ("⊘", "red"), "hourglass_flowing_sand": ("…", "grey"), "x": ("✘", "red"),
         "point_right": ("➜", "blue"), "rotating_light": ("▲", "red"), "warning": ("▲", "orange"),
         "incoming_envelope": ("✉", "blue"), "link": ("↗", "blue"), "arrows_counterclockwise": ("↻", "blue"),
         "heavy_minus_sign": ("–", "grey"), "tada": ("✦", "orange")}
SAFE_SCHEMES = ("http://", "https://", "mailto:")

_ENTITY = re.compile(r"<([^<>]*)>")
_CODE_BLOCK = re.compile(r"```(.+?)```", re.S)
_CODE = re.compile(r"`([^`\n]+)`")
_STYLES = [(re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)\*(?![\w*])"), "strong"),
           (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)_(?![\w_])"), "em"),
           (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)~(?![\w~])"), "del")]
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")


def _entity(inner: str, names: Mapping[str, str]) -> str:
    """HTML for one `<…>` entity; ``inner`` is Slack-escaped text (so `&amp;` is `&`). A user mention
    shows the person's name from ``names`` (user id -> name), as Slack does."""
    target, _, label = inner.partition("|")
    target, label = unescape(target), unescape(label)
    if target.startswith("@"):
        return str(Markup('<span class="mention">@{}</span>').format(label or names.get(target[1:], target[1:])))
    if target.startswith("#"):
        return str(Markup('<span class="mention">#{}</span>').format(label or target[1:]))
    if target.startswith("!"):  # dates and specials: Slack shows the fallback, so do we
        return str(escape(label or target[1:].split("^")[0]))
    if target.lower().startswith(SAFE_SCHEMES):
        shown = label or target.removeprefix("mailto:")
        return str(Markup('<a href="{}" rel="noreferrer noopener" target="_blank">{}</a>').format(target, shown))
    return str(escape(label or target))  # another scheme (javascript:, data:…): shown, never a link


def _split(pattern: re.Pattern[str], text: str, between: Callable[[str], str],
           found: Callable[[re.Match[str]], str]) -> str:
    """``between`` for the text around each match of ``pattern``, ``found`` for each match, joined."""
    out, last = [], 0
    for match in pattern.finditer(text):
        out += [between(text[last:match.start()]), found(match)]
        last = match.end()
    return "".join([*out, between(text[last:])])


def _inline(text: str, names: Mapping[str, str]) -> str:
    """Escaped HTML of mrkdwn without code spans: entities, styles, emoji."""
    return _split(_ENTITY, text, lambda part: _styled(str(escape(unescape(part)))),
                  lambda m: _entity(m.group(1), names))


def _styled(html: str) -> str:
    """``html`` is escaped text: wrapping parts of it in our own tags keeps it safe."""
    for pattern, tag in _STYLES:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    return _EMOJI.sub(_emoji, html)


def _emoji(found: re.Match[str]) -> str:
    known = EMOJI.get(found.group(1))
    if known is None:
        return found.group(0)
    symbol, colour = known
    return f'<span class="emoji {colour}" title=":{found.group(1)}:">{symbol}</span>'


# A code span is stood in by private-use characters while styles are applied, so `*bold `code` text*` is
# bold around the code, as in Slack; the same characters in the text itself become U+FFFD first.
_HELD, _HELD_END = "\ue000", "\ue001"
_HELD_SPAN = re.compile(f"{_HELD}([0-9]+){_HELD_END}")


def _with_code(text: str, names: Mapping[str, str]) -> str:
    spans: list[str] = []

    def hold(found: re.Match[str]) -> str:
        spans.append(str(Markup("<code>{}</code>").format(unescape(found.group(1)))))
        return f"{_HELD}{len(spans) - 1}{_HELD_END}"

    held = _CODE.sub(hold, text.replace(_HELD, "\ufffd").replace(_HELD_END, "\ufffd"))
    return _HELD_SPAN.sub(lambda m: spans[int(m.group(1))], _inline(held, names))


def to_html(text: str, names: Mapping[str, str] | None = None) -> Markup:
    """Slack mrkdwn -> HTML in which every piece of the text is escaped; ``names``: user id -> name."""
    html = _split(_CODE_BLOCK, text, lambda part: _with_code(part, names or {}),
                  lambda m: str(Markup("<pre>{}</pre>").format(unescape(m.group(1)))))
    return Markup(html.replace("\n", "<br>"))


def plain_to_html(text: str) -> Markup:
    """plain_text: escaped, line breaks kept, emoji names shown as emoji (Slack's `emoji: true`)."""
    return Markup(_EMOJI.sub(_emoji, str(escape(text))).replace("\n", "<br>"))
