//! An online backup taken while 64 clients keep writing over gRPC restores to a log that holds
//! every command acknowledged before the backup began, each plan's chain whole; a restore or a
//! backup over a directory that holds anything is refused and changes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_logcopy::{CopyError, backup, restore};
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_server::{Authenticator, TokenFile};
use alliance_tests::requests;
use tokio::sync::{mpsc, oneshot};

const CLIENTS: usize = 64;
/// Commands acknowledged before the backup starts.
const BEFORE: usize = 1_000;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn authed<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The command service on the embedded log in `data_dir`, served on a loopback port.
async fn serve(data_dir: &Path) -> (String, SqliteLog, oneshot::Sender<()>) {
    let log = SqliteLog::open(SqliteLogConfig::new(data_dir.join("alliance.db"))).unwrap();
    let auth =
        Authenticator::from_token_file(&TokenFile::load(&deploy("dev-tokens.toml")).unwrap())
            .unwrap();
    let service = Arc::new(CommandService::open(log.clone()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let api = PlanCommandsApi::new(service, Arc::new(auth), address.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        alliance_commands::server::serve(listener, api, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{address}"), log, stop)
}

/// One client: creates its plan, then registers elements on it until `stop`, sending each
/// acknowledged command id.
async fn client(address: String, stop: Arc<AtomicBool>, acked: mpsc::UnboundedSender<String>) {
    let mut client = PlanCommandsClient::connect(address).await.unwrap();
    let created = client
        .create_plan(authed(
            "dev-alliance-approvers",
            requests::create_plan("under load", requests::date(2024, 1, 1)),
        ))
        .await
        .unwrap()
        .into_inner();
    let plan_id = created.plan_id;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let request = requests::register(
            &plan_id,
            requests::brigade(&format!("bde-{n}"), "brigade", 500),
            None,
        );
        let command_id = request.meta.as_ref().unwrap().command_id.clone();
        client
            .register_force_element(authed("dev-us-force-planning", request))
            .await
            .unwrap();
        if acked.send(command_id).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_command_acknowledged_before_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (address, log, stop_server) = serve(&data).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (acked_tx, mut acked) = mpsc::unbounded_channel();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(address.clone(), stop.clone(), acked_tx.clone())))
        .collect();
    drop(acked_tx);

    // Every command acknowledged before the backup starts.
    let mut before = BTreeSet::new();
    while before.len() < BEFORE {
        before.insert(acked.recv().await.unwrap());
    }
    let backup_dir = root.path().join("backup");
    let mut backing_up = tokio::spawn({
        let (data, backup_dir) = (data.clone(), backup_dir.clone());
        async move { backup(&data, &backup_dir).await }
    });
    // The load goes on while the backup runs: commands land during it.
    let mut during = 0;
    let report = loop {
        tokio::select! {
            done = &mut backing_up => break done.unwrap().unwrap(),
            Some(_) = acked.recv() => during += 1,
        }
    };
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let _ = stop_server.send(());
    let source_events = log.read_all(1, usize::MAX).await.unwrap().len() as u64;

    // The backup is a consistent prefix of what the log went on to hold.
    assert!(report.inventory.events >= BEFORE as u64 + CLIENTS as u64);
    assert!(report.inventory.events <= source_events);
    assert!(report.files.contains(&"alliance.db".to_owned()));

    let restored_dir = root.path().join("restored");
    let restored = restore(&backup_dir, &restored_dir).await.unwrap();
    assert_eq!(restored, report.inventory);
    let restored_log =
        SqliteLog::open(SqliteLogConfig::new(restored_dir.join("alliance.db"))).unwrap();
    for command_id in &before {
        assert!(
            restored_log
                .find_command(command_id)
                .await
                .unwrap()
                .is_some(),
            "acknowledged command {command_id} is missing from the restored log"
        );
    }
    // What the restore holds is what the source holds, record for record.
    let restored_records = restored_log.read_all(1, usize::MAX).await.unwrap();
    let source_records = log.read_all(1, restored_records.len()).await.unwrap();
    assert_eq!(restored_records, source_records);
    eprintln!(
        "{} events backed up; {during} commands acknowledged while the backup ran",
        report.inventory.events
    );
}

#[tokio::test]
async fn a_restore_or_a_backup_over_a_directory_that_holds_anything_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (address, _log, stop_server) = serve(&data).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (acked_tx, mut acked) = mpsc::unbounded_channel();
    let writing = tokio::spawn(client(address, stop.clone(), acked_tx));
    for _ in 0..10 {
        acked.recv().await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writing.await.unwrap();
    let _ = stop_server.send(());
    let backup_dir = root.path().join("backup");
    let report = backup(&data, &backup_dir).await.unwrap();
    assert!(report.inventory.events >= 11);

    // A data directory in use: its log stays as it was.
    let occupied = root.path().join("occupied");
    std::fs::create_dir_all(&occupied).unwrap();
    std::fs::write(occupied.join("alliance.db"), b"someone's log").unwrap();
    let error = restore(&backup_dir, &occupied).await.unwrap_err();
    assert!(
        matches!(&error, CopyError::NotEmpty { entry, .. } if entry == "alliance.db"),
        "{error}"
    );
    assert_eq!(
        std::fs::read(occupied.join("alliance.db")).unwrap(),
        b"someone's log"
    );
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1);

    // A backup over an earlier one, and a restore from a directory that is no backup.
    let error = backup(&data, &backup_dir).await.unwrap_err();
    assert!(matches!(error, CopyError::NotEmpty { .. }), "{error}");
    let error = restore(&occupied, &root.path().join("new"))
        .await
        .unwrap_err();
    assert!(matches!(error, CopyError::NoManifest(_)), "{error}");
    assert!(!root.path().join("new").exists());

    // A backup whose copy was tampered with after its manifest does not restore.
    std::fs::remove_file(backup_dir.join("alliance.db")).unwrap();
    let other = root.path().join("other");
    let (_a, other_log, stop) = serve(&other).await;
    let _ = stop.send(());
    drop(other_log);
    std::fs::copy(other.join("alliance.db"), backup_dir.join("alliance.db")).unwrap();
    let target = root.path().join("tampered");
    let error = restore(&backup_dir, &target).await.unwrap_err();
    assert!(matches!(error, CopyError::Mismatch(_)), "{error}");
    assert!(!target.join("alliance.db").exists());
}
