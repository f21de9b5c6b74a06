"""One taken message: decode it, run it through the intake, or dead-letter it with a reason."""

from __future__ import annotations

from redis.exceptions import RedisError

from twitstack.core.logging import get_logger, log_context
from twitstack.writer.account_health import AccountHealth
from twitstack.writer.intake import RequestIntake
from twitstack.writer.journal import WriterJournal
from twitstack.writer.media_upload import MediaUploader
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.send_steps import QueueTicket
from twitstack.writes.errors import UnreadableError, WireFormatError
from twitstack.writes.identity import message_identity
from twitstack.writes.models import ModerationStatus, WriteRequest
from twitstack.writes.quarantine import Quarantine, is_data_error
from twitstack.writes.queue import ReliableQueue
from twitstack.writes.wire import decode_write_request

S = ModerationStatus
_log = get_logger("twitstack.writer")


class MessageHandler:
    """Turns one raw write_queue message into an executed, refused or dead-lettered request."""

    def __init__(
        self,
        queue: ReliableQueue,
        journal: WriterJournal,
        media: MediaUploader,
        account_health: AccountHealth,
        quarantine: Quarantine,
        metrics: WriterMetrics,
    ) -> None:
        self.queue = queue
        self.journal = journal
        self.media = media
        self.account_health = account_health
        self.quarantine = quarantine
        self.metrics = metrics

    async def handle(self, raw: bytes, intake: RequestIntake) -> None:
        """Decode one taken message and run it through `intake`, dead-lettering what cannot run."""
        try:
            request = decode_write_request(raw)
        except WireFormatError as exc:
            await self.queue.dead_letter(raw, reason=exc.reason_code, detail=exc.message[:500])
            self.metrics.dead_letters.labels(reason=exc.reason_code).inc()
            _log.warning(
                "writer.message_dead_lettered",
                reason=exc.reason_code,
                field=exc.field,
                **message_identity(raw),
            )
            return
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            # A decoder bug on one message must not take the writer down with it.
            _log.exception("writer.message_undecodable", **message_identity(raw))
            await self.queue.dead_letter(raw, reason="decoder_error", detail=repr(exc)[:500])
            self.metrics.dead_letters.labels(reason="decoder_error").inc()
            return
        # A producer's new request naming a file the store lacks: refused on the way in.
        absent = await self.media.missing(request) if request.moderation is S.PENDING else None
        if absent is not None:
            await self.queue.dead_letter(raw, reason="media_missing", detail=absent[:500])
            self.metrics.dead_letters.labels(reason="media_missing").inc()
            _log.warning("writer.message_dead_lettered", reason="media_missing")
            return
        # Every line logged while this request is handled (retries, state changes, refusals)
        # names it, so an operator can follow one request through the logs.
        with log_context(
            request_id=request.id, account=request.account, action=str(request.action)
        ):
            await self._handle_request(raw, request, intake)

    async def _handle_request(
        self, raw: bytes, request: WriteRequest, intake: RequestIntake
    ) -> None:
        # An account connected since the last sync: look for it now rather than fail the request.
        await self.account_health.ensure(request.account)
        try:
            acked = await intake.handle(request, QueueTicket(self.queue.processing, raw))
        except (RedisError, OSError) as exc:
            if not is_script_data_error(exc):
                raise
            # The same script stops the same way on every retry: handing the message back
            # would have it taken again at once, for ever. Kept like a bug's message.
            await self._keep_for_operator(raw, request, exc)
            return
        except UnreadableError as exc:
            # The message is fine but its ledger record is not: nothing can move that record,
            # so the message waits in the dead letters while the record is quarantined.
            await self.queue.dead_letter(raw, reason="unreadable_record", detail=exc.detail[:500])
            self.metrics.dead_letters.labels(reason="unreadable_record").inc()
            _log.warning("writer.message_dead_lettered", reason="unreadable_record")
            await self.quarantine.put_error(exc)
            return
        except Exception as exc:
            # A bug must not stop the consumer; the message is kept for an operator, and a
            # request left `sending` is settled by the reconciler like any abandoned attempt.
            await self._keep_for_operator(raw, request, exc)
            return
        if not acked:
            await self.queue.ack(raw)

    async def _keep_for_operator(self, raw: bytes, request: WriteRequest, exc: Exception) -> None:
        _log.exception("writer.message_failed")
        await self.queue.dead_letter(raw, reason="handler_error", detail=repr(exc)[:500])
        self.metrics.dead_letters.labels(reason="handler_error").inc()
        _log.warning("writer.message_dead_lettered", reason="handler_error")
        try:
            await self.journal.flag_stranded(request, "handler_error")
        except (RedisError, OSError):
            raise
        except Exception:
            # The record that broke the handler may break this move's reply too (e.g. a
            # junk attempt count): the message is kept all the same, and the consumer lives.
            _log.exception("writer.flag_stranded_failed")


def is_script_data_error(exc: BaseException) -> bool:
    """Whether `exc` is a Lua script stopped by the data it read (WRONGTYPE, a count that is
    none, a runtime error): the same on every retry, unlike an outage, a read-only replica,
    OOM, MISCONF or an ACL denial (their own exception classes, or the codes above)."""
    return is_data_error(exc) and "@user_script:" in str(exc)
