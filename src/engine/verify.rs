//! Verifying the tamper-evident audit log.

use super::Engine;
use crate::error::Result;
use crate::store::StoredLink;
use crate::trust::chain::{ChainHash, ChainLink, ChainVerifier};
use crate::trust::TrustError;

/// Entries read per store round trip while verifying.
const BATCH: usize = 10_000;

/// An intact audit log: what [`Engine::verify_log`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogVerification {
    /// How many entries were checked.
    pub entries: u64,
    /// The hash of the last entry (64 zeros for an empty log): keep it to
    /// prove later, with `since`, that the log was only appended to.
    pub head: ChainHash,
}

impl Engine {
    /// Recomputes the audit chain of the whole store in commit order, in one
    /// read transaction and constant memory. With `since` (a head printed
    /// earlier), also requires that head to be in the chain. Fails with
    /// [`TrustError::ChainBroken`] or [`TrustError::ChainColumn`] at the
    /// first entry that disagrees, or [`TrustError::HeadNotFound`].
    pub fn verify_log(&self, since: Option<ChainHash>) -> Result<LogVerification> {
        let mut tx = self.store().read()?;
        let mut verifier = ChainVerifier::new();
        if let Some(head) = since {
            verifier = verifier.since(head);
        }
        let mut after = 0;
        loop {
            let batch = tx.audit_links(after, BATCH)?;
            let Some(last) = batch.last() else { break };
            after = last.entry.seq;
            for link in &batch {
                let position = verifier.len();
                let prev = parse_column(link, position, "prev", link.prev.as_deref())?;
                let hash = parse_column(link, position, "hash", link.hash.as_deref())?;
                verifier.push(&ChainLink {
                    entry: &link.entry,
                    message: link.message.as_deref().map(str::as_bytes),
                    signature: link.signature.as_deref(),
                    prev,
                    hash,
                })?;
            }
        }
        let entries = verifier.len();
        let head = verifier.finish()?;
        Ok(LogVerification { entries, head })
    }
}

fn parse_column(
    link: &StoredLink,
    position: u64,
    column: &'static str,
    value: Option<&str>,
) -> std::result::Result<ChainHash, TrustError> {
    let broken = |found: String| TrustError::ChainColumn {
        position,
        seq: link.entry.seq,
        column,
        found,
    };
    match value {
        None => Err(broken("missing".into())),
        Some(text) => text
            .parse()
            .map_err(|_| broken(format!("{:?}", text.chars().take(80).collect::<String>()))),
    }
}
