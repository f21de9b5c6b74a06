"""Draft templates: the one sandboxed Jinja2 environment they render in, and their static check.

A template is checked when the settings load (so `config check` and start-up refuse it), not
when the first matching tweet arrives: an unknown variable would otherwise fail every draft
while the runs still report `ok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from twitstack.core.errors import TwitstackError

# What `tweet` offers a template (twitstack.scraper.drafts builds exactly these keys).
TWEET_FIELDS: tuple[str, ...] = (
    "id", "author", "author_id", "text", "lang", "likes", "retweets", "replies", "quotes",
    "url", "created_at", "retweeted_by",
)  # fmt: skip
TEMPLATE_VARIABLES: tuple[str, ...] = ("tweet", "job")

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def template_problem(template: str) -> str | None:
    """Why `template` cannot render a draft (one sentence), or None if it can."""
    try:
        ast = _env.parse(template)
    except TemplateSyntaxError as exc:
        return f"template does not parse (line {exc.lineno}): {exc.message}"
    unknown = sorted(meta.find_undeclared_variables(ast) - set(TEMPLATE_VARIABLES))
    if unknown:
        return f"template uses {', '.join(unknown)}; only {' and '.join(TEMPLATE_VARIABLES)} exist"
    missing = sorted(_tweet_attributes(ast) - set(TWEET_FIELDS))
    if missing:
        fields = ", ".join(TWEET_FIELDS)
        return f"template uses tweet.{missing[0]}, which does not exist (tweet has: {fields})"
    return None


def _tweet_attributes(ast: nodes.Template) -> set[str]:
    found: set[str] = set()
    for attr in ast.find_all(nodes.Getattr):
        if _is_tweet(attr.node):
            found.add(attr.attr)
    for item in ast.find_all(nodes.Getitem):
        if _is_tweet(item.node) and isinstance(item.arg, nodes.Const):
            found.add(str(item.arg.value))
    return found


def _is_tweet(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "tweet"


def render_template(template: str, variables: Mapping[str, Any]) -> str:
    """Render a checked template; raises TemplateRenderError on failure."""
    try:
        return _env.from_string(template).render(**variables).strip()
    except TemplateError as exc:
        raise TemplateRenderError(str(exc)) from None


class TemplateRenderError(TwitstackError):
    """A draft template failed to render (a value it needs is missing or of the wrong type)."""
