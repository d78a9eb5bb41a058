//! Completed runs, kept by id: `{data_dir}/simulation.db`, a SQLite file apart from the plans'
//! streams. A run recorded in a plan's history can also be reproduced from its inputs, so an
//! instance that does not hold it can still answer for it.

use std::path::Path;
use std::sync::Mutex;

use alliance_domain::PlanId;
use alliance_proto::v1;
use alliance_stdx::lock;
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("simulation store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("simulation store: a stored run does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

pub struct RunStore {
    conn: Mutex<Connection>,
}

impl RunStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(Connection::open(path)?)
    }

    /// A store that lives as long as the process.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS runs (
                 run_id TEXT PRIMARY KEY,
                 plan_id TEXT NOT NULL,
                 result BLOB NOT NULL
             );",
        )?;
        Ok(RunStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    pub fn put(
        &self,
        run_id: Uuid,
        plan_id: PlanId,
        result: &v1::SimulationResult,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO runs (run_id, plan_id, result) VALUES (?1, ?2, ?3)",
            params![
                run_id.to_string(),
                plan_id.to_string(),
                result.encode_to_vec()
            ],
        )?;
        Ok(())
    }

    pub fn get(&self, run_id: Uuid) -> Result<Option<v1::SimulationResult>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT result FROM runs WHERE run_id = ?1",
                params![run_id.to_string()],
                |row| row.get(0),
            )
            .optional()?;
        Ok(bytes
            .map(|b| v1::SimulationResult::decode(b.as_slice()))
            .transpose()?)
    }
}
