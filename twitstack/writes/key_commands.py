"""`twitstack keys generate|public`: approval signing key pairs for moderation and writers."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from twitstack.writes.errors import KeyFormatError
from twitstack.writes.signing import (
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_to_base64,
    public_key_to_base64,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from twitstack.core.config import Settings

STDOUT = "-"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `keys generate` and `keys public`."""
    keys = subparsers.add_parser("keys", help="approval signing keys (generate, derive public)")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    generate = actions.add_parser(
        "generate",
        help="a new Ed25519 key pair: private key to a file, public key printed",
        description="Write a new approval signing key (base64, mode 0600) to FILE for the "
        "moderation service ([moderation] approval_key_file) and print its public key for "
        "[writer] approval_public_keys. FILE '-' writes the private key to stdout (refused "
        "on a terminal) and prints the public key to stderr.",
    )
    generate.add_argument(
        "--private-out",
        required=True,
        metavar="FILE",
        help="new file for the private key (mode 0600; never overwritten); '-' = stdout",
    )
    generate.add_argument("--json", action="store_true", help="machine-readable output")
    generate.set_defaults(handler=generate_command)
    public = actions.add_parser(
        "public",
        help="print the public key of a private key file",
        description="Derive the public key (and key id) of an approval signing key, and say "
        "whether this config's [writer] approval_public_keys trusts it.",
    )
    public.add_argument(
        "--key-file",
        required=True,
        metavar="FILE",
        help="private key, base64 or PEM, as moderation reads it; '-' = stdin",
    )
    public.add_argument("--json", action="store_true", help="machine-readable output")
    public.set_defaults(handler=public_command)


def generate_command(args: argparse.Namespace, settings: Settings) -> int:
    """Create a key pair; the private half goes only where --private-out says."""
    key = generate_private_key()
    private_text = private_key_to_base64(key) + "\n"
    target: str = args.private_out
    if target == STDOUT:
        # A private key on a terminal ends up in scrollback and screen recordings.
        if sys.stdout.isatty():
            print(
                "twitstack: keys: refusing to print a private key to a terminal; "
                "redirect stdout or give --private-out FILE",
                file=sys.stderr,
            )
            return 2
        sys.stdout.write(private_text)
        sys.stdout.flush()
        _describe(key.public_key(), settings, None, as_json=args.json, out=sys.stderr)
        return 0
    path = Path(target).expanduser().absolute()
    try:
        write_private_key(path, private_text)
    except OSError as exc:
        print(f"twitstack: keys: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _describe(key.public_key(), settings, path, as_json=args.json, out=sys.stdout)
    return 0


def public_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the public key of --key-file (never the private key)."""
    source: str = args.key_file
    try:
        text = sys.stdin.read() if source == STDOUT else Path(source).read_text("utf-8")
        key = load_private_key(text)
    except OSError as exc:
        print(f"twitstack: keys: cannot read {source}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (KeyFormatError, UnicodeDecodeError) as exc:
        print(f"twitstack: keys: {source}: {exc}", file=sys.stderr)
        return 1
    _describe(key.public_key(), settings, None, as_json=args.json, out=sys.stdout)
    return 0


def write_private_key(path: Path, text: str) -> None:
    """Create `path` holding `text`, readable by its owner only; never replaces a file.

    O_EXCL makes an existing key (perhaps the one in use) an error instead of a silent loss.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # open()'s mode is filtered by the umask; be exact
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _describe(
    public: Ed25519PublicKey,
    settings: Settings,
    private_path: Path | None,
    *,
    as_json: bool,
    out: TextIO,
) -> None:
    encoded = public_key_to_base64(public)
    kid = key_id(public)
    trusted = _trusted(settings, kid)
    if as_json:
        record: dict[str, object] = {
            "key_id": kid,
            "public_key": encoded,
            "trusted_by_writer_config": trusted,
        }
        if private_path is not None:
            record["private_key_file"] = str(private_path)
        print(json.dumps(record), file=out)
        return
    if private_path is not None:
        print(f"private key: {private_path} (mode 0600)", file=out)
        print(f'  for moderation: approval_key_file = "{private_path}"', file=out)
    print(f"key id:      {kid}", file=out)
    print(f"public key:  {encoded}", file=out)
    print(f'  for writers:    approval_public_keys = [..., "{encoded}"]', file=out)
    listed = "yes" if trusted else "no"
    print(f"listed in this config's [writer] approval_public_keys: {listed}", file=out)


def _trusted(settings: Settings, kid: str) -> bool:
    """Whether the config's writer already trusts the key with id `kid`."""
    for text in settings.writer.approval_public_keys:
        try:
            # Compare ids, not strings: the config may hold PEM or unpadded base64.
            if key_id(load_public_key(text)) == kid:
                return True
        except KeyFormatError:
            continue
    return False
