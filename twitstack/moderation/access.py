"""Who is calling (session cookie or bearer JWT) and whether the route table lets them in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Literal
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from twitstack.moderation.deps import ModerationDeps
from twitstack.moderation.roles import Rule, rule_for
from twitstack.moderation.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SAFE_METHODS,
    cross_site,
    tokens_match,
)
from twitstack.moderation.sessions import Session
from twitstack.moderation.tokens import TokenError
from twitstack.moderation.users import User

Endpoint = Callable[[Request], Awaitable[Response]]
IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a user, how they authenticated, and (for tokens) their scopes."""

    user: User
    via: Literal["session", "token"]
    session: Session | None = None
    scopes: tuple[str, ...] = ()


def deps_of(request: Request) -> ModerationDeps:
    deps: ModerationDeps = request.app.state.deps
    return deps


def principal_of(request: Request) -> Principal:
    """The caller of a guarded, non-public route (the guard guarantees one)."""
    principal: Principal | None = request.state.principal
    if principal is None:
        raise RuntimeError("principal_of() on a route that let anonymous callers in")
    return principal


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _parse_ip(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: IPv4Address | IPv6Address | None, proxies: Sequence[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in proxies)


def is_trusted_proxy(peer: str, proxies: Sequence[IPNetwork]) -> bool:
    """Whether the TCP peer is one of the configured reverse proxies."""
    return _trusted(_parse_ip(peer), proxies)


def forwarded_client(peer: str, forwarded_for: str | None, proxies: Sequence[IPNetwork]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy.

    Then X-Forwarded-For is walked from the right (the entries the trusted proxies appended)
    to the first address that is not itself a trusted proxy; anything to its left was
    written by the client and is never believed. A garbled entry stops the walk at the
    last trusted hop, so a bad header cannot pick an arbitrary address.
    """
    if not forwarded_for or not _trusted(_parse_ip(peer), proxies):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        address = _parse_ip(entry)
        if address is None:
            break
        client = str(address)
        if not _trusted(address, proxies):
            break
    return client


def client_ip(request: Request) -> str:
    """The address throttling and the audit log use (see `forwarded_client`)."""
    peer = request.client.host if request.client else "unknown"
    proxies = deps_of(request).settings.trusted_proxies
    # Every X-Forwarded-For line, in order: a proxy may add its own line after the client's
    # instead of appending to it, and reading only the first let the client pick its address.
    lines = request.headers.getlist("x-forwarded-for")
    return forwarded_client(peer, ", ".join(lines) if lines else None, proxies)


def deny(request: Request, status: int, message: str) -> Response:
    """A refusal in the caller's language: JSON for the API, text for pages."""
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


async def resolve_principal(request: Request) -> Principal | None:
    """The caller, from a bearer token (API) or the session cookie; None if anonymous."""
    deps = deps_of(request)
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        try:
            claims = deps.tokens.verify(authorization[7:].strip())
        except TokenError:
            return None
        key = await deps.apikeys.get(claims.key_id)
        # Revocation and disabling take effect on the next request, whatever the token's exp.
        if key is None or not key.active or key.owner_id != claims.user_id:
            return None
        user = await deps.users.get(claims.user_id)
        if user is None or user.disabled:
            return None
        return Principal(user=user, via="token", scopes=claims.scopes)
    token = request.cookies.get(deps.cookies.session_name)
    if not token:
        return None
    session = await deps.sessions.resolve(token)
    if session is None:
        return None
    return Principal(user=session.user, via="session", session=session)


# A form's parts are held until the request ends (files under 1 MB, and every field, in
# memory). The upload routes accept bodies of 520 MB, so the parser's defaults (1,000 files,
# 1,000 fields of 1 MB) would let one request pin hundreds of MB of RAM; no form of ours
# has more than 4 files (the New form) or about 60 fields.
FORM_MAX_FILES = 4
FORM_MAX_FIELDS = 128  # the New form: up to 30 thread parts, 4 poll options, ~20 others
FORM_MAX_FIELD_BYTES = 256 * 1024


async def read_form(request: Request) -> FormData:
    """The request's form, parsed with our bounds (Starlette keeps the first parse, so every
    caller that may parse first must go through here); too many parts is a 400."""
    return await request.form(
        max_files=FORM_MAX_FILES, max_fields=FORM_MAX_FIELDS, max_part_size=FORM_MAX_FIELD_BYTES
    )


async def csrf_ok(request: Request, principal: Principal | None) -> bool:
    """Unsafe methods need a token matching the session's (or the pre-login cookie's)."""
    if request.method in SAFE_METHODS:
        return True
    if principal is not None and principal.via == "token":
        return True  # no ambient credential: a cross-site page cannot attach a bearer token
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await read_form(request)
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if principal is not None and principal.session is not None:
        return tokens_match(principal.session.csrf_token, given)
    deps = deps_of(request)
    return tokens_match(request.cookies.get(deps.cookies.csrf_name), given)


def _allowed(rule: Rule, principal: Principal) -> bool:
    assert rule.role is not None
    if principal.user.role < rule.role:
        return False
    if principal.via == "token":
        return rule.scope is not None and rule.scope in principal.scopes
    return True


def guarded(path: str, endpoint: Endpoint, *, csrf_exempt: bool = False) -> Endpoint:
    """Wrap an endpoint so the route table, authentication and CSRF are always enforced."""

    async def guard(request: Request) -> Response:
        request.scope["twitstack.route"] = path
        rule = rule_for(request.method, path)
        if rule is None:
            return deny(request, 403, "forbidden: this route has no declared access rule")
        principal = await resolve_principal(request)
        request.state.principal = principal
        if not rule.public:
            if principal is None:
                if is_api(request):
                    return deny(request, 401, "authentication required")
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/login?next={target}", status_code=303)
            if not _allowed(rule, principal):
                return deny(request, 403, "forbidden: your role may not do this")
        unsafe = request.method not in SAFE_METHODS
        if unsafe and cross_site(request.headers.get("sec-fetch-site")):
            return deny(request, 403, "forbidden: cross-site request")
        if not csrf_exempt and not await csrf_ok(request, principal):
            return deny(request, 403, "forbidden: missing or invalid CSRF token")
        return await endpoint(request)

    guard.__name__ = getattr(endpoint, "__name__", "guarded")
    guard.__doc__ = endpoint.__doc__
    return guard
