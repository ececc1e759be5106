-- Tandem store, schema version 2: live messaging.
-- Append-only: never edit this file once released.

-- What this device sends to one account, before it is sealed: the first step of the fan-out.
-- A row is written in the same transaction as the message (or reaction, receipt...) it
-- carries; when the account's device list is known, the row is sealed once per device of the
-- newest list into `outbox` rows and removed, in one transaction. Sealing late (not at send
-- time) is what makes a device linked in between receive the message, and lets a message to a
-- contact whose device list has not arrived yet wait here.
CREATE TABLE fanout (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id BLOB    NOT NULL CHECK (length(message_id) = 16),
    account    BLOB    NOT NULL,
    kind       INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 255),
    body       BLOB    NOT NULL DEFAULT x'',
    ts         INTEGER NOT NULL,
    created_at INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX fanout_account ON fanout (account, id);
CREATE INDEX fanout_message ON fanout (message_id);

-- Reactions: one per account and message (a new one replaces it; an empty emoji removes it).
-- `ts` is the reaction's sender time: a reaction older than the stored one is ignored, so
-- every device ends with the same reaction whatever order they arrive in.
CREATE TABLE reactions (
    message BLOB    NOT NULL CHECK (length(message) = 16),
    account BLOB    NOT NULL,
    emoji   TEXT    NOT NULL,
    ts      INTEGER NOT NULL,
    PRIMARY KEY (message, account)
) STRICT, WITHOUT ROWID;

-- The version of each group's name and member list this device holds (GroupInfo bodies carry
-- versions; only a higher one replaces it). The name and members themselves live in `chats`
-- and `chat_members`.
CREATE TABLE groups (
    chat    BLOB    NOT NULL PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 0)
) STRICT, WITHOUT ROWID;

-- Envelopes taken from the inbox (and acknowledged to the broker, which wants acknowledgements
-- in order) but not handled yet: from an account whose device list has not arrived
-- (`account` set), or received while linking a device (`account` NULL). Handled, and removed,
-- once the list arrives or the session loop starts.
CREATE TABLE inbox_backlog (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     BLOB,
    payload     BLOB    NOT NULL,
    received_at INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX inbox_backlog_account ON inbox_backlog (account, id);
