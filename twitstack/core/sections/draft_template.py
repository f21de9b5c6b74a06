"""Draft templates: the one sandboxed Jinja2 environment they render in, and their static check.

A template is checked when the settings load (so `config check` and start-up refuse it), not
when the first matching tweet arrives: an unknown variable would otherwise fail every draft
while the runs still report `ok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from twitstack.core.errors import TwitstackError

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

# What `tweet` offers a template (twitstack.scraper.drafts builds exactly these keys).
TWEET_FIELDS: tuple[str, ...] = (
    "id", "author", "author_id", "text", "lang", "likes", "retweets", "replies", "quotes",
    "url", "created_at", "retweeted_by",
)  # fmt: skip
TEMPLATE_VARIABLES: tuple[str, ...] = ("tweet", "job")


@cache
def _env() -> SandboxedEnvironment:
    # Jinja2 (~7 MiB resident) is imported on first use: every service loads these settings,
    # and only a scraper with draft rules ever checks or renders a template.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def template_problem(template: str) -> str | None:
    """Why `template` cannot render a draft (one sentence), or None if it can."""
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = _env().parse(template)
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
    from jinja2 import nodes

    found: set[str] = set()
    for attr in ast.find_all(nodes.Getattr):
        if _is_tweet(attr.node):
            found.add(attr.attr)
    for item in ast.find_all(nodes.Getitem):
        if _is_tweet(item.node) and isinstance(item.arg, nodes.Const):
            found.add(str(item.arg.value))
    return found


def _is_tweet(node: nodes.Node) -> bool:
    from jinja2 import nodes

    return isinstance(node, nodes.Name) and node.name == "tweet"


def render_template(template: str, variables: Mapping[str, Any]) -> str:
    """Render a checked template; raises TemplateRenderError on failure."""
    from jinja2 import TemplateError

    try:
        return _env().from_string(template).render(**variables).strip()
    except TemplateError as exc:
        raise TemplateRenderError(str(exc)) from None


class TemplateRenderError(TwitstackError):
    """A draft template failed to render (a value it needs is missing or of the wrong type)."""
