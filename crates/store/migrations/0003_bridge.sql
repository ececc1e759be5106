-- Tandem store, schema version 3: bridge mode.
-- Append-only: never edit this file once released.

-- On the phone: the desktops authorised on its bridge (DESIGN 8), one row per desktop bridge
-- key (X25519, 32 bytes). Linking in bridge mode adds a row; unlinking deletes it, which
-- revokes the key: its next handshake is refused. These desktops are not devices of the
-- account and never appear in its device list.
CREATE TABLE bridge_desktops (
    public_key BLOB    PRIMARY KEY CHECK (length(public_key) = 32),
    name       TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    linked_at  INTEGER NOT NULL
) STRICT;

-- On the phone: the bridge's one event log (docs/bridge.md section 7). Every logged event
-- gets the next sequence number, never reused (AUTOINCREMENT: not even after the newest rows
-- are pruned). `body` is postcard(EventBody).
CREATE TABLE bridge_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    body    BLOB    NOT NULL,
    at      INTEGER NOT NULL
) STRICT;

-- On the phone: the highest event each desktop acknowledged (stored durably on its side).
CREATE TABLE bridge_acks (
    public_key BLOB    PRIMARY KEY CHECK (length(public_key) = 32),
    up_to      INTEGER NOT NULL
) STRICT;

-- On a bridge-mode desktop: what was sent while the phone was away (or not yet answered),
-- in the order written. The message itself is in `messages` (status "sending"); a row leaves
-- when the phone answers with the message as it stored it.
CREATE TABLE bridge_outbox (
    message_id BLOB    PRIMARY KEY CHECK (length(message_id) = 16),
    queued_at  INTEGER NOT NULL
) STRICT;
