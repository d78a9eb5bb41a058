//! gRPC integration tests: a real server on an ephemeral loopback port, a real SQLite log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bounds;
mod faults;
mod harness;
mod plan_commands;
