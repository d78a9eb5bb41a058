//! The command service when appends fail: a write queue of one refuses most of a burst at once.
//! Whatever is refused is not applied, whatever is acknowledged is in the log, and retries with
//! the same command ids end with exactly one event per command.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use alliance_commands::{CommandMeta, CommandService};
use alliance_domain::{Command, Component, ElementKind, ForceElementSpec, Side, TeamId};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_server::{Authenticator, ServiceError, TokenFile};

fn register(n: usize) -> Command {
    Command::RegisterForceElement {
        element: ForceElementSpec {
            id: alliance_domain::ElementId::parse(&format!("e{n}")).unwrap(),
            name: format!("element {n}").into(),
            side: Side::Us,
            component: Component::Army,
            kind: ElementKind::Logistics,
            personnel: 10,
            equipment: Default::default(),
            base: "Camp Humphreys".into(),
        },
        present_from: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_appends_are_not_applied_and_retries_apply_each_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteLogConfig::new(dir.path().join("alliance.db"));
    config.queue_capacity = 1;
    let log = SqliteLog::open(config).unwrap();
    let tokens =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/dev-tokens.toml");
    let auth = Authenticator::from_token_file(&TokenFile::load(&tokens).unwrap()).unwrap();
    let caller = auth
        .team_caller(&TeamId::parse("alliance-approvers").unwrap(), "tester")
        .unwrap();
    let service = Arc::new(CommandService::open(log.clone()).await.unwrap());

    let plan_id = uuid::Uuid::now_v7();
    let create = Command::CreatePlan {
        plan_id,
        name: "faults".into(),
        description: String::new(),
        horizon_start: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        horizon_end: chrono::NaiveDate::from_ymd_opt(2035, 1, 1).unwrap(),
        grants: Vec::new(),
    };
    let meta = |id: &str| CommandMeta {
        command_id: id.to_owned(),
        plan_id: Some(plan_id),
        ..Default::default()
    };
    service
        .execute(&caller, meta("create"), create.clone())
        .await
        .unwrap();

    let commands: Vec<(String, Command)> =
        (0..64).map(|n| (format!("cmd-{n}"), register(n))).collect();
    let mut pending: Vec<(String, Command)> = commands.clone();
    let mut acknowledged: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    let mut refusals = 0;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 1000, "retries never converged");
        let mut tasks = Vec::new();
        for (id, command) in pending.drain(..) {
            let service = service.clone();
            let caller = caller.clone();
            let meta = meta(&id);
            tasks.push(tokio::spawn(async move {
                let result = service.execute(&caller, meta, command.clone()).await;
                (id, command, result)
            }));
        }
        for task in tasks {
            let (id, command, result) = task.await.unwrap();
            match result {
                Ok(outcome) => {
                    if let Some(first) = acknowledged.get(&id) {
                        assert_eq!(first, &outcome.event_ids, "a retry changed the result");
                    }
                    acknowledged.insert(id, outcome.event_ids);
                }
                Err(ServiceError::Log(_) | ServiceError::Concurrent { .. }) => {
                    refusals += 1;
                    pending.push((id, command));
                }
                Err(other) => panic!("unexpected refusal: {other}"),
            }
        }
    }
    assert!(refusals > 0, "the burst should overflow a queue of one");

    // Exactly one event per command, versions gapless, and each acknowledged id is what is stored.
    let events = log.read_plan(plan_id, 1, 10_000).await.unwrap();
    let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=65).collect::<Vec<_>>());
    let stored: HashMap<&str, uuid::Uuid> = events
        .iter()
        .map(|e| (e.command_id.as_str(), e.event_id))
        .collect();
    for (id, event_ids) in &acknowledged {
        assert_eq!(stored[id.as_str()], event_ids[0], "{id}");
    }
    let ids: BTreeSet<&str> = events.iter().map(|e| e.command_id.as_str()).collect();
    assert_eq!(ids.len(), 65);

    // The service's view equals a fresh fold of the log.
    let reopened = CommandService::open(log.clone()).await.unwrap();
    assert_eq!(
        service.plan(plan_id).await.unwrap(),
        reopened.plan(plan_id).await.unwrap()
    );
}
