"""Masking the credentials inside URLs (`redis://user:pass@host`) wherever settings are shown."""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ — userinfo stops at the first '/', '@' or blank, as in RFC 3986.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]+)@")


def _masked(match: re.Match[str]) -> str:
    user, colon, _ = match.group("userinfo").partition(":")
    # `user:password` keeps the user name; a lone userinfo may itself be a token.
    return f"{match.group('scheme')}{user}:{MASK}@" if colon else f"{match.group('scheme')}{MASK}@"


def mask_url_credentials(text: str) -> str:
    """`text` with the password (or token) of every URL in it replaced by `***`."""
    return _USERINFO.sub(_masked, text)
