//! Notification rules and the records of their deliveries, as values: when
//! to notify and how ([`spec`]), what a delivery says ([`payload`]), and a
//! queued delivery with its state ([`Delivery`]).
//!
//! The engine queues deliveries in the transaction that records what they
//! announce; [`crate::notify`] delivers them. `docs/notifications.md`
//! describes the rules, the payloads and the guarantees.

mod delivery;
pub mod payload;
pub mod spec;

pub(crate) use delivery::wall_now;
pub use delivery::{Delivery, DeliveryState, Reminder};
pub use spec::{Hook, NotifyRule, Trigger, WebhookFormat};
