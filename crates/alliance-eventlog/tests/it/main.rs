//! Integration tests of the SQLite event log, on real database files in temporary directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backstop;
mod basic;
mod common;
mod concurrency;
#[cfg(unix)]
mod crash;
mod subscribe;
