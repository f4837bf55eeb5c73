//! Chat links: which chat account answers as which agent.
//!
//! A person answers from a chat (Slack's buttons) as the agent their chat
//! account is linked to (`t-minus people link AGENT --slack USER_ID`). A
//! chat account is linked to at most one agent; an agent may have several
//! accounts. Linking and unlinking are recorded in the audit log with the
//! link's id as the subject (`chat-linked`, `chat-unlinked`, subject kind
//! `chat-link`), and `verify` checks the stored links against them.

use chrono::{DateTime, Utc};
use miette::Diagnostic;
use serde::Serialize;
use thiserror::Error;
use uuid::Uuid;

use crate::agent::AgentId;

/// The chats t-minus answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Chat {
    /// Slack: the account is a Slack user id (`U…` or `W…`).
    Slack,
}

impl Chat {
    /// The word stored and shown: `slack`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chat::Slack => "slack",
        }
    }

    /// The chat named `word`, if t-minus knows it.
    pub fn parse(word: &str) -> Option<Chat> {
        match word {
            "slack" => Some(Chat::Slack),
            _ => None,
        }
    }

    /// Checks a chat account id: for Slack, a user id as Slack writes it
    /// (`U` or `W` and 2 to 31 more capital letters and digits).
    pub fn check_user(self, user: &str) -> Result<(), ChatLinkError> {
        let ok = match self {
            Chat::Slack => {
                let mut chars = user.chars();
                matches!(chars.next(), Some('U' | 'W'))
                    && (3..=32).contains(&user.len())
                    && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ChatLinkError::BadUser {
                chat: self.as_str(),
                user: user.chars().take(64).collect(),
            })
        }
    }
}

impl std::fmt::Display for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A chat account linked to an agent, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLink {
    /// The link's id (the subject of its log entries).
    pub id: Uuid,
    /// The chat.
    pub chat: Chat,
    /// The account in that chat (a Slack user id).
    pub user: String,
    /// The agent the account answers as.
    pub agent: AgentId,
    /// When it was linked.
    pub linked_at: DateTime<Utc>,
}

/// What can go wrong linking, unlinking or answering from a chat.
#[derive(Debug, Clone, PartialEq, Eq, Error, Diagnostic)]
#[non_exhaustive]
pub enum ChatLinkError {
    /// A chat account id that is not one.
    #[error("`{user}` is not a {chat} user id")]
    #[diagnostic(
        code(t_minus::input::chat_user),
        help("a Slack user id is `U` or `W` and capital letters and digits, e.g. U024BE7LH: in Slack, open the person's profile, ⋮ → Copy member ID")
    )]
    BadUser {
        /// The chat.
        chat: &'static str,
        /// The id as given (at most 64 characters of it).
        user: String,
    },

    /// Linking an account that is linked already.
    #[error("{chat} user {user} is already linked to agent {agent}")]
    #[diagnostic(
        code(t_minus::refused::chat_linked),
        help("unlink it first: `t-minus people unlink --{chat} {user}`")
    )]
    AlreadyLinked {
        /// The chat.
        chat: &'static str,
        /// The account.
        user: String,
        /// The agent it is linked to.
        agent: String,
    },

    /// Unlinking an account that is not linked.
    #[error("{chat} user {user} is not linked to any agent")]
    #[diagnostic(
        code(t_minus::not_found::chat_link),
        help("`t-minus people links` lists the linked accounts")
    )]
    NotLinked {
        /// The chat.
        chat: &'static str,
        /// The account.
        user: String,
    },

    /// A chat request that was answered before, sent again.
    #[error("this {chat} request ({request}) was answered before; a request is accepted once")]
    #[diagnostic(
        code(t_minus::refused::chat_replay),
        help("press the button again in the chat: every press is a new request")
    )]
    Replayed {
        /// The chat.
        chat: &'static str,
        /// The request's digest.
        request: String,
    },

    /// Unlinking an account from an agent it is not linked to.
    #[error("{chat} user {user} is linked to agent {linked}, not {agent}")]
    #[diagnostic(
        code(t_minus::refused::chat_link_agent),
        help("name the agent it is linked to, or leave the agent out")
    )]
    OtherAgent {
        /// The chat.
        chat: &'static str,
        /// The account.
        user: String,
        /// The agent named.
        agent: String,
        /// The agent it is linked to.
        linked: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_user_ids_are_checked() {
        for good in ["U024BE7LH", "W012A3CDE", "U0G9QF9C6"] {
            assert_eq!(Chat::Slack.check_user(good), Ok(()), "{good}");
        }
        for bad in ["", "U", "u024be7lh", "C024BE7LH", "U024 BE7", "U02-4BE7LH"] {
            assert!(Chat::Slack.check_user(bad).is_err(), "{bad:?}");
        }
    }
}
