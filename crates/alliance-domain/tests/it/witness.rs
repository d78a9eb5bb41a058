//! Heads vouched for inside a plan's history: the form of a witness and of a signed head, and
//! the event each records. Signatures are judged where the keys are, not here.

use alliance_domain::{Command, Event, HeadWitness, Key, PlanRole, Requirement};

use alliance_domain::testing::{baseline, given, given_no_plan, us};

const HASH: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn witness(key_id: &str) -> HeadWitness {
    HeadWitness {
        key_id: key_id.into(),
        signature: "ab".repeat(64),
    }
}

fn witness_head(version: u64, witnesses: Vec<HeadWitness>) -> Command {
    Command::WitnessHead {
        version,
        head_hash: HASH.into(),
        witnesses,
    }
}

#[test]
fn a_witnessed_head_is_recorded_with_every_witness() {
    let plan = baseline();
    let at = plan.len() as u64;
    let witnesses = vec![witness("0011223344556677"), witness("8899aabbccddeeff")];
    given(plan)
        .when(us(), witness_head(at, witnesses.clone()))
        .then(vec![Event::HeadWitnessed {
            version: at,
            head_hash: HASH.into(),
            witnesses,
        }]);
}

#[test]
fn a_signed_head_names_its_version_and_hash() {
    given(baseline())
        .when(
            us(),
            Command::SignHead {
                version: 1,
                head_hash: HASH.into(),
            },
        )
        .then(vec![Event::HeadSigned {
            version: 1,
            head_hash: HASH.into(),
        }]);
}

#[test]
fn a_head_the_plan_has_not_reached_or_malformed_is_refused_field_by_field() {
    let plan = baseline();
    let beyond = plan.len() as u64 + 1;
    let key = witness("0011223344556677");
    let short_signature = HeadWitness {
        key_id: key.key_id.clone(),
        signature: "ab".into(),
    };
    let upper_case = Command::SignHead {
        version: 1,
        head_hash: HASH.to_uppercase(),
    };
    for (command, field) in [
        (witness_head(beyond, vec![key.clone()]), "version"),
        (witness_head(0, vec![key.clone()]), "version"),
        (upper_case, "head_hash"),
        (witness_head(1, Vec::new()), "witnesses"),
        (
            witness_head(1, vec![witness("00112233")]),
            "witnesses[0].key_id",
        ),
        (
            witness_head(1, vec![short_signature]),
            "witnesses[0].signature",
        ),
        (
            witness_head(1, vec![key.clone(), key]),
            "witnesses[1].key_id",
        ),
    ] {
        given(plan.clone()).when(us(), command).then_invalid(field);
    }
    given_no_plan()
        .when(us(), witness_head(1, vec![witness("0011223344556677")]))
        .then_rule("plan_missing");
}

#[test]
fn auditors_witness_heads_and_nothing_conflicts_with_vouching_for_one() {
    let command = witness_head(1, vec![witness("0011223344556677")]);
    assert_eq!(
        command.required_role(None),
        Requirement::Role(PlanRole::Auditor)
    );
    let sign = Command::SignHead {
        version: 1,
        head_hash: HASH.into(),
    };
    assert_eq!(
        sign.required_role(None),
        Requirement::Either(PlanRole::Auditor, PlanRole::Admin)
    );
    let ctx = alliance_domain::CommandContext { actor: us() };
    assert_eq!(command.keys(&ctx), Default::default());
    let event = Event::HeadSigned {
        version: 1,
        head_hash: HASH.into(),
    };
    assert_eq!(event.keys(), std::collections::BTreeSet::<Key>::new());
    assert_eq!(event.valid_date(), None);
}
