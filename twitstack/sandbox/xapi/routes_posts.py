"""Handlers for posts and users: create, delete, the user timeline, and /2/users/me."""

from __future__ import annotations

from typing import Any

from twitstack.sandbox.xapi import problems
from twitstack.sandbox.xapi.pagination import (
    decode_token,
    next_token,
    parse_max_results,
    parse_time,
)
from twitstack.sandbox.xapi.pipeline import ApiCall, ApiResult, json_body
from twitstack.sandbox.xapi.render import rendered_text, tweet_object
from twitstack.sandbox.xapi.validation import Problem, validate_tweet

_NOT_OWNER: dict[str, Any] = {
    "detail": "You are not authorized to delete this Tweet.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


def _invalid(found: list[Problem]) -> ApiResult:
    return ApiResult(400, problems.invalid_request(found), problem=True)


def _text_refusal(call: ApiCall, text: str, message: str) -> ApiResult:
    if call.state.config.invalid_text_status == 400:
        return _invalid([("text", text, message)])
    body = {"detail": message, "type": "about:blank", "title": "Forbidden", "status": 403}
    return ApiResult(403, body, problem=True)


def create_tweet(call: ApiCall) -> ApiResult:
    """POST /2/tweets: validate, refuse duplicates and dangling replies, store, answer 201."""
    body, error = json_body(call)
    if error is not None:
        return error
    request = validate_tweet(body)
    if request.problems:
        return _invalid(request.problems)
    if request.text_problem is not None:
        return _text_refusal(call, request.text, request.text_problem)
    content, config = call.state.content, call.state.config
    target = content.find_post(request.reply_to) if request.reply_to is not None else None
    if request.reply_to is not None and target is None:
        return ApiResult(403, problems.REPLY_TARGET_MISSING, problem=True)
    if target is not None and not content.may_reply(call.user_id, target):
        return ApiResult(403, problems.REPLY_NOT_ENGAGED, problem=True)
    if call.state.check_media_ids:
        stale = [m for m in request.media_ids if call.state.media.live(m, call.user_id) is None]
        if stale:
            # X's answer for an unknown, foreign, unprocessed or expired media id.
            return _invalid([("media.media_ids", stale[0], "Your media IDs are invalid.")])
    if request.text and content.find_duplicate(
        call.user_id,
        request.text,
        window_s=config.duplicate_window_s,
        lookback=config.duplicate_lookback_posts,
    ):
        return ApiResult(403, problems.DUPLICATE_CONTENT, problem=True)
    assert isinstance(body, dict)  # validate_tweet reported anything else as a problem
    post = content.create_post(
        call.user_id,
        request.text,
        body,
        reply_to=request.reply_to,
        quote_of=request.quote_of,
        media_ids=request.media_ids,
    )
    data = {"id": post.id, "text": rendered_text(post), "edit_history_tweet_ids": [post.id]}
    return ApiResult(201, {"data": data})


def delete_tweet(call: ApiCall) -> ApiResult:
    """DELETE /2/tweets/{id}: the owner deletes; unknown ids get 404 or `deleted: false`."""
    post_id: str = call.request.path_params["id"]
    if not post_id.isdigit():
        return _invalid(
            [("id", post_id, f"The `id` query parameter value [{post_id}] is not valid")]
        )
    state = call.state
    post = state.content.posts.get(post_id)
    if post is None:
        if state.delete_unknown == "deleted_false":
            return ApiResult(200, {"data": {"deleted": False}})
        body = {**problems.resource_not_found("tweet", "id", post_id), "status": 404}
        return ApiResult(404, body, problem=True)
    if post.author_id != call.user_id:
        return ApiResult(403, _NOT_OWNER, problem=True)
    state.content.delete_post(post_id)
    return ApiResult(200, {"data": {"deleted": True}})


def users_me(call: ApiCall) -> ApiResult:
    """GET /2/users/me: the authenticated user."""
    user = call.state.content.users.get(call.user_id)
    if user is None:
        # A token for a user the sandbox no longer knows: X would call it unauthorized.
        return ApiResult(401, problems.UNAUTHORIZED, problem=True)
    return ApiResult(200, {"data": {"id": user.id, "name": user.name, "username": user.username}})


def user_tweets(call: ApiCall) -> ApiResult:
    """GET /2/users/{id}/tweets: live posts newest first, rendered as X shows them."""
    user_id: str = call.request.path_params["id"]
    query = call.request.query_params
    if user_id not in call.state.content.users:
        return ApiResult(200, {"errors": [problems.resource_not_found("user", "id", user_id)]})
    limit = parse_max_results(query.get("max_results"), low=5, high=100, default=10)
    if not isinstance(limit, int):
        return _invalid([limit])
    posts = call.state.content.timeline(user_id)
    found: list[Problem] = []
    for name, keep_newer in (("start_time", True), ("end_time", False)):
        if name in query:
            bound = parse_time(query[name])
            if bound is None:
                found.append((name, query[name], f"`{name}` must be an RFC 3339 timestamp"))
                continue
            posts = [p for p in posts if (p.created_at >= bound) == keep_newer]
    since = query.get("since_id")
    if since is not None and not since.isdigit():
        found.append(("since_id", since, "`since_id` must be a numeric id string"))
    elif since is not None:
        posts = [p for p in posts if int(p.id) > int(since)]
    if "pagination_token" in query:
        after = decode_token(query["pagination_token"])
        if after is None:
            found.append(("pagination_token", query["pagination_token"], "unknown token"))
        else:
            posts = [p for p in posts if int(p.id) < int(after)]
    if found:
        return _invalid(found)
    fields = set(query.get("tweet.fields", "").split(","))
    page = posts[:limit]
    if not page:
        return ApiResult(200, {"meta": {"result_count": 0}})
    meta: dict[str, Any] = {
        "result_count": len(page),
        "newest_id": page[0].id,
        "oldest_id": page[-1].id,
    }
    if len(posts) > limit:
        meta["next_token"] = next_token(page[-1].id)
    return ApiResult(200, {"data": [tweet_object(p, fields) for p in page], "meta": meta})
