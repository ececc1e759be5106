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
