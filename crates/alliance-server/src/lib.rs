//! What every server of the system shares: who is calling ([`auth`], [`verify`]), what they may
//! do on a plan ([`access`]), limits on what they send ([`limits`], [`deadline`],
//! [`malformed`]), the security log of refused requests ([`security`]), one mapping of every
//! service's errors to gRPC statuses with `google.rpc` details ([`error`]), serving with health,
//! reflection, TLS and shutdown ([`serve`]), the writers' signing keys ([`signing`]), calls made to another server on a caller's behalf
//! ([`calls`]), and who may record a simulation run ([`recording`]).

pub mod access;
mod auth;
pub mod calls;
pub mod deadline;
pub mod error;
pub mod limits;
pub mod malformed;
pub mod recording;
pub mod security;
pub mod serve;
pub mod signing;
pub mod timeout;
pub mod verify;

pub use auth::{AuthConfigError, Authenticator, Caller, Role, TokenFile, Verified};
pub use error::{NoStanding, ServiceError, invalid_field, invalid_fields, out_of_range_field};
pub use verify::VerifyLayer;
