-- Tandem store, schema version 4: what bridge desktops have yet to hear of.
-- Append-only: never edit this file once released.

-- On the phone, while it has bridge desktops: every change they must hear of, written by the
-- store in the same transaction as the change itself (a new message, a changed one, a reaction,
-- a chat read here). The bridge server turns rows into logged events and deletes them in one
-- transaction, so a crash at any point loses nothing: what was committed and not yet logged is
-- logged when the bridge server next runs.
--   kind 0: a new message (target = message id)
--   kind 1: a changed message: edit, deletion (target = message id)
--   kind 2: a reaction (target = message id, extra = the reacting account)
--   kind 3: a chat read (target = chat id, extra = the newest message marked read)
--   kind 4: an own message's delivery status moved on (target = message id)
CREATE TABLE bridge_changes (
    id     INTEGER PRIMARY KEY,
    kind   INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 4),
    target BLOB    NOT NULL CHECK (length(target) = 16),
    extra  BLOB
) STRICT;
