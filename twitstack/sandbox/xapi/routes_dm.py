"""Handlers for one-to-one direct messages: send, and read the conversation back."""

from __future__ import annotations

from typing import Any

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.pagination import decode_token, next_token, parse_max_results
from twitstack.sandbox.xapi.pipeline import ApiCall, ApiResult, json_body
from twitstack.sandbox.xapi.render import dm_event_object
from twitstack.sandbox.xapi.validation import validate_dm


def _invalid(parameter: str, value: Any, message: str) -> ApiResult:
    return ApiResult(400, problems.invalid_request([(parameter, value, message)]), problem=True)


def create_dm(call: ApiCall) -> ApiResult:
    """POST /2/dm_conversations/with/{participant_id}/messages: store the message, answer 201."""
    participant_id: str = call.request.path_params["participant_id"]
    body, error = json_body(call)
    if error is not None:
        return error
    text, attachments, found = validate_dm(body)
    if found:
        return ApiResult(400, problems.invalid_request(found), problem=True)
    content = call.state.content
    recipient = content.users.get(participant_id)
    if recipient is None:
        return _invalid("participant_id", participant_id, "The participant could not be found.")
    if participant_id == call.user_id:
        return _invalid("participant_id", participant_id, "You cannot message yourself.")
    if not recipient.accepts_dms:
        return ApiResult(403, problems.dm_refused(participant_id), problem=True)
    message = content.send_dm(call.user_id, participant_id, text, attachments)
    data = {"dm_conversation_id": message.conversation_id, "dm_event_id": message.id}
    return ApiResult(201, {"data": data})


def dm_events(call: ApiCall) -> ApiResult:
    """GET /2/dm_conversations/with/{participant_id}/dm_events: events newest first."""
    if not call.state.dm_read_enabled:
        return ApiResult(403, problems.FORBIDDEN, problem=True)
    participant_id: str = call.request.path_params["participant_id"]
    query = call.request.query_params
    limit = parse_max_results(query.get("max_results"), low=1, high=100, default=100)
    if not isinstance(limit, int):
        return ApiResult(400, problems.invalid_request([limit]), problem=True)
    events = call.state.content.conversation(call.user_id, participant_id)
    token = query.get("pagination_token")
    if token is not None:
        after = decode_token(token)
        if after is None:
            return _invalid("pagination_token", token, "unknown token")
        events = [e for e in events if int(e.id) < int(after)]
    page = events[:limit]
    meta: dict[str, Any] = {"result_count": len(page)}
    if len(events) > limit:
        meta["next_token"] = next_token(page[-1].id)
    if not page:
        return ApiResult(200, {"meta": meta})
    return ApiResult(200, {"data": [dm_event_object(e) for e in page], "meta": meta})
