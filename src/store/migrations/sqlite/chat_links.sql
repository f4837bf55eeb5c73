-- Chat links: the chat account `chat_user` of chat `chat` (`slack`: a Slack
-- user id) answers as `agent`. One agent per chat account; `chat-linked`
-- and `chat-unlinked` log entries (subject: the link's id) explain every row.
CREATE TABLE chat_links (
    id        BLOB PRIMARY KEY,
    chat      TEXT NOT NULL,
    chat_user TEXT NOT NULL,
    agent     TEXT NOT NULL,
    linked_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX chat_links_user ON chat_links (chat, chat_user);
