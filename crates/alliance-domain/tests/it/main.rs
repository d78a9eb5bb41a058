//! Tests of the pure planning core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod findings;
mod oplan;
mod properties;
mod reference;
mod rules;
mod share;
mod state;
mod witness;
