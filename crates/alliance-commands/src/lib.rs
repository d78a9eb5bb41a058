//! The command service: `alliance.v1.PlanCommands`.
//!
//! A command arrives over gRPC, its caller is authenticated (`alliance-server`), it is converted
//! to a domain command at the edge, checked for idempotency and for conflicts at the grain users
//! edit, decided by the pure domain core, and its events are appended to the [`EventLog`].
//! Each plan is decided under its own lock against an in-memory state that always equals the
//! log's fold; appends are pipelined, so concurrent commands share the log's group commit.
//!
//! [`EventLog`]: alliance_eventlog::EventLog

pub mod forward;
mod grpc;
mod plans;
pub mod reference;
pub mod server;
mod service;
mod witness;

pub use alliance_auth::PeerTls;
pub use grpc::PlanCommandsApi;
pub use service::{CommandMeta, CommandOutcome, CommandService, command_digest};
