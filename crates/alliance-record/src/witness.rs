//! Witnesses: auditors of either government counter-sign a plan's head, and their signatures
//! are recorded in the plan's history (`HeadWitnessed`), so a later rewrite of what they
//! witnessed needs their keys as well as the writer's.
//!
//! A witness signs [`WITNESS_CONTEXT`] followed by [`witness_message`]: the plan id's 16 bytes,
//! the version (8 bytes, big-endian) and the head hash's 32 bytes. The context keeps a witness's
//! signature from ever being taken for a record's or a served head's. The keys verifiers accept
//! are [`WitnessKeys`]: public keys, each answering for one side, with the record times it may
//! witness at (the identity configuration's `[[witness_key]]`).

use alliance_domain::Side;

use crate::chain::Hash;
use crate::signing::{KeyId, SIGNATURE_LEN, SignatureProblem, Signer, TrustedKey, TrustedKeys};

/// What a witness's signature covers, before [`witness_message`].
pub const WITNESS_CONTEXT: &[u8] = b"alliance.v1.witness-head\0";

/// What a witness signs after [`WITNESS_CONTEXT`]: the plan id's 16 bytes, the version
/// (big-endian) and the head hash.
pub fn witness_message(plan_id: &[u8; 16], version: u64, head: &Hash) -> Vec<u8> {
    let mut message = Vec::with_capacity(16 + 8 + 32);
    message.extend_from_slice(plan_id);
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(head);
    message
}

/// A witness's signature of a plan's head.
pub fn sign_head(
    witness: &Signer,
    plan_id: &[u8; 16],
    version: u64,
    head: &Hash,
) -> [u8; SIGNATURE_LEN] {
    witness.sign(WITNESS_CONTEXT, &witness_message(plan_id, version, head))
}

/// A witness key: a public key, its validity, and the side whose auditors hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    pub key: TrustedKey,
    pub side: Side,
}

/// The witness keys a verifier accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessKeys {
    keys: Vec<WitnessKey>,
    trusted: TrustedKeys,
}

impl WitnessKeys {
    pub fn new(keys: impl IntoIterator<Item = WitnessKey>) -> Self {
        let keys: Vec<WitnessKey> = keys.into_iter().collect();
        let trusted = TrustedKeys::new(keys.iter().map(|k| k.key.clone()));
        Self { keys, trusted }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[WitnessKey] {
        &self.keys
    }

    /// The side key `id` answers for, if it is a witness key.
    pub fn side_of(&self, id: KeyId) -> Option<Side> {
        self.keys.iter().find(|k| k.key.id == id).map(|k| k.side)
    }

    /// Checks a witness's signature by key `id` of the head (`plan_id`, `version`, `head`), made
    /// at `micros`; the side its key answers for when it holds.
    pub fn check(
        &self,
        id: KeyId,
        micros: i64,
        (plan_id, version, head): (&[u8; 16], u64, &Hash),
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<Side, SignatureProblem> {
        let message = witness_message(plan_id, version, head);
        self.trusted
            .check(id, micros, WITNESS_CONTEXT, &message, signature)?;
        self.side_of(id).ok_or(SignatureProblem::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::signing::{HEAD_CONTEXT, RECORD_CONTEXT};

    #[test]
    fn a_witness_signature_holds_for_its_head_only_under_its_key_and_names_its_side() {
        let (rok, us) = (Signer::generate().unwrap(), Signer::generate().unwrap());
        let keys = WitnessKeys::new([WitnessKey {
            key: TrustedKey::always(rok.verifying_key()),
            side: Side::Rok,
        }]);
        let (plan, head) = ([1; 16], [9; 32]);
        let signature = sign_head(&rok, &plan, 7, &head);
        assert_eq!(
            keys.check(rok.id(), 0, (&plan, 7, &head), &signature),
            Ok(Side::Rok)
        );
        // Another version, another head, another plan.
        for (plan, version, head) in [
            (&plan, 8, &head),
            (&plan, 7, &[8; 32]),
            (&[2; 16], 7, &head),
        ] {
            assert_eq!(
                keys.check(rok.id(), 0, (plan, version, head), &signature),
                Err(SignatureProblem::BadSignature)
            );
        }
        // A key that is not a witness key.
        assert_eq!(
            keys.check(
                us.id(),
                0,
                (&plan, 7, &head),
                &sign_head(&us, &plan, 7, &head)
            ),
            Err(SignatureProblem::UnknownKey)
        );
        // The same key's signature in another context is no witness's.
        let message = witness_message(&plan, 7, &head);
        for context in [RECORD_CONTEXT, HEAD_CONTEXT] {
            let elsewhere = rok.sign(context, &message);
            assert_eq!(
                keys.check(rok.id(), 0, (&plan, 7, &head), &elsewhere),
                Err(SignatureProblem::BadSignature)
            );
        }
    }
}
