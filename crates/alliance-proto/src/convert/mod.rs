//! Conversion between the contract and the domain, in one place.
//!
//! Requests become domain commands (collecting every field violation at once); domain events
//! become envelope payloads and back. Anything a client or the log sends is checked here.
//!
//! One module per concern: [`scalars`] (enums, dates, elements), [`fields`] (reading a message,
//! every violation at once), [`commands`] (requests), [`conditions`] (prerequisites, constraints, findings), [`events`] (envelope payloads), [`views`]
//! (plan summaries) and [`overlay`] (what-if decisions).
//! every violation at once), [`commands`] (requests), [`events`] (envelope payloads), [`views`]
//! (plan summaries), [`overlay`] (what-if decisions) and [`witness`] (heads vouched for).

pub mod commands;
pub mod conditions;
pub mod events;
pub mod fields;
pub mod overlay;
pub mod scalars;
pub mod views;
pub mod witness;

pub use commands::*;
pub use conditions::*;
pub use events::*;
pub use fields::*;
pub use overlay::*;
pub use scalars::*;
pub use views::*;
pub use witness::*;
