//! Heads vouched for in a plan's history: before a witness or head-signing command is decided,
//! its head is held against the plan's log (the record at its version must have its hash), and
//! each witness's signature against the deployment's witness keys (`[[witness_key]]`), in force
//! now and of the caller's side when the caller has one. Refused otherwise, naming the witness.

use std::sync::Arc;

use alliance_domain::{Command, DomainError, FieldViolation, PlanId};
use alliance_eventlog::EventLog;
use alliance_record::chain::{self, Hash};
use alliance_record::signing::{KeyId, SIGNATURE_LEN, SignatureProblem};
use alliance_record::witness::WitnessKeys;
use alliance_server::Caller;
use alliance_server::access;
use alliance_server::error::ServiceError;
use alliance_stdx::hex::decode_lower_array;

use crate::service::CommandService;

impl<L: EventLog> CommandService<L> {
    /// Checks the head a witness or head-signing command names, and its witnesses, for
    /// `caller` (whose standing on the plan is judged first). Other commands pass.
    pub(crate) async fn check_vouched_head(
        &self,
        caller: &Caller,
        plan_id: PlanId,
        command: &Command,
    ) -> Result<(), ServiceError> {
        let Some((version, head_hash)) = alliance_domain::vouched_head(command) else {
            return Ok(());
        };
        let plan = self.plan(plan_id).await?;
        access::authorize_command(caller, &plan, plan_id, command)?;
        // A malformed head or one beyond the plan is the domain's to refuse, field by field.
        let Some(head) = decode_lower_array::<32>(head_hash) else {
            return Ok(());
        };
        if version == 0 || version > plan.version {
            return Ok(());
        }
        let held = self
            .log()
            .read_plan(plan_id, version, 1)
            .await?
            .first()
            .and_then(|record| chain::carried_hash(&record.payload));
        if held != Some(head) {
            return Err(DomainError::rule(
                "head_mismatch",
                format!(
                    "the plan's record at version {version} has hash {}, not {head_hash}",
                    held.map_or_else(|| "none".to_owned(), |h| chain::hex(&h))
                ),
            )
            .into());
        }
        if let Command::WitnessHead { witnesses, .. } = command {
            let keys = self.witness_keys().ok_or_else(|| {
                DomainError::rule(
                    "no_witness_keys",
                    "this server knows no witness keys ([[witness_key]] in its identity \
                     configuration): no witness can be checked",
                )
            })?;
            let now = chrono::Utc::now().timestamp_micros();
            let mut refused = Vec::new();
            for (i, witness) in witnesses.iter().enumerate() {
                let (Some(key_id), Some(signature)) = (
                    decode_lower_array::<8>(&witness.key_id).map(KeyId),
                    decode_lower_array::<SIGNATURE_LEN>(&witness.signature),
                ) else {
                    // Malformed: the domain refuses it.
                    continue;
                };
                refused.extend(judge(
                    keys,
                    caller,
                    (i, key_id, &signature),
                    (plan_id, version, &head, now),
                ));
            }
            if !refused.is_empty() {
                return Err(ServiceError::Invalid(refused));
            }
        }
        Ok(())
    }
}

/// Why witness `i` (key `key_id`) is refused, if it is.
fn judge(
    keys: &Arc<WitnessKeys>,
    caller: &Caller,
    (i, key_id, signature): (usize, KeyId, &[u8; SIGNATURE_LEN]),
    (plan_id, version, head, now): (PlanId, u64, &Hash, i64),
) -> Option<FieldViolation> {
    let key_field = format!("witnesses[{i}].key_id");
    match keys.check(key_id, now, (plan_id.as_bytes(), version, head), signature) {
        Ok(side) => match caller.actor.side {
            Some(own) if own != side => Some(FieldViolation::new(
                key_field,
                format!(
                    "witness key {key_id} answers for the {} side, not team {}'s {} side",
                    side.name(),
                    caller.actor.team,
                    own.name()
                ),
            )),
            _ => None,
        },
        Err(SignatureProblem::UnknownKey) => Some(FieldViolation::new(
            key_field,
            format!("key {key_id} is not a witness key of this deployment"),
        )),
        Err(SignatureProblem::KeyNotValid) => Some(FieldViolation::new(
            key_field,
            format!("witness key {key_id} is not in force"),
        )),
        Err(SignatureProblem::BadSignature) => Some(FieldViolation::new(
            format!("witnesses[{i}].signature"),
            format!(
                "does not verify under witness key {key_id} over plan {plan_id}'s head at \
                 version {version}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alliance_domain::{Actor, Side, TeamId};
    use alliance_record::signing::{Signer, TrustedKey};
    use alliance_record::witness::{WitnessKey, sign_head};

    fn caller(side: Option<Side>) -> Caller {
        Caller {
            actor: Actor {
                team: TeamId::parse("auditors").unwrap(),
                user: "auditor".into(),
                side,
            },
            roles: Vec::new(),
        }
    }

    #[test]
    fn a_witness_is_judged_by_its_key_its_signature_and_the_caller_s_side() {
        let (rok, stranger) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        let keys = Arc::new(WitnessKeys::new([WitnessKey {
            key: TrustedKey {
                not_after_micros: Some(1_000),
                ..TrustedKey::always(rok.verifying_key())
            },
            side: Side::Rok,
        }]));
        let (plan, head) = (PlanId::now_v7(), [5; 32]);
        let signed = sign_head(&rok, plan.as_bytes(), 3, &head);
        let judged = |caller: &Caller, key: KeyId, signature: &[u8; 64], now| {
            judge(&keys, caller, (0, key, signature), (plan, 3, &head, now)).map(|v| v.field)
        };
        // The ROK's key, by a caller of no side or of the ROK side, in force.
        assert_eq!(judged(&caller(None), rok.id(), &signed, 0), None);
        assert_eq!(judged(&caller(Some(Side::Rok)), rok.id(), &signed, 0), None);
        // A U.S. team holding the ROK's key.
        assert_eq!(
            judged(&caller(Some(Side::Us)), rok.id(), &signed, 0).as_deref(),
            Some("witnesses[0].key_id")
        );
        // Out of force, a key no witness holds, a signature of another head.
        assert_eq!(
            judged(&caller(None), rok.id(), &signed, 1_000).as_deref(),
            Some("witnesses[0].key_id")
        );
        let other = sign_head(&stranger, plan.as_bytes(), 3, &head);
        assert_eq!(
            judged(&caller(None), stranger.id(), &other, 0).as_deref(),
            Some("witnesses[0].key_id")
        );
        let elsewhere = sign_head(&rok, plan.as_bytes(), 2, &head);
        assert_eq!(
            judged(&caller(None), rok.id(), &elsewhere, 0).as_deref(),
            Some("witnesses[0].signature")
        );
    }
}
