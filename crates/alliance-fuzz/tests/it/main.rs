//! The fuzz targets' integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;
