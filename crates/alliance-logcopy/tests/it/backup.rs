//! An online backup taken while 64 clients keep writing over gRPC restores to a log that holds
//! every command acknowledged before the backup began, each plan's chain whole; a restore or a
//! backup over a directory that holds anything is refused and changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alliance_eventlog::{EventLog, SqliteLog, SqliteLogConfig};
use alliance_logcopy::{CopyError, backup, restore};
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_tests::requests::{self, authed};
use alliance_tests::server::tokens::{APPROVER, US};
use alliance_tests::server::{Server, Services};
use tokio::sync::mpsc;

const CLIENTS: usize = 64;
/// Commands acknowledged before the backup starts.
const BEFORE: usize = 1_000;

/// One client: creates its plan, then registers elements on it until `stop`, sending each
/// acknowledged command id.
async fn client(address: String, stop: Arc<AtomicBool>, acked: mpsc::UnboundedSender<String>) {
    let mut client = PlanCommandsClient::connect(address).await.unwrap();
    let created = client
        .create_plan(authed(
            APPROVER,
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
            .register_force_element(authed(US, request))
            .await
            .unwrap();
        if acked.send(command_id).is_err() {
            return;
        }
    }
}

/// `clients` clients writing to the command service at `address` until stopped, and the ids of
/// the commands acknowledged to them.
struct Load {
    stop: Arc<AtomicBool>,
    acked: mpsc::UnboundedReceiver<String>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(address: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (acked_tx, acked) = mpsc::unbounded_channel();
        let clients = (0..clients)
            .map(|_| tokio::spawn(client(address.to_owned(), stop.clone(), acked_tx.clone())))
            .collect();
        Load {
            stop,
            acked,
            clients,
        }
    }

    /// Stops the clients and waits for them to end.
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_every_command_acknowledged_before_it() {
    let root = tempfile::tempdir().unwrap();
    // The command service on the embedded log in its data dir.
    let server = Server::start(Services::commands()).await;
    let (address, data, log) = (
        server.url.clone(),
        server.store().dir().to_owned(),
        server.log.sqlite().clone(),
    );

    let mut load = Load::start(&address, CLIENTS);

    // Every command acknowledged before the backup starts.
    let mut before = BTreeSet::new();
    while before.len() < BEFORE {
        before.insert(load.acked.recv().await.unwrap());
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
            Some(_) = load.acked.recv() => during += 1,
        }
    };
    load.stop().await;
    let store = server.store().clone();
    server.stop().await;
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
    drop(store);
}

#[tokio::test]
async fn a_restore_or_a_backup_over_a_directory_that_holds_anything_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(Services::commands()).await;
    let store = server.store().clone();
    let data = store.dir().to_owned();
    let mut load = Load::start(&server.url, 1);
    for _ in 0..10 {
        load.acked.recv().await.unwrap();
    }
    load.stop().await;
    server.stop().await;
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
    let other = Server::start(Services::commands()).await;
    let other_db = other.store().db();
    let other_store = other.store().clone();
    other.stop().await;
    std::fs::copy(&other_db, backup_dir.join("alliance.db")).unwrap();
    let target = root.path().join("tampered");
    let error = restore(&backup_dir, &target).await.unwrap_err();
    assert!(matches!(error, CopyError::Mismatch(_)), "{error}");
    assert!(!target.join("alliance.db").exists());
    drop((store, other_store));
}
