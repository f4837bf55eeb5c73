//! Notification delivery: rules run a command or call a webhook when an
//! event opens, fires, is missed or cancelled, when an attendee answers, or
//! ahead of the fire time while quorum is not met.
//!
//! The rules and delivery records are values of [`crate::notification`];
//! the engine queues deliveries in the transaction that records what they
//! announce, and whichever process runs [`deliver`] delivers them at least
//! once (`run`, `wait` and `tick` do), each carrying an idempotency key so
//! receivers can drop repeats. This module sits above the engine: it writes
//! outcomes through the engine's log, and adds delivery operations to
//! [`Engine`]. `docs/notifications.md`
//! describes the rules, the payloads and the guarantees.

pub mod deliver;

pub use crate::notification::WebhookFormat;
pub use crate::notification::{payload, spec};
pub use crate::notification::{Delivery, DeliveryState, Hook, NotifyRule, Reminder, Trigger};
pub use deliver::{DeliverOptions, Deliverer, Failure, Outcome, PUBLIC_URL_VAR};

/// The delivery records, at their former path.
pub mod queue {
    pub use crate::notification::{Delivery, DeliveryState, Reminder};
}

use uuid::Uuid;

use crate::engine::Engine;
use crate::error::Result;

impl Engine {
    /// Delivers what is due now on this engine's connection, blocking until
    /// the outcomes are written (see [`deliver::deliver_due`]).
    pub fn deliver_due(&mut self, options: &DeliverOptions) -> Result<Vec<Outcome>> {
        deliver::deliver_due(self.store_mut(), options)
    }

    /// A test delivery of each of the event's rules that wants `on` (all
    /// its rules when none does), attempted now, once, and not queued: the
    /// payload is marked `"test": true`, and carries the event's
    /// `answer_url` under `public_url` when given. Returns each delivery
    /// with its failure, if any.
    pub fn notify_test(
        &mut self,
        id: Uuid,
        on: Trigger,
        public_url: Option<&str>,
    ) -> Result<Vec<(Delivery, Option<Failure>)>> {
        let (event, campaign, rules) = self.read(|tx| {
            let event = crate::engine::load(tx, id)?;
            let campaign = match event.campaign {
                Some(c) => tx.campaign(c)?.map(|c| c.name),
                None => None,
            };
            Ok((event, campaign, tx.notify_rules(id)?))
        })?;
        let detail = serde_json::json!({});
        let cause = payload::Cause {
            on,
            at: self.now(),
            agent: None,
            detail: &detail,
            before_ms: None,
            test: true,
        };
        let wanted: Vec<&NotifyRule> = rules.iter().filter(|r| r.wants(on)).collect();
        let chosen: Vec<&NotifyRule> = if wanted.is_empty() {
            rules.iter().collect()
        } else {
            wanted
        };
        let now = crate::notification::wall_now();
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = chosen
                .into_iter()
                .map(|rule| {
                    let key = Uuid::new_v4();
                    let delivery = Delivery {
                        key,
                        event: id,
                        on,
                        rule: rule.clone(),
                        payload: payload::build(key, &cause, &event, campaign.as_deref())
                            .to_value(),
                        state: DeliveryState::Pending,
                        attempts: 1,
                        next_at: now,
                        created_at: now,
                        finished_at: None,
                        last_error: None,
                    };
                    s.spawn(move || {
                        let failure = deliver::attempt(&delivery, public_url).err();
                        (delivery, failure)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        Ok(results)
    }
}
