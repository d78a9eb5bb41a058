//! Tests of the pure planning core.

mod properties;
mod reference;
mod rules;
