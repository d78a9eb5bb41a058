//! Backups of a real data directory under load over gRPC, and their restores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backup;
mod migrate;
