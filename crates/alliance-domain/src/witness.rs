//! A plan's head vouched for inside its own history: counter-signed by auditors of either
//! government (witnesses), or signed by the writer from a version on (how a history sealed
//! before writers signed is signed from then on).
//!
//! A head is a version of the plan and the hash of its record (lowercase hex). The signatures
//! are checked where the keys are: the command service refuses a witness that does not verify
//! under a witness key of the deployment, and every verifier checks them again against the
//! keys it trusts. Here only their form is checked. A witnessed head holds a list of
//! witnesses, so more can sign one head.

use serde::{Deserialize, Serialize};

use crate::command::Command;
use crate::error::{DomainError, FieldViolation};
use crate::event::Event;
use crate::ids::Version;
use crate::state::Plan;

/// Witnesses of one head, at most.
pub const MAX_WITNESSES: usize = 16;

/// One witness's signature over a plan's head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadWitness {
    /// The witness key's id: 16 lowercase hex digits.
    pub key_id: String,
    /// The Ed25519 signature: 128 lowercase hex digits.
    pub signature: String,
}

/// The field checks of a witness or head-signing command.
pub(crate) fn violations(plan: &Plan, command: &Command) -> Vec<FieldViolation> {
    let mut found = Vec::new();
    let mut check = |ok: bool, field: &str, description: String| {
        if !ok {
            found.push(FieldViolation::new(field, description));
        }
    };
    let (version, head_hash, witnesses) = match command {
        Command::WitnessHead {
            version,
            head_hash,
            witnesses,
        } => (*version, head_hash, Some(witnesses)),
        Command::SignHead { version, head_hash } => (*version, head_hash, None),
        _ => return found,
    };
    check(version >= 1, "version", "must be at least 1".into());
    if plan.exists() {
        check(
            version <= plan.version,
            "version",
            format!("the plan is at version {}, not {version}", plan.version),
        );
    }
    check(
        is_hex(head_hash, 64),
        "head_hash",
        "must be a SHA-256 hash in 64 lowercase hex digits".into(),
    );
    if let Some(witnesses) = witnesses {
        check(
            (1..=MAX_WITNESSES).contains(&witnesses.len()),
            "witnesses",
            format!(
                "between 1 and {MAX_WITNESSES} witnesses, not {}",
                witnesses.len()
            ),
        );
        for (i, witness) in witnesses.iter().enumerate() {
            check(
                is_hex(&witness.key_id, 16),
                &format!("witnesses[{i}].key_id"),
                "must be a key id in 16 lowercase hex digits".into(),
            );
            check(
                is_hex(&witness.signature, 128),
                &format!("witnesses[{i}].signature"),
                "must be an Ed25519 signature in 128 lowercase hex digits".into(),
            );
            check(
                !witnesses[..i].iter().any(|w| w.key_id == witness.key_id),
                &format!("witnesses[{i}].key_id"),
                format!("key {} witnesses the head once", witness.key_id),
            );
        }
    }
    found
}

/// The event of a witness or head-signing command (its fields checked).
pub(crate) fn decide(command: &Command) -> Result<Vec<Event>, DomainError> {
    match command {
        Command::WitnessHead {
            version,
            head_hash,
            witnesses,
        } => Ok(vec![Event::HeadWitnessed {
            version: *version,
            head_hash: head_hash.clone(),
            witnesses: witnesses.clone(),
        }]),
        Command::SignHead { version, head_hash } => Ok(vec![Event::HeadSigned {
            version: *version,
            head_hash: head_hash.clone(),
        }]),
        _ => Err(DomainError::rule(
            "not_a_head",
            "only a witness or head-signing command vouches for a head",
        )),
    }
}

/// Whether `text` is `digits` lowercase hex digits.
fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The version and hash a head-vouching command names, if it is one.
pub fn vouched_head(command: &Command) -> Option<(Version, &str)> {
    match command {
        Command::WitnessHead {
            version, head_hash, ..
        }
        | Command::SignHead { version, head_hash } => Some((*version, head_hash)),
        _ => None,
    }
}
