//! Notifications: rules that run a command or call a webhook when an event
//! opens, fires, is missed or cancelled, when an attendee answers, or ahead
//! of the fire time while quorum is not met.
//!
//! Deliveries are queued in the store in the transaction that records what
//! they announce ([`queue`]), and delivered at least once by whichever
//! process runs [`deliver`] (`run`, `wait` and `tick` do), each carrying an
//! idempotency key so receivers can drop repeats. `docs/notifications.md`
//! describes the rules, the payloads and the guarantees.

pub mod deliver;
pub mod payload;
pub mod queue;
pub mod spec;

pub use deliver::{DeliverOptions, Deliverer, Failure, Outcome};
pub use queue::{Delivery, DeliveryState, Reminder};
pub use spec::{Hook, NotifyRule, Trigger, WebhookFormat};
