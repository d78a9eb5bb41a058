//! End to end: the built `alliancectl` binary (and the gRPC clients beside it) against the real
//! services, served in this process on loopback ports (`support`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cleartext;
mod cli;
mod findings;
mod limits;
mod plot;
mod roles;
mod simulate;
mod status;
mod support;
