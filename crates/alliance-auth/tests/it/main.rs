#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authenticate;
mod config;
mod jwt;
mod signing;
mod support;
mod tls;
