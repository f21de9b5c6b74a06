"""A high-fidelity fake of X API v2's write endpoints (posts, DMs, OAuth 2.0 refresh)."""

from twitstack.sandbox.xapi.app import create_xapi_app
from twitstack.sandbox.xapi.clock import SandboxClock
from twitstack.sandbox.xapi.config import (
    DEFAULT_BEARER_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_REFRESH_TOKEN,
    BearerTokenSpec,
    BillingMode,
    Endpoint,
    FaultKind,
    FaultSettings,
    LimitScope,
    OAuth1CredentialSpec,
    OAuth2ClientSpec,
    RefreshTokenSpec,
    SandboxUser,
    WindowLimit,
    XApiSandboxConfig,
)
from twitstack.sandbox.xapi.connection import SandboxConnectionReset
from twitstack.sandbox.xapi.faults import ScriptedResponse, ScriptEntry
from twitstack.sandbox.xapi.render import rendered_text, tco_link
from twitstack.sandbox.xapi.server import XApiSandbox, open_xapi_sandbox
from twitstack.sandbox.xapi.state import XApiState

__all__ = [
    "DEFAULT_BEARER_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_REFRESH_TOKEN",
    "BearerTokenSpec",
    "BillingMode",
    "Endpoint",
    "FaultKind",
    "FaultSettings",
    "LimitScope",
    "OAuth1CredentialSpec",
    "OAuth2ClientSpec",
    "RefreshTokenSpec",
    "SandboxClock",
    "SandboxConnectionReset",
    "SandboxUser",
    "ScriptEntry",
    "ScriptedResponse",
    "WindowLimit",
    "XApiSandbox",
    "XApiSandboxConfig",
    "XApiState",
    "create_xapi_app",
    "open_xapi_sandbox",
    "rendered_text",
    "tco_link",
]
