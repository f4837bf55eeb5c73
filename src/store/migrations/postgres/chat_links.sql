-- Chat links: the chat account `chat_user` of chat `chat` (`slack`: a Slack
-- user id) answers as `agent`. One agent per chat account; `chat-linked`
-- and `chat-unlinked` log entries (subject: the link's id) explain every row.
CREATE TABLE tm_chat_links (
    id        uuid PRIMARY KEY,
    chat      TEXT NOT NULL,
    chat_user TEXT NOT NULL,
    agent     TEXT NOT NULL,
    linked_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX tm_chat_links_user ON tm_chat_links (chat, chat_user);
