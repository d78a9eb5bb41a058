//! Records signed by their writer: `AuditLog/VerifyPlan` over gRPC, on a real SQLite file (or a
//! copy of it), names the exact record an operator rewrote and re-sealed without the writer's
//! key, a record signed by a key nobody trusts, and a key used outside its validity; a key
//! rotated out still verifies what it signed while in force.

use std::path::Path;
use std::sync::Arc;

use alliance_commands::CommandService;
use alliance_domain::{Command, PlanId, Side};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_record::chain::{self, Hash};
use alliance_record::signing::{Signer, TrustedKey, TrustedKeys};
use alliance_tests::requests;
use prost::Message;
use rusqlite::params;

use crate::harness::{Env, US, date, element, payload_of, position_of, registration, serve_log};

/// The plan's creator (admin role on it) may verify it.
const TOKEN: &str = "dev-alliance-approvers";

fn authed<T>(message: T) -> tonic::Request<T> {
    requests::authed(TOKEN, message)
}

/// `AuditLog/VerifyPlan` of `plan` at `address`, against a kept head if given.
async fn try_verify(
    address: &str,
    plan: PlanId,
    kept_head: Option<v1::SignedHead>,
) -> Result<v1::VerifyPlanReply, tonic::Status> {
    let mut client = AuditLogClient::connect(address.to_owned()).await.unwrap();
    client
        .verify_plan(authed(v1::VerifyPlanRequest {
            plan_id: plan.to_string(),
            kept_head,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn verify(address: &str, plan: PlanId) -> v1::VerifyPlanReply {
    try_verify(address, plan, None).await.unwrap()
}

/// `AuditLog/GetHead` of `plan` at `address`.
async fn head(address: &str, plan: PlanId) -> v1::SignedHead {
    let mut client = AuditLogClient::connect(address.to_owned()).await.unwrap();
    client
        .get_head(authed(v1::GetHeadRequest {
            plan_id: plan.to_string(),
        }))
        .await
        .unwrap()
        .into_inner()
}

/// The first break a reply names: kind, version, position.
#[track_caller]
fn named(reply: &v1::VerifyPlanReply) -> (String, u64, u64) {
    assert!(!reply.ok, "the history should not verify: {reply:?}");
    let at = reply.first_break.as_ref().expect("a break");
    (at.kind.clone(), at.version, at.position)
}

/// A consistent copy of the SQLite file at `to`.
fn copy_db(env: &Env, to: &Path) {
    let db = rusqlite::Connection::open(env.db()).unwrap();
    db.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

fn set_payload(db: &rusqlite::Connection, plan: PlanId, version: u64, payload: &[u8]) {
    let changed = db
        .execute(
            "UPDATE events SET payload = ?3 WHERE plan_id = ?1 AND version = ?2",
            params![plan.as_bytes().as_slice(), version as i64, payload],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// What an operator with the file but not the writer's key does: changes version `from`
/// (the recording user), then re-seals it and every later record of the plan so the chain
/// holds again. Each re-sealed record is left unsigned, keeps its old signature, or is signed
/// by `forger`'s key.
fn rewrite_and_reseal(
    db: &rusqlite::Connection,
    plan: PlanId,
    from: u64,
    last: u64,
    old_signature: bool,
    forger: Option<&Signer>,
) {
    let mut prev: Hash = if from == 1 {
        chain::GENESIS
    } else {
        chain::carried_hash(&payload_of(db, plan, from - 1)).unwrap()
    };
    for version in from..=last {
        let stored = payload_of(db, plan, version);
        let mut envelope = v1::EventEnvelope::decode(stored.as_slice()).unwrap();
        if version == from {
            envelope.actor.as_mut().unwrap().user = "someone.else".into();
        }
        let (mut record, hash) = chain::seal_signed(envelope, &prev, forger);
        if old_signature {
            let sealed = chain::sealed(&stored).unwrap();
            let signed_tail = &stored[sealed.body.len() + 34..];
            assert_eq!(signed_tail.len(), 77, "the stored record is signed");
            record.extend_from_slice(signed_tail);
        }
        set_payload(db, plan, version, &record);
        prev = hash;
    }
}

#[tokio::test]
async fn an_event_rewritten_in_a_copy_of_the_file_and_resealed_without_the_key_is_named() {
    let env = Env::open().await;
    let (stripped, kept, forged) = (
        env.plan_with_elements(6).await,
        env.plan_with_elements(6).await,
        env.plan_with_elements(6).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("alliance.db");
    copy_db(&env, &copy);
    {
        let db = rusqlite::Connection::open(&copy).unwrap();
        // Version 4 rewritten; 4..7 re-sealed unsigned, with their old signatures, or signed by
        // a key of the operator's own.
        rewrite_and_reseal(&db, stripped, 4, 7, false, None);
        rewrite_and_reseal(&db, kept, 4, 7, true, None);
        let forger = Signer::generate().unwrap();
        rewrite_and_reseal(&db, forged, 4, 7, false, Some(&forger));
    }
    let db = rusqlite::Connection::open(&copy).unwrap();
    let log = SqliteLog::open(SqliteLogConfig::new(&copy)).unwrap();
    let address = serve_log(log, &env.auth, env.trusted.clone()).await;

    let reply = verify(&address, stripped).await;
    assert_eq!(
        named(&reply),
        ("unsigned".into(), 4, position_of(&db, stripped, 4))
    );
    assert_eq!(reply.events, 3, "the events before the rewrite verify");
    assert_eq!(
        named(&verify(&address, kept).await),
        ("bad_signature".into(), 4, position_of(&db, kept, 4))
    );
    assert_eq!(
        named(&verify(&address, forged).await),
        ("unknown_key".into(), 4, position_of(&db, forged, 4))
    );

    // The original file still verifies, signed from its first record.
    let original = serve_log(env.log.clone(), &env.auth, env.trusted.clone()).await;
    for plan in [stripped, kept, forged] {
        let reply = verify(&original, plan).await;
        assert!(reply.ok, "{reply:?}");
        assert_eq!((reply.events, reply.unsigned_through), (7, 0));
    }
}

#[tokio::test]
async fn a_history_sealed_before_signing_verifies_as_unsigned_up_to_its_last_unsigned_version() {
    let mut env = Env::open().await;
    // Written by a writer that did not sign (as every writer did before), then by one that does.
    let signing = env.service.clone();
    env.service = Arc::new(CommandService::open(env.log.clone()).await.unwrap());
    let plan = env.plan_with_elements(3).await;
    env.service = signing;
    env.exec(US, plan, registration("signed-unit", 10)).await;
    let address = serve_log(env.log.clone(), &env.auth, env.trusted.clone()).await;
    let reply = verify(&address, plan).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!((reply.events, reply.unsigned_through), (5, 4));

    // An unsigned record appended after the signed one is named.
    env.service = Arc::new(CommandService::open(env.log.clone()).await.unwrap());
    let outcome = env
        .exec(
            US,
            plan,
            Command::RegisterForceElement {
                element: element("late-unsigned-unit", Side::Us, 10),
                present_from: date(2024, 1, 1),
            },
        )
        .await;
    let db = rusqlite::Connection::open(env.db()).unwrap();
    assert_eq!(
        named(&verify(&address, plan).await),
        ("unsigned".into(), 6, position_of(&db, plan, 6))
    );
    assert_eq!(outcome.plan_version, 6);
}

#[tokio::test]
async fn a_rotated_key_verifies_what_it_signed_while_in_force_and_nothing_after() {
    let mut env = Env::open().await;
    let (a, b) = (Signer::generate().unwrap(), Signer::generate().unwrap());
    let started = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    let log = env.log.clone();
    let writer = |signer: &Signer| {
        let log = log.clone();
        let signer = signer.clone();
        async move { Arc::new(CommandService::open(log).await.unwrap().with_signer(signer)) }
    };
    // Key A signs the first records of the plan, then is retired at `rotated`; key B signs the
    // later ones.
    env.service = writer(&a).await;
    let plan = env.plan_with_elements(2).await;
    let rotated = chrono::Utc::now().timestamp_micros() + 1;
    env.service = writer(&b).await;
    env.exec(US, plan, registration("after-rotation", 10)).await;
    let period = |signer: &Signer, from: i64, until: Option<i64>| TrustedKey {
        not_before_micros: Some(from),
        not_after_micros: until,
        ..TrustedKey::always(signer.verifying_key())
    };
    let both = Arc::new(TrustedKeys::new([
        period(&a, started, Some(rotated)),
        period(&b, rotated, None),
    ]));
    let address = serve_log(env.log.clone(), &env.auth, both.clone()).await;
    let reply = verify(&address, plan).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!((reply.events, reply.unsigned_through), (4, 0));

    // Without A among the trusted keys, its records are by an unknown key.
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let only_b = Arc::new(TrustedKeys::new([period(&b, rotated, None)]));
    let address_b = serve_log(env.log.clone(), &env.auth, only_b).await;
    assert_eq!(
        named(&verify(&address_b, plan).await),
        ("unknown_key".into(), 1, position_of(&db, plan, 1))
    );

    // A record A signs after its retirement is named.
    env.service = writer(&a).await;
    env.exec(US, plan, registration("retired-key", 10)).await;
    assert_eq!(
        named(&verify(&address, plan).await),
        ("key_not_valid".into(), 5, position_of(&db, plan, 5))
    );
    assert_eq!(env.log.plan_version(plan).await.unwrap(), 5);
}

#[tokio::test]
async fn a_history_cut_short_or_rewritten_under_a_kept_head_is_named_against_it() {
    let env = Env::open().await;
    let keys = alliance_projection::AuditKeys {
        trusted: Some(env.trusted.clone()),
        signer: Some(env.signer.clone()),
        witnesses: None,
    };
    let (cut, rewritten) = (
        env.plan_with_elements(6).await,
        env.plan_with_elements(6).await,
    );
    let address = serve_log(env.log.clone(), &env.auth, keys).await;
    let (kept_cut, kept_rewritten) = (head(&address, cut).await, head(&address, rewritten).await);
    assert_eq!(kept_cut.version, 7);
    assert_eq!(kept_cut.key_id, env.signer.id().to_string());
    assert!(
        try_verify(&address, cut, Some(kept_cut.clone()))
            .await
            .unwrap()
            .ok
    );

    // The plan's last two records deleted from the file: the shorter chain still holds on its
    // own, but not against the kept head.
    let db = rusqlite::Connection::open(env.db()).unwrap();
    db.execute(
        "DELETE FROM events WHERE plan_id = ?1 AND version >= 6",
        params![cut.as_bytes().as_slice()],
    )
    .unwrap();
    let alone = verify(&address, cut).await;
    assert!(alone.ok, "{alone:?}");
    assert_eq!(alone.events, 5);
    let against = try_verify(&address, cut, Some(kept_cut.clone()))
        .await
        .unwrap();
    assert_eq!(named(&against), ("truncated".into(), 6, 0));
    assert_eq!(against.events, 5);

    // The holder of the writer's key rewrites version 3 and signs everything after again: the
    // signatures hold, the kept head does not.
    rewrite_and_reseal(&db, rewritten, 3, 7, false, Some(&env.signer));
    assert!(verify(&address, rewritten).await.ok);
    assert_eq!(
        named(
            &try_verify(&address, rewritten, Some(kept_rewritten.clone()))
                .await
                .unwrap()
        ),
        ("diverged".into(), 7, position_of(&db, rewritten, 7))
    );

    // A kept head whose signature does not hold (here: its version changed) is refused.
    let forged = v1::SignedHead {
        version: 5,
        ..kept_cut.clone()
    };
    let refused = try_verify(&address, cut, Some(forged)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // So is a head signed by a key nobody trusts, however well it is made.
    let stranger = Signer::generate().unwrap();
    let hash: Hash = (0..32)
        .map(|i| u8::from_str_radix(&kept_cut.head_hash[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<u8>>()
        .try_into()
        .unwrap();
    let time = kept_cut.time.unwrap();
    let micros = time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000;
    let message = alliance_record::signing::head_message(cut.as_bytes(), 5, &hash, micros);
    let unknown = v1::SignedHead {
        version: 5,
        key_id: stranger.id().to_string(),
        signature: stranger
            .sign(alliance_record::signing::HEAD_CONTEXT, &message)
            .to_vec(),
        ..kept_cut
    };
    let refused = try_verify(&address, cut, Some(unknown)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("UnknownKey"), "{refused:?}");
}

/// Two different records at one version of a plan: the second is a conflict naming both event
/// ids, never dropped silently and never applied; the same record again is ignored.
#[tokio::test]
async fn a_different_record_at_a_version_held_is_a_conflict_and_the_first_stands() {
    use alliance_projection::ProjectionError;

    let env = Env::open().await;
    let plan = env.create_plan().await;
    let model = env.caught_up().await;
    let first = env.plan_events(plan).await.remove(0);
    model.apply(&first).unwrap();

    // Another record at version 1: the same event recorded again, under another event id.
    let event = alliance_record::envelope::decode_event(&first)
        .unwrap()
        .event;
    let actor = alliance_domain::Actor {
        team: alliance_domain::TeamId::parse(US).unwrap(),
        user: "planner".into(),
        side: Some(Side::Us),
    };
    let (record, _) = alliance_record::envelope::encode_event(
        plan,
        1,
        &event,
        &actor,
        "another-command",
        first.record_time_micros + 1,
        &chain::GENESIS,
    );
    let other = record.stored(plan, 1, first.position);
    assert_ne!(other.event_id, first.event_id);
    let refused = model.apply(&other).unwrap_err();
    assert!(
        matches!(
            refused,
            ProjectionError::Conflict { plan_id, version: 1, event_id, held }
                if plan_id == plan && event_id == other.event_id && held == first.event_id
        ),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains(&first.event_id.to_string())
            && message.contains(&other.event_id.to_string()),
        "{message}"
    );
    assert_eq!(
        model.with_plan(plan, |h| h.events[0].event_id).unwrap(),
        first.event_id
    );
}
