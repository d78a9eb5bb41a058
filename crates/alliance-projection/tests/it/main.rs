//! The read models over a real SQLite log and a real Kafka topic, fed through the command
//! service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod diff;
mod envelopes;
mod events;
mod findings;
mod harness;
mod input;
mod kafka;
mod limits;
mod live;
mod rebuild;
mod reference;
mod replay;
mod signatures;
mod snapshot;
mod status;
mod upcasting;
mod watch;
