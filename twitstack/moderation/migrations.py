"""Versioned schema migrations of the moderation store (index + 1 = PRAGMA user_version)."""

from __future__ import annotations

from twitstack.moderation.media_badge import BACKFILL_SQL

_V1_AUTH = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'moderator', 'author', 'viewer')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_time ON audit_log(at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES users(id),
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE idempotency_keys (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (principal, key)
);
"""

_V2_HISTORY = """
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    account TEXT NOT NULL,
    author TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    not_before REAL,
    last_actor TEXT NOT NULL DEFAULT '',
    last_reason TEXT NOT NULL DEFAULT '',
    result TEXT,
    data TEXT NOT NULL
);
CREATE INDEX requests_by_state_created ON requests(state, created_at);
CREATE INDEX requests_by_state_updated ON requests(state, updated_at);
CREATE TABLE request_events (
    stream_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    from_state TEXT NOT NULL DEFAULT '',
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE INDEX request_events_by_request ON request_events(request_id, stream_id);
CREATE TABLE ingest_cursor (
    stream TEXT PRIMARY KEY,
    last_id TEXT NOT NULL
);
CREATE TABLE first_approvals (
    request_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    approver TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (request_id, revision, approver)
);
"""

# Per-state counts kept by triggers: the queue shows its total on every view, and count(*) over
# thousands of pending rows was a third of the page's cost.
_V3_STATE_COUNTS = """
CREATE TABLE state_counts (
    state TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
INSERT INTO state_counts (state, n) SELECT state, count(*) FROM requests GROUP BY state;
-- Covering indexes for the queue's author/account filters and their drop-downs.
CREATE INDEX requests_by_state_author ON requests(state, author);
CREATE INDEX requests_by_state_account ON requests(state, account);
CREATE TRIGGER requests_count_insert AFTER INSERT ON requests
BEGIN
    INSERT INTO state_counts (state, n) VALUES (NEW.state, 1)
    ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER requests_count_update AFTER UPDATE OF state ON requests
WHEN OLD.state != NEW.state
BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO state_counts (state, n) VALUES (NEW.state, 1)
    ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER requests_count_delete AFTER DELETE ON requests
BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
END;
"""

# Why X would refuse a draft (the scraper's `source.refusal`), as a column: the queue shows it on
# every row, and list queries never parse the full record.
_V4_REFUSAL = """
ALTER TABLE requests ADD COLUMN refusal TEXT NOT NULL DEFAULT '';
UPDATE requests SET refusal = coalesce(json_extract(data, '$.source.refusal'), '')
WHERE json_type(data, '$.source.refusal') = 'text';
"""

# Indexes that match each list's filter *and* order (created_at or updated_at, then id), so a
# filtered page is an index range read instead of a scan of every pending row plus a sort.
# The (state, author|account, ...) ones also serve the drop-downs' DISTINCT and the counts.
_V5_LIST_INDEXES = """
DROP INDEX requests_by_state_created;
DROP INDEX requests_by_state_updated;
DROP INDEX requests_by_state_author;
DROP INDEX requests_by_state_account;
CREATE INDEX requests_by_state_created ON requests(state, created_at, id);
CREATE INDEX requests_by_state_updated ON requests(state, updated_at, id);
CREATE INDEX requests_by_state_author ON requests(state, author, created_at, id);
CREATE INDEX requests_by_state_account ON requests(state, account, created_at, id);
CREATE INDEX requests_by_state_action ON requests(state, action, created_at, id);
"""

# Approvals bind to what was reviewed: a first approval of a two-person action counts only for
# the content hash it was given, so the old rows (bound to id and revision alone) are dropped and
# must be given again. Everyone who wrote any revision is an author for the four-eyes rule;
# `request_authors` remembers them where Redis cannot rewrite it.
_V6_APPROVAL_BINDING = """
DROP TABLE first_approvals;
CREATE TABLE first_approvals (
    request_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    approver TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (request_id, revision, content_hash, approver)
);
CREATE TABLE request_authors (
    request_id TEXT NOT NULL,
    author TEXT NOT NULL,
    PRIMARY KEY (request_id, author)
);
INSERT OR IGNORE INTO request_authors (request_id, author)
SELECT target, actor FROM audit_log WHERE action IN ('request.create', 'request.edit');
"""

# Card context (what a reply answers, who a DM goes to) as a small JSON column the lists read
# (json_patch onto {} drops the absent fields, as card_context.context_of does)
# without parsing each record; the post id an executed tweet created, to name our own posts
# when another request answers them; the content hash of the projected revision (what a bulk
# approval from the list binds to; rows projected before this stay without one until their next
# event, and cannot be approved from the list); and each revision's text, for diffs.
_V7_CARD_CONTEXT = """
ALTER TABLE requests ADD COLUMN context TEXT NOT NULL DEFAULT '';
UPDATE requests SET context = json_patch('{}', json_object(
    'reply_to', json_extract(data, '$.payload.reply.in_reply_to_tweet_id'),
    'quote', json_extract(data, '$.payload.quote_tweet_id'),
    'recipient', json_extract(data, '$.payload.recipient_id'),
    'target', json_extract(data, '$.payload.tweet_id'),
    'source_id', json_extract(data, '$.source.id'),
    'source_author', json_extract(data, '$.source.author'),
    'source_author_id', json_extract(data, '$.source.author_id'),
    'source_text', substr(json_extract(data, '$.source.text'), 1, 200)));
ALTER TABLE requests ADD COLUMN posted_id TEXT;
ALTER TABLE requests ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
UPDATE requests SET posted_id = json_extract(result, '$.tweet_id')
WHERE state = 'executed' AND action = 'tweet' AND json_type(result, '$.tweet_id') = 'text';
CREATE INDEX requests_by_posted_id ON requests(posted_id) WHERE posted_id IS NOT NULL;
CREATE TABLE request_revisions (
    request_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    text TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (request_id, revision)
);
INSERT OR IGNORE INTO request_revisions (request_id, revision, text, at)
SELECT id, revision, text, updated_at FROM requests;
"""

# What a request attaches ("image:2", "video:1", "gif:1", "ids:1" or ""), for the queue's media
# badge without parsing each record (see media_badge).
_V8_MEDIA = "ALTER TABLE requests ADD COLUMN media TEXT NOT NULL DEFAULT '';\n" + BACKFILL_SQL

MIGRATIONS: tuple[str, ...] = (
    _V1_AUTH,
    _V2_HISTORY,
    _V3_STATE_COUNTS,
    _V4_REFUSAL,
    _V5_LIST_INDEXES,
    _V6_APPROVAL_BINDING,
    _V7_CARD_CONTEXT,
    _V8_MEDIA,
)
