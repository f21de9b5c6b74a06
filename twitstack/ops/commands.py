"""`add_commands`: registers `doctor`, `enqueue`, `queue` and `dlq` with the main parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from twitstack.core.commands import lazy_handler
from twitstack.writes.models import WriteAction

DEFAULT_TIMEOUT_S = 5.0  # each network check of `doctor`
_QUEUE = "twitstack.ops.queue_commands"

DEFAULT_DLQ_LIMIT = 50


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, found {value}")
    return number


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--account", metavar="NAME", help="X account (default: writer's default)")
    parser.add_argument("--not-before", metavar="ISO", help="earliest time, e.g. 2030-01-01T09:00Z")
    parser.add_argument("--expires-at", metavar="ISO", help="drop the request if not sent by then")
    parser.add_argument("--author", metavar="NAME", help="author shown to moderators")


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="check config, Redis, X accounts, clocks, ports, dirs")
    doctor.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"limit for each network check in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    doctor.set_defaults(handler=lazy_handler("twitstack.ops.doctor", "doctor_command"))


def _tagged(kind: str) -> Callable[[str], tuple[str, str]]:
    return lambda path: (kind, path)


def add_media_options(parser: argparse.ArgumentParser) -> None:
    """--image/--gif/--video PATH (in order) and --alt TEXT (the nth describes the nth file)."""
    for kind in ("image", "gif", "video"):
        parser.add_argument(
            f"--{kind}", dest="media", action="append", metavar="PATH", type=_tagged(kind),
            help=f"attach a {kind} file (type read from its bytes; repeat --image for up to 4)",
        )  # fmt: skip
    parser.add_argument(
        "--alt", dest="alts", action="append", metavar="TEXT",
        help="alt text of the file given at the same position (at most 1,000 characters)",
    )  # fmt: skip


def _add_enqueue(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    enqueue = sub.add_parser("enqueue", help="put a write request on write_queue (pending)")
    kinds = enqueue.add_subparsers(dest="action", required=True, metavar="ACTION")
    tweet = kinds.add_parser(WriteAction.TWEET.value, help="post a tweet")
    tweet.add_argument("text", metavar="TEXT", help="the tweet's text ('-' reads stdin)")
    tweet.add_argument("--reply-to", metavar="ID", help="id of the tweet this replies to")
    tweet.add_argument("--quote", metavar="ID|URL", help="the post this quotes (id or x.com URL)")
    tweet.add_argument(
        "--poll", action="append", metavar="OPTION", help="a poll option (2-4 of them, repeat)"
    )
    tweet.add_argument(
        "--poll-minutes", type=int, metavar="N", help="how long the poll runs (5-10080 minutes)"
    )
    add_media_options(tweet)
    thread = kinds.add_parser(WriteAction.THREAD.value, help="post a thread (2-25 parts)")
    thread.add_argument("parts", metavar="PART", nargs="+", help="each part's text, in order")
    thread.add_argument("--reply-to", metavar="ID", help="id of the tweet the first part answers")
    dm = kinds.add_parser(WriteAction.DM.value, help="send a direct message")
    dm.add_argument("recipient_id", metavar="RECIPIENT_ID")
    dm.add_argument("text", metavar="TEXT", help="the message ('-' reads stdin)")
    delete = kinds.add_parser(WriteAction.DELETE.value, help="delete a tweet")
    delete.add_argument("tweet_id", metavar="TWEET_ID")
    for parser in (tweet, thread, dm, delete):
        _add_request_options(parser)
        parser.set_defaults(handler=lazy_handler(_QUEUE, "enqueue_command"))


def _add_queue(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser("queue", help="inspect the write queue")
    actions = queue.add_subparsers(dest="queue_command", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="depths, requests per state, oldest ages")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(handler=lazy_handler(_QUEUE, "stats_command"))


def _add_dlq(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="list, retry or purge dead letters (audited)")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters with reason and a short preview")
    listing.add_argument("--limit", type=_positive, default=DEFAULT_DLQ_LIMIT, metavar="N")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=lazy_handler(_QUEUE, "dlq_list_command"))
    changes = (
        ("retry", "push the original message back onto write_queue", "dlq_retry_command"),
        ("purge", "remove the entry for good", "dlq_purge_command"),
    )
    for name, help_text, handler in changes:
        change = actions.add_parser(name, help=help_text)
        target = change.add_mutually_exclusive_group(required=True)
        target.add_argument("entry_id", nargs="?", metavar="ID", help="id from `dlq list`")
        target.add_argument("--all", action="store_true", help="every dead letter")
        change.set_defaults(handler=lazy_handler(_QUEUE, handler))


def _add_media(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    media = sub.add_parser("media", help="the media store: add files, prune old ones")
    actions = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    put = actions.add_parser("put", help="store a file; print the attachment record (JSON)")
    put.add_argument("path", metavar="PATH")
    put.add_argument("--alt", metavar="TEXT", help="alt text to put in the record")
    put.set_defaults(handler=lazy_handler("twitstack.ops.media_files", "put_command"))
    prune = actions.add_parser(
        "prune", help="delete files older than retention that no live request names"
    )
    prune.add_argument("--older-than-days", type=float, metavar="DAYS",
                       help="instead of [media] retention_days")  # fmt: skip
    prune.set_defaults(handler=lazy_handler("twitstack.ops.media_files", "prune_command"))


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the operator commands with the main parser."""
    _add_doctor(subparsers)
    _add_enqueue(subparsers)
    _add_media(subparsers)
    _add_queue(subparsers)
    _add_dlq(subparsers)
