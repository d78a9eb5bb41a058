//! Upcasting: a record written under an older schema version read as the current one.
//!
//! The log keeps every record as it was written, for ever: its bytes are what its hash and
//! signature cover. When an event's meaning changes, the build that changes it raises
//! [`SCHEMA_VERSION`] and adds an [`Upcaster`] that turns the old form into the new one; every
//! reader gets events through [`upcast`] (called by [`crate::decode_event`]), so the command
//! side, the read models, the audit log, the simulation and exports all see one meaning.
//!
//! The chain is keyed by (event type, the schema version an upcaster reads). A record of
//! version `n` passes through the upcaster of each version from `n` up to the current one; an
//! event type with no upcaster at a version is the same in both. A version of 0 or past the
//! current one (written by a newer build) is refused, never guessed at.
//!
//! | version | change |
//! |---|---|
//! | 1 | the first |
//! | 2 | `CapabilityInvestmentPlanned`'s cost is in thousands of U.S. dollars (`cost_kusd`); version 1 held whole millions (`cost_musd`) |

use alliance_domain::SCHEMA_VERSION;
use alliance_proto::v1;
use alliance_proto::v1::event_envelope::Payload;

/// Turns an envelope of event type `event_type` written under schema version `from` into its
/// form at `from + 1`, or says why it cannot.
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: u32,
    pub apply: fn(&mut v1::EventEnvelope) -> Result<(), String>,
}

/// Every upcaster, one per (event type, version) whose form changed.
pub const UPCASTERS: &[Upcaster] = &[Upcaster {
    event_type: "CapabilityInvestmentPlanned",
    from: 1,
    apply: investment_cost_in_thousands,
}];

/// Brings `envelope` from the schema version it was written under to [`SCHEMA_VERSION`];
/// its `schema_version` then reads the current one. Only the decoded envelope changes: the
/// stored bytes are never rewritten.
pub fn upcast(envelope: &mut v1::EventEnvelope) -> Result<(), String> {
    let written = envelope.schema_version;
    if written == 0 || written > SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version {written} (this build reads 1 to {SCHEMA_VERSION})"
        ));
    }
    while envelope.schema_version < SCHEMA_VERSION {
        let at = envelope.schema_version;
        if let Some(upcaster) = UPCASTERS
            .iter()
            .find(|u| u.from == at && u.event_type == envelope.event_type)
        {
            (upcaster.apply)(envelope).map_err(|e| {
                format!(
                    "{} of schema version {at} does not upcast: {e}",
                    envelope.event_type
                )
            })?;
        }
        envelope.schema_version = at + 1;
    }
    Ok(())
}

/// Version 1 → 2 of `CapabilityInvestmentPlanned`: a programme's cost moves from whole millions
/// of U.S. dollars (`cost_musd`, which could not hold a munitions lot or a sustainment line of a
/// few hundred thousand, nor $1.5 million) to thousands (`cost_kusd`).
fn investment_cost_in_thousands(envelope: &mut v1::EventEnvelope) -> Result<(), String> {
    let Some(Payload::CapabilityInvestmentPlanned(p)) = envelope.payload.as_mut() else {
        return Err("its payload is not a CapabilityInvestmentPlanned".into());
    };
    if p.cost_kusd != 0 {
        return Err("cost_kusd is set, which version 1 never wrote".into());
    }
    p.cost_kusd = p
        .cost_musd
        .checked_mul(1_000)
        .ok_or_else(|| format!("cost_musd {} overflows in thousands", p.cost_musd))?;
    p.cost_musd = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn investment(schema_version: u32, cost_musd: u64, cost_kusd: u64) -> v1::EventEnvelope {
        v1::EventEnvelope {
            event_type: "CapabilityInvestmentPlanned".into(),
            schema_version,
            payload: Some(Payload::CapabilityInvestmentPlanned(
                v1::CapabilityInvestmentPlanned {
                    cost_musd,
                    cost_kusd,
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn a_version_1_investment_reads_its_cost_in_thousands() {
        let mut envelope = investment(1, 1_900, 0);
        upcast(&mut envelope).unwrap();
        assert_eq!(envelope, investment(SCHEMA_VERSION, 0, 1_900_000));
    }

    #[test]
    fn a_current_record_is_read_as_it_is() {
        let mut envelope = investment(SCHEMA_VERSION, 0, 1_500);
        upcast(&mut envelope).unwrap();
        assert_eq!(envelope, investment(SCHEMA_VERSION, 0, 1_500));
    }

    #[test]
    fn an_event_type_that_did_not_change_only_changes_version() {
        let before = v1::EventEnvelope {
            event_type: "DecisionAdopted".into(),
            schema_version: 1,
            payload: Some(Payload::DecisionAdopted(v1::DecisionAdopted {
                decision_id: "d".into(),
            })),
            ..Default::default()
        };
        let mut envelope = before.clone();
        upcast(&mut envelope).unwrap();
        assert_eq!(envelope.payload, before.payload);
        assert_eq!(envelope.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn unknown_versions_and_impossible_records_are_refused() {
        for version in [0, SCHEMA_VERSION + 1] {
            let error = upcast(&mut investment(version, 1, 0)).unwrap_err();
            assert!(error.contains("unsupported schema version"), "{error}");
        }
        // Version 1 never held a cost in thousands, nor a cost past u64 in thousands.
        assert!(upcast(&mut investment(1, 0, 5)).is_err());
        assert!(upcast(&mut investment(1, u64::MAX, 0)).is_err());
        // A type that says investment over another payload.
        let mut mislabelled = investment(1, 1, 0);
        mislabelled.payload = Some(Payload::DecisionAdopted(v1::DecisionAdopted::default()));
        assert!(upcast(&mut mislabelled).is_err());
    }
}
