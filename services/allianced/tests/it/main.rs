//! The real `allianced` binary, run as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod operations;
