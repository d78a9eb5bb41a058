//! End to end: the real `allianced` process on a fresh data directory, driven with the real
//! `alliancectl`, as a planner would after `make run`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod deploy;
mod identity;
mod kafka_logs;
mod kafka_tls;
mod projection;
mod simulation;
mod suite;
mod support;
mod telemetry;
mod tour;
