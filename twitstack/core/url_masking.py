"""Masking the credentials inside URLs (`redis://user:pass@host`) wherever settings are shown."""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ — up to the *last* '@' before the first '/' or blank: clients such as
# redis-py take a raw '@' or quote in a password, and stopping at the first one showed the rest.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s]+)@")
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# redis-py (and others) also take credentials as query parameters: `redis://h/0?password=pw`.
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&](?:password|passwd|pass|pwd|token|secret|auth)[^=&#\s]*=)[^&#\s'\"]*",
    re.IGNORECASE,
)


def mask_query_secrets(text: str) -> str:
    """`text` with the value of every password-like URL query parameter replaced by `***`."""
    return _QUERY_SECRET.sub(lambda m: f"{m.group('name')}{MASK}", text)


def _masked(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    # `user:password` keeps the user name; a lone userinfo may itself be a token.
    return f"{match.group('scheme')}{user}:{MASK}@" if colon else f"{match.group('scheme')}{MASK}@"


def mask_url_credentials(text: str) -> str:
    """`text` with the password (or token) of every URL in it replaced by `***`."""
    return mask_query_secrets(_USERINFO.sub(_masked, text))


def mask_url_value(value: str) -> str:
    """A setting that is (or was meant to be) one URL, with everything before its last '@'
    masked: a password may hold blanks or quotes, and a mistyped scheme (`redis//:pw@h`)
    still carries one."""
    value = mask_query_secrets(value)
    head, at, host = value.rpartition("@")
    if not at:
        return value
    scheme, sep, userinfo = head.partition("://")
    if not sep:
        return f"{MASK}@{host}"
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}:{MASK}@{host}" if colon else f"{scheme}://{MASK}@{host}"


def mask_setting(value: str) -> str:
    """A setting's value for display: one URL masked as a whole, any other text per URL in it."""
    return mask_url_value(value) if _URL_START.match(value) else mask_url_credentials(value)
