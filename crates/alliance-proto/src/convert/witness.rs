//! Heads vouched for in a plan's history: witnesses and the events of a witnessed or signed
//! head (the requests that vouch for one are read in `commands`).
//!
//! Signatures travel as bytes and are kept by the domain as lowercase hex, which the domain
//! checks; key ids and hashes are hex on both sides.

use alliance_domain::{Event, HeadWitness};

use crate::v1;
use crate::v1::event_envelope::Payload;

use alliance_stdx::hex::encode as hex;

/// Bytes of lowercase hex (what the domain keeps); empty when it is not hex.
fn unhex(text: &str) -> Vec<u8> {
    alliance_stdx::hex::decode(text).unwrap_or_default()
}

pub fn witness_from_proto(w: &v1::HeadWitness) -> HeadWitness {
    HeadWitness {
        key_id: w.key_id.clone(),
        signature: hex(&w.signature),
    }
}

pub fn witness_to_proto(w: &HeadWitness) -> v1::HeadWitness {
    v1::HeadWitness {
        key_id: w.key_id.clone(),
        signature: unhex(&w.signature),
    }
}

/// The payload of a witnessed head.
pub fn witnessed_payload(version: u64, head_hash: &str, witnesses: &[HeadWitness]) -> Payload {
    Payload::HeadWitnessed(v1::HeadWitnessed {
        version,
        head_hash: head_hash.to_owned(),
        witnesses: witnesses.iter().map(witness_to_proto).collect(),
    })
}

/// The event of a witnessed head's payload.
pub fn witnessed_event(p: &v1::HeadWitnessed) -> Event {
    Event::HeadWitnessed {
        version: p.version,
        head_hash: p.head_hash.clone(),
        witnesses: p.witnesses.iter().map(witness_from_proto).collect(),
    }
}
