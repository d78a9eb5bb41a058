//! The read models over a real SQLite log, fed through the command service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod diff;
mod harness;
mod live;
mod rebuild;
mod reference;
mod replay;
mod snapshot;
