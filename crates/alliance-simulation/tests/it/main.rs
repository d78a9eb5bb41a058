//! Tests of the simulation: the engine on hand-made plans and the reference plan, and the
//! `alliance.v1.Simulation` service on a loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine;
mod service;
