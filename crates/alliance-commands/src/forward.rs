//! Forwarding a request to the instance that writes its plan, so a client never needs to know
//! how plans are spread over instances. A forwarded request carries a mark and is never
//! forwarded again: an instance that receives one for a plan it does not write (ownership moved
//! meanwhile) answers `UNAVAILABLE`, and the client retries with the same command id.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use alliance_proto::v1;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_stdx::lock;
use futures::future::BoxFuture;
use tonic::metadata::MetadataMap;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::{Request, Response, Status};

use alliance_server::calls::{carry_caller, endpoint, name_caller};

/// The metadata mark of a forwarded request; its value is the forwarding instance's address.
pub const FORWARDED_BY: &str = "x-alliance-forwarded-by";
/// The deadline of a forwarded request whose caller set none.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How long connecting to another instance may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request that can be forwarded with the RPC of its name.
pub trait Forward: Sized + Send + 'static {
    type Reply: Send + 'static;

    fn call(
        client: PlanCommandsClient<Channel>,
        request: Request<Self>,
    ) -> BoxFuture<'static, Result<Response<Self::Reply>, Status>>;
}

macro_rules! forward {
    ($($request:ident => $method:ident -> $reply:ident),* $(,)?) => {
        $(impl Forward for v1::$request {
            type Reply = v1::$reply;

            fn call(
                mut client: PlanCommandsClient<Channel>,
                request: Request<Self>,
            ) -> BoxFuture<'static, Result<Response<Self::Reply>, Status>> {
                Box::pin(async move { client.$method(request).await })
            }
        })*
    };
}

forward! {
    CreatePlanRequest => create_plan -> CommandResult,
    BranchPlanRequest => branch_plan -> CommandResult,
    RegisterForceElementRequest => register_force_element -> CommandResult,
    RecordCapabilityLevelRequest => record_capability_level -> CommandResult,
    DefineAgreementClauseRequest => define_agreement_clause -> CommandResult,
    DefineConditionRequest => define_condition -> CommandResult,
    AssessConditionRequest => assess_condition -> CommandResult,
    ProposeDecisionRequest => propose_decision -> CommandResult,
    AddForceElementRequest => add_force_element -> CommandResult,
    WithdrawForceElementRequest => withdraw_force_element -> CommandResult,
    ReduceForceElementRequest => reduce_force_element -> CommandResult,
    RelocateForceElementRequest => relocate_force_element -> CommandResult,
    ScheduleOpconTransferRequest => schedule_opcon_transfer -> CommandResult,
    ChangeCommandArrangementRequest => change_command_arrangement -> CommandResult,
    AmendAgreementClauseRequest => amend_agreement_clause -> CommandResult,
    PlanCapabilityInvestmentRequest => plan_capability_investment -> CommandResult,
    EndorseDecisionRequest => endorse_decision -> CommandResult,
    AdoptDecisionRequest => adopt_decision -> CommandResult,
    RejectDecisionRequest => reject_decision -> CommandResult,
    WithdrawDecisionRequest => withdraw_decision -> CommandResult,
    RecordSimulationRunRequest => record_simulation_run -> CommandResult,
    GrantRoleRequest => grant_role -> CommandResult,
    RevokeRoleRequest => revoke_role -> CommandResult,
    RequirePrerequisiteRequest => require_prerequisite -> CommandResult,
    DefineConstraintRequest => define_constraint -> CommandResult,
    WaiveConstraintRequest => waive_constraint -> CommandResult,
    AssignMissionRequest => assign_mission -> CommandResult,
    WitnessHeadRequest => witness_head -> CommandResult,
    SignHeadRequest => sign_head -> CommandResult,
    GetPlanRequest => get_plan -> PlanSummary,
}

/// How the other instances are called.
#[derive(Clone, Debug)]
enum Peers {
    /// Without an identity configuration: the caller's credentials travel on, over TLS verified
    /// against the CA (`--peer-ca`), or plaintext.
    Open(Option<ClientTlsConfig>),
    /// With one: only to an instance that proves on the connection that it is a `[[peer]]`,
    /// presenting this instance's certificate and naming the caller, whose credentials never
    /// travel; to none without peer TLS and a certificate to present.
    Proven(Option<alliance_auth::PeerTls>),
}

/// Connections to the other instances, by address.
pub struct Forwarder {
    /// This instance's address, named in the mark.
    me: String,
    channels: Mutex<HashMap<String, Channel>>,
    peers: Peers,
}

impl Forwarder {
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            channels: Mutex::default(),
            peers: Peers::Open(None),
        }
    }

    /// Connects to the other instances with TLS (the certificate an instance presents must
    /// carry the host of its address) and passes the callers' credentials on.
    pub fn with_tls(mut self, tls: Option<ClientTlsConfig>) -> Self {
        self.peers = Peers::Open(tls);
        self
    }

    /// Forwards only to instances that prove they are `[[peer]]`s with `tls` (see
    /// [`alliance_auth::PeerTls`]), naming the caller; forwards nothing without it.
    pub fn with_proven_peers(mut self, tls: Option<alliance_auth::PeerTls>) -> Self {
        self.peers = Peers::Proven(tls.filter(alliance_auth::PeerTls::presents_certificate));
        self
    }

    /// Whether a request was forwarded to this instance already.
    pub fn was_forwarded(metadata: &MetadataMap) -> bool {
        metadata.contains_key(FORWARDED_BY)
    }

    fn channel(&self, owner: &str) -> Result<Channel, Status> {
        let mut channels = lock(&self.channels);
        if let Some(channel) = channels.get(owner) {
            return Ok(channel.clone());
        }
        let channel = match &self.peers {
            Peers::Open(tls) => endpoint(owner, tls.as_ref())?
                .tcp_nodelay(true)
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_lazy(),
            Peers::Proven(Some(tls)) => tls.channel(owner, CONNECT_TIMEOUT).map_err(|e| {
                Status::invalid_argument(format!("bad server address {owner:?}: {e}"))
            })?,
            Peers::Proven(None) => return Err(unverifiable(owner)),
        };
        channels.insert(owner.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Sends `message` with the caller's credentials and deadline to `owner`.
    pub async fn forward<R: Forward>(
        &self,
        owner: &str,
        caller: &alliance_server::Caller,
        metadata: &MetadataMap,
        message: R,
    ) -> Result<Response<R::Reply>, Status> {
        let mut request = Request::new(message);
        match &self.peers {
            Peers::Open(_) => carry_caller(metadata, caller, &mut request),
            Peers::Proven(Some(_)) => name_caller(metadata, caller, &mut request),
            Peers::Proven(None) => return Err(unverifiable(owner)),
        }
        // The caller's deadline as this server reads it (clamped), not the header as sent.
        request.set_timeout(
            alliance_server::deadline::grpc_timeout(metadata).unwrap_or(DEFAULT_DEADLINE),
        );
        if let Ok(me) = self.me.parse() {
            request.metadata_mut().insert(FORWARDED_BY, me);
        }
        // Only a request already believed to come from the simulation service carries this on
        // (`RecordSimulationRun` checks it before it is forwarded).
        if let Some(mark) = metadata.get(alliance_server::recording::RECORDED_BY) {
            request
                .metadata_mut()
                .insert(alliance_server::recording::RECORDED_BY, mark.clone());
        }
        let client = PlanCommandsClient::new(self.channel(owner)?);
        R::call(client, request).await.map_err(|status| {
            if let Some(why) = std::error::Error::source(&status).and_then(alliance_auth::peer::unproven) {
                tracing::warn!(owner, %why, "an instance said to write a partition did not prove it is a server of this deployment");
                return Status::unavailable(format!(
                    "the writers' group names {owner} as the instance writing this plan, but it \
                     did not prove it is a server of this deployment ({why}); the request was \
                     not sent there; retry once the partition has a proven writer"
                ));
            }
            let transport = std::error::Error::source(&status)
                .is_some_and(|source| source.is::<tonic::transport::Error>());
            // CANCELLED here means the owner's connection went away mid-call (this caller is
            // still waiting): the outcome is unknown, and a retry with the command id is safe.
            if transport || status.code() == tonic::Code::Cancelled {
                Status::unavailable(format!(
                    "the instance writing this plan ({owner}) cannot be reached: {}; retry",
                    status.message()
                ))
            } else {
                status
            }
        })
    }
}

/// The refusal to forward to `owner` when no instance can prove itself (an identity
/// configuration without peer TLS, or without a certificate to present).
fn unverifiable(owner: &str) -> Status {
    Status::unavailable(format!(
        "this plan is written by another instance ({owner}, as the writers' group says), which \
         this instance cannot verify as a server of this deployment: it has no peer TLS with a \
         certificate of its own (--peer-ca, --peer-cert, --peer-key, or [peer_tls]); the request \
         was not sent there"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use alliance_domain::{Actor, TeamId};

    /// With an identity configuration but no peer TLS nothing is forwarded: the request is
    /// UNAVAILABLE naming the instance claimed, and no connection is even opened to it.
    #[tokio::test]
    async fn without_peer_tls_nothing_is_sent_to_the_writer_the_group_names() {
        let claimed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        claimed.set_nonblocking(true).unwrap();
        let owner = claimed.local_addr().unwrap().to_string();
        let forwarder = Forwarder::new("127.0.0.1:1").with_proven_peers(None);
        let caller = alliance_server::Caller {
            actor: Actor {
                team: TeamId::parse("us-force-planning").unwrap(),
                user: "planner".into(),
                side: None,
            },
            roles: Vec::new(),
        };
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", "Bearer a-secret".parse().unwrap());
        let status = forwarder
            .forward(&owner, &caller, &metadata, v1::GetPlanRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains(&owner) && status.message().contains("--peer-ca"),
            "{status:?}"
        );
        assert!(!status.message().contains("a-secret"));
        let accepted = claimed.accept().map(|_| ()).unwrap_err();
        assert_eq!(accepted.kind(), std::io::ErrorKind::WouldBlock);
    }
}
