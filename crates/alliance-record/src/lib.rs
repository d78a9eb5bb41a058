//! The log's record format: the `alliance.v1.EventEnvelope` a writer encodes for each event,
//! sealed into its plan's hash chain, and decoded and verified by every reader (the command
//! service, the read models, the audit log, exports).

pub mod chain;
pub mod envelope;
pub mod signing;
pub mod upcast;
pub mod witness;

pub use envelope::{
    DecodedEvent, PackedEvent, RecordError, decode_event, decode_event_lean, encode_event,
};
