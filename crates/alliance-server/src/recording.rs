//! Who may record a simulation run: the simulation service alone, for the caller who ran it.
//!
//! `RecordSimulationRun` appends what a simulation found. A client calling it directly could
//! write any headline into a plan's history, so the command service takes it only from
//! - the simulation service of this process, whose request carries [`InProcessRecorder`] in its
//!   extensions (extensions never come from the network, so no client can set it);
//! - a server of this deployment (the simulation service on its own, or a command instance
//!   forwarding one of these), which marks the request with [`RECORDED_BY`] and connects with a
//!   client certificate listed as a `[[peer]]` (`alliance-auth` `PeerCerts`); with no peer
//!   configured, no remote recording is believed;
//! - in development only (the development token file, no identity configuration), a request
//!   marked with [`RECORDED_BY`] from a loopback address: the local cluster and the end-to-end
//!   tests run the simulation service that way. A client on the network never passes; a process
//!   on the same machine holding a development token can, as it can act as any team.
//!
//! The caller must still hold a role on the plan that may run simulations (any role: a run reads
//! the plan), checked with the command as usual.

use tonic::{Request, Status};

use crate::auth::{Authenticator, Caller};

/// The metadata mark of a `RecordSimulationRun` sent by a server of this deployment.
pub const RECORDED_BY: &str = "x-alliance-recorded-by";

/// Marks a request as sent by the simulation service of this process. Only code in the process
/// can put it in a request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct InProcessRecorder {
    _private: (),
}

impl InProcessRecorder {
    /// Marks `request` as recorded by this process's simulation service (and, should the plan be
    /// written by another instance, as a server's when it is forwarded there).
    pub fn mark<T>(request: &mut Request<T>) {
        request
            .extensions_mut()
            .insert(InProcessRecorder { _private: () });
        mark_remote(request);
    }
}

/// Marks `request` as recorded by the simulation service over gRPC; believed from a `[[peer]]`
/// certificate only (or, in development, from loopback).
pub fn mark_remote<T>(request: &mut Request<T>) {
    request.metadata_mut().insert(
        RECORDED_BY,
        tonic::metadata::MetadataValue::from_static("simulation"),
    );
}

/// The connection presented the client certificate of a server of this deployment (a
/// `[[peer]]`): left in a request's extensions by [`crate::VerifyLayer`].
#[derive(Clone, Copy, Debug)]
pub struct PeerConnection {
    _private: (),
}

impl PeerConnection {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }
}

/// Refuses a `RecordSimulationRun` that the simulation service did not send.
pub fn check<T>(request: &Request<T>, auth: &Authenticator, caller: &Caller) -> Result<(), Status> {
    if request.extensions().get::<InProcessRecorder>().is_some() {
        return Ok(());
    }
    if request.metadata().contains_key(RECORDED_BY) {
        if request.extensions().get::<PeerConnection>().is_some() {
            return Ok(());
        }
        let loopback = request.remote_addr().is_some_and(|a| a.ip().is_loopback());
        if !auth.verifies() && loopback {
            tracing::debug!("simulation run recorded from loopback with development tokens");
            return Ok(());
        }
    }
    Err(Status::permission_denied(format!(
        "team {} may not record a simulation run: runs are recorded by the simulation service \
         alone, for the caller who ran them (run it with Simulation/Run)",
        caller.actor.team
    )))
}
