//! Backups of a data directory of the embedded log, and their restores.
//!
//! A backup directory holds a copy of each database of the data directory (`alliance.db`, the
//! event log; `simulation.db` and `security.db` where present), taken with SQLite's online
//! backup API while the server keeps writing; the read models' snapshot, copied as a file (it
//! is always written whole, through a rename, and checked against the log when restored); and
//! `MANIFEST`, written last: the files, then every plan's verified head and the events counted.
//! A directory without a manifest is not a backup.

use std::path::{Path, PathBuf};

use alliance_eventlog::{DatabaseFile, SqliteLog, SqliteLogConfig};
use alliance_record::chain;

use crate::inventory::{Inventory, inventory};
use crate::{CopyError, io};

/// The event log's database in a data directory.
pub const LOG_FILE: &str = "alliance.db";
/// The SQLite databases of a data directory, copied through the backup API.
pub const DATABASES: [&str; 3] = [LOG_FILE, "simulation.db", "security.db"];
/// Files copied as they are: the read models' snapshot.
pub const FILES: [&str; 1] = ["read-model.snapshot"];
/// What a backup holds, written last.
pub const MANIFEST: &str = "MANIFEST";
const MANIFEST_HEADER: &str = "alliance-backup 1";

/// What a backup copied, and the heads it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub files: Vec<String>,
    pub inventory: Inventory,
}

impl BackupReport {
    fn manifest(&self) -> String {
        let mut text = format!("{MANIFEST_HEADER}\n");
        for file in &self.files {
            text.push_str(&format!("file {file}\n"));
        }
        text.push_str(&self.inventory.to_text());
        text
    }

    fn from_manifest(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(format!("it does not start with {MANIFEST_HEADER:?}"));
        }
        let mut files = Vec::new();
        let mut rest = String::new();
        for line in lines {
            match line.strip_prefix("file ") {
                Some(file) if DATABASES.contains(&file) || FILES.contains(&file) => {
                    files.push(file.to_owned());
                }
                Some(file) => return Err(format!("it names an unknown file {file:?}")),
                None => {
                    rest.push_str(line);
                    rest.push('\n');
                }
            }
        }
        if !files.iter().any(|f| f == LOG_FILE) {
            return Err(format!("it names no {LOG_FILE}"));
        }
        Ok(Self {
            files,
            inventory: Inventory::from_text(&rest)?,
        })
    }
}

/// Backs up the data directory `data_dir` into `to`, a new or empty directory, while a server
/// may keep writing it; then verifies the copy: each plan's chain holds on the copy, and the
/// record at its head is the source's own (the copy is a prefix of the live log).
pub async fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, CopyError> {
    ensure_empty(to)?;
    let log_file = data_dir.join(LOG_FILE);
    if !log_file.is_file() {
        return Err(CopyError::NoLog(data_dir.display().to_string()));
    }
    std::fs::create_dir_all(to).map_err(io(to))?;
    let files = {
        let (data_dir, to) = (data_dir.to_owned(), to.to_owned());
        blocking(move || copy_files(&data_dir, &to)).await?
    };
    let copied = log_inventory(to.join(LOG_FILE)).await?;
    let heads: Vec<_> = copied.plans.iter().map(|(p, h)| (*p, *h)).collect();
    let differences = blocking(move || {
        let source = DatabaseFile::open(&log_file)?;
        let mut differences = Vec::new();
        for (plan, head) in heads {
            let record = source.record_at(plan, head.version)?;
            if record.and_then(|r| chain::carried_hash(&r.payload)) != Some(head.hash) {
                differences.push(format!(
                    "plan {plan} at version {} is not the source's record",
                    head.version
                ));
            }
        }
        Ok(differences)
    })
    .await?;
    if !differences.is_empty() {
        return Err(CopyError::Mismatch(differences));
    }
    let report = BackupReport {
        files,
        inventory: copied,
    };
    write_synced(&to.join(MANIFEST), report.manifest().as_bytes())?;
    Ok(report)
}

/// Restores the backup in `from` into `data_dir`, which must be empty or absent (a restore
/// never writes over data), and checks the restored log against the backup's manifest: every
/// plan's chain verifies and ends at the head the manifest names, with as many events. A copy
/// that does not match is removed again.
pub async fn restore(from: &Path, data_dir: &Path) -> Result<Inventory, CopyError> {
    ensure_empty(data_dir)?;
    let manifest_path = from.join(MANIFEST);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CopyError::NoManifest(from.display().to_string()));
        }
        Err(e) => return Err(io(&manifest_path)(e)),
    };
    let manifest = BackupReport::from_manifest(&text).map_err(|detail| CopyError::Manifest {
        path: from.display().to_string(),
        detail,
    })?;
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    for file in &manifest.files {
        let target = data_dir.join(file);
        std::fs::copy(from.join(file), &target).map_err(io(&target))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io(&target))?;
    }
    let restored = log_inventory(data_dir.join(LOG_FILE)).await;
    let differences = match &restored {
        Ok(restored) => restored.differences(&manifest.inventory),
        Err(e) => vec![e.to_string()],
    };
    if !differences.is_empty() {
        for file in &manifest.files {
            let _ = std::fs::remove_file(data_dir.join(file));
        }
        return Err(CopyError::Mismatch(differences));
    }
    restored
}

/// Refuses a directory that holds anything; an absent one is fine.
pub fn ensure_empty(path: &Path) -> Result<(), CopyError> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(path)(e)),
    };
    if let Some(entry) = entries.into_iter().next() {
        let entry = entry.map_err(io(path))?;
        return Err(CopyError::NotEmpty {
            path: path.display().to_string(),
            entry: entry.file_name().to_string_lossy().into_owned(),
        });
    }
    Ok(())
}

fn copy_files(data_dir: &Path, to: &Path) -> Result<Vec<String>, CopyError> {
    let mut files = Vec::new();
    for name in DATABASES {
        let source = data_dir.join(name);
        if source.is_file() {
            DatabaseFile::open(&source)?.backup_to(&to.join(name))?;
            files.push(name.to_owned());
        }
    }
    for name in FILES {
        let source = data_dir.join(name);
        if source.is_file() {
            let target = to.join(name);
            std::fs::copy(&source, &target).map_err(io(&target))?;
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(io(&target))?;
            files.push(name.to_owned());
        }
    }
    Ok(files)
}

/// The verified inventory of the event log in the file `path`.
async fn log_inventory(path: PathBuf) -> Result<Inventory, CopyError> {
    let log = blocking(move || Ok(SqliteLog::open(SqliteLogConfig::new(path))?)).await?;
    inventory(&log).await
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CopyError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(io(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(path))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CopyError> + Send + 'static,
) -> Result<T, CopyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CopyError::Log(alliance_eventlog::LogError::Unavailable(e.to_string())))?
}
