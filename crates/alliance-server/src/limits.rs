//! Limits that keep one caller from exhausting a server. String lengths and list sizes are
//! checked with each command (`alliance-domain`), page sizes with each query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use alliance_stdx::lock;

use crate::auth::Caller;

/// The largest request message a server decodes (tonic's default is 4 MiB); a larger one is
/// refused with `OUT_OF_RANGE` ("decoded message length too large") before it is decoded.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Streams (subscriptions, exports, simulation runs) one caller may hold open at once in one
/// process.
pub const MAX_STREAMS_PER_CALLER: usize = 16;

/// The streams each caller holds open.
#[derive(Clone, Default)]
pub struct StreamQuota {
    open: Arc<Mutex<HashMap<String, usize>>>,
    max: usize,
}

/// One open stream of a caller; dropping it (when the stream ends) frees its place.
pub struct StreamPermit {
    quota: StreamQuota,
    key: String,
}

impl StreamQuota {
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::default(),
            max,
        }
    }

    /// The quota of this process.
    pub fn global() -> &'static StreamQuota {
        static QUOTA: OnceLock<StreamQuota> = OnceLock::new();
        QUOTA.get_or_init(|| StreamQuota::new(MAX_STREAMS_PER_CALLER))
    }

    /// A place for one more stream of `caller`, or `RESOURCE_EXHAUSTED` when it holds the most
    /// it may.
    pub fn open(&self, caller: &Caller) -> Result<StreamPermit, tonic::Status> {
        let key = key(caller);
        let mut open = lock(&self.open);
        let count = open.entry(key.clone()).or_default();
        if *count >= self.max {
            return Err(tonic::Status::resource_exhausted(format!(
                "{key} holds {count} streams open on this server, the most one caller may; close one first"
            )));
        }
        *count += 1;
        Ok(StreamPermit {
            quota: self.clone(),
            key,
        })
    }

    /// Streams `caller` holds open now.
    pub fn held(&self, caller: &Caller) -> usize {
        let open = lock(&self.open);
        open.get(&key(caller)).copied().unwrap_or(0)
    }
}

/// A caller's place in the quota: its team and user.
fn key(caller: &Caller) -> String {
    format!("{}/{}", caller.actor.team, caller.actor.user)
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = lock(&self.quota.open);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
