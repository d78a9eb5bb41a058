//! The test kit the workspace's tests share, a dev-dependency of each crate that uses it: the
//! command lines of `alliancectl` (`argv`), the `alliance.v1` requests (`requests`) that tests
//! build again and again, with the fixtures' values in one place, and the one in-process server
//! (`server`: the services composed as `allianced` composes them, on a SQLite file or a Kafka
//! topic). The domain's given / when / then harness and its fixtures are
//! `alliance_domain::testing`.
// A test kit: a failure here is the test's failure, reported where it happens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod argv;
pub mod requests;
pub mod server;
