//! The test kit the workspace's tests share, a dev-dependency of each crate that uses it: the
//! command lines of `alliancectl` (`argv`) and the `alliance.v1` requests (`requests`) that
//! tests build again and again, with the fixtures' values in one place. The domain's
//! given / when / then harness and its fixtures are `alliance_domain::testing`.

pub mod argv;
pub mod requests;
