//! The operator's subcommands of the real `allianced` binary: a backup of a data directory
//! restores into a new one; a restore over a directory that holds anything is refused.

use std::path::Path;
use std::process::{Command, Output};

use alliance_eventlog::{EventLog, NewEvent, SqliteLog, SqliteLogConfig};

fn allianced(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_allianced"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("ALLIANCED_CONFIG")
        .env_remove("ALLIANCED_KAFKA_BOOTSTRAP")
        .output()
        .unwrap()
}

#[tokio::test]
async fn allianced_backs_up_and_restores_a_data_directory_and_never_restores_over_data() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    {
        // Records need not decode to be copied; their chain is judged: one sealed record.
        let log = SqliteLog::open(SqliteLogConfig::new(data.join("alliance.db"))).unwrap();
        let _ = log
            .append(
                uuid::Uuid::now_v7(),
                0,
                vec![NewEvent {
                    event_id: uuid::Uuid::now_v7(),
                    command_id: "c".into(),
                    event_type: "PlanCreated".into(),
                    record_time_micros: 1,
                    payload: Vec::new(),
                }],
            )
            .await;
    }
    let backup = root.path().join("backup");
    let out = allianced(&data, &["backup", "--to", backup.to_str().unwrap()]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // An unsealed record is no chain: the backup says so and exits non-zero.
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("chain breaks"), "{text}");

    let empty = root.path().join("empty");
    SqliteLog::open(SqliteLogConfig::new(empty.join("alliance.db"))).unwrap();
    let out = allianced(&empty, &["backup", "--to", backup.to_str().unwrap()]);
    // The first attempt left files behind: a backup is never written over them.
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
    std::fs::remove_dir_all(&backup).unwrap();
    let out = allianced(&empty, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("backed up 0 events"));

    let restored = root.path().join("restored");
    let out = allianced(&restored, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(restored.join("alliance.db").is_file());

    let out = allianced(&data, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
