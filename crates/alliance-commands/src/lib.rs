//! The command service: `alliance.v1.PlanCommands`.
//!
//! A command arrives over gRPC, its caller is authenticated ([`auth`]), it is converted to a
//! domain command at the edge, checked for idempotency and for conflicts at the grain users
//! edit, decided by the pure domain core, and its events are appended to the [`EventLog`].
//! Each plan is decided under its own lock against an in-memory state that always equals the
//! log's fold; appends are pipelined, so concurrent commands share the log's group commit.
//!
//! [`EventLog`]: alliance_eventlog::EventLog

pub mod access;
mod auth;
pub mod chain;
pub mod deadline;
mod envelope;
mod error;
pub mod forward;
mod grpc;
pub mod limits;
pub mod malformed;
mod plans;
pub mod recording;
pub mod reference;
pub mod security;
pub mod server;
mod service;
pub mod verify;

pub use auth::{Authenticator, Caller, Role, TokenFile, Verified};
pub use envelope::{DecodedEvent, decode_event, encode_event};
pub use error::{CommandError, NoStanding, invalid_field, invalid_fields, out_of_range_field};
pub use grpc::PlanCommandsApi;
pub use service::{CommandMeta, CommandOutcome, CommandService, command_digest};
pub use verify::VerifyLayer;
