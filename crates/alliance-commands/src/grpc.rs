//! `alliance.v1.PlanCommands` over tonic: authentication and conversion at the edge, then the
//! transport-free [`CommandService`].

use std::sync::Arc;

use alliance_domain::{Plan, PlanId};
use alliance_eventlog::{EventLog, Route};
use alliance_proto::convert::{CommandRequest, plan_head, plan_summary};
use alliance_proto::v1;
use alliance_proto::v1::plan_commands_server::{PlanCommands, PlanCommandsServer};
use tonic::{Request, Response, Status};

use crate::forward::{Forward, Forwarder};
use crate::service::{CommandMeta, CommandOutcome, CommandService};
use alliance_server::Authenticator;
use alliance_server::error::ServiceError;

/// How long a request waits for the new writer of a plan whose partition is moving.
const MOVE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The gRPC face of the command service.
pub struct PlanCommandsApi<L> {
    service: Arc<CommandService<L>>,
    auth: Arc<Authenticator>,
    forwarder: Forwarder,
    /// Where `ListPlans` reads the plans: a read model of the whole log, when the server has one.
    directory: Option<Arc<dyn alliance_server::access::PlanDirectory>>,
}

impl<L: EventLog> PlanCommandsApi<L> {
    /// `address` is where this instance is reached, named to the instances it forwards to.
    pub fn new(
        service: Arc<CommandService<L>>,
        auth: Arc<Authenticator>,
        address: impl Into<String>,
    ) -> Self {
        Self {
            service,
            auth,
            forwarder: Forwarder::new(address),
            directory: None,
        }
    }

    /// Lists plans from `directory` (a read model of the whole log) rather than from the plans
    /// this instance writes.
    pub fn with_directory(
        mut self,
        directory: Arc<dyn alliance_server::access::PlanDirectory>,
    ) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Forwards to the other instances over TLS (plaintext without it).
    pub fn with_peer_tls(mut self, tls: Option<tonic::transport::ClientTlsConfig>) -> Self {
        self.forwarder = self.forwarder.with_tls(tls);
        self
    }

    /// Forwards only to instances that prove they are `[[peer]]`s over `tls`, naming the caller
    /// instead of passing its credentials on; nothing without it (see [`Forwarder`]).
    pub fn with_proven_peers(mut self, tls: Option<alliance_auth::PeerTls>) -> Self {
        self.forwarder = self.forwarder.with_proven_peers(tls);
        self
    }

    /// The tonic service to add to a server.
    pub fn into_server(self) -> PlanCommandsServer<Self> {
        PlanCommandsServer::new(self)
            .max_decoding_message_size(alliance_server::limits::MAX_MESSAGE_BYTES)
    }

    /// The instance that writes `plan_id`, when it is not this one and the request may go there.
    /// While the plan's partition is moving (to this instance or another), waits a little for
    /// its new writer.
    async fn owner_elsewhere(
        &self,
        plan_id: PlanId,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Option<String> {
        let route = self
            .service
            .log()
            .settled_route(plan_id, MOVE_PATIENCE)
            .await;
        match route {
            // Forwarded once already: answer here, so a request never travels in circles.
            Route::Remote { .. } if Forwarder::was_forwarded(metadata) => None,
            Route::Remote { owner, .. } => owner,
            Route::Local => None,
        }
    }

    /// Forwards `message` to `owner`, the writer of `plan_id`, for as long as it is: once the
    /// plan is known to be written elsewhere (here, after `owner` stalled and the partition was
    /// taken over from it), the request is answered UNAVAILABLE instead of waiting on `owner`
    /// until the deadline. `owner` was fenced by the take-over: whatever it did not commit
    /// before can no longer be, and a retry with the same command id finds what it did.
    async fn forward<R: Forward>(
        &self,
        plan_id: PlanId,
        owner: &str,
        caller: &alliance_server::Caller,
        metadata: &tonic::metadata::MetadataMap,
        message: R,
    ) -> Result<Response<R::Reply>, Status> {
        let forwarded = self.forwarder.forward(owner, caller, metadata, message);
        tokio::select! {
            reply = forwarded => reply,
            moved = self.service.log().moved_from(plan_id, owner) => {
                let now = match moved {
                    Route::Local => "this instance".to_owned(),
                    Route::Remote { owner: Some(other), .. } => other,
                    Route::Remote { owner: None, .. } => "another instance".to_owned(),
                };
                Err(Status::unavailable(format!(
                    "plan {plan_id} moved from {owner}, where this request was forwarded, to \
                     {now} before {owner} answered; retry with the same command id"
                )))
            }
        }
    }

    /// The edge of the write path: authenticates, converts, and executes one command request
    /// here or forwards it to the instance that writes its plan.
    async fn handle<R: CommandRequest + Forward<Reply = v1::CommandResult>>(
        &self,
        request: Request<R>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let caller = self.auth.authenticate(&request)?;
        self.execute(caller, request).await
    }

    /// Converts and executes (or forwards) a request from an authenticated caller.
    async fn execute<R: CommandRequest + Forward<Reply = v1::CommandResult>>(
        &self,
        caller: alliance_server::Caller,
        request: Request<R>,
    ) -> Result<Response<v1::CommandResult>, Status> {
        let (metadata, _, message) = request.into_parts();
        let meta = command_meta(message.meta(), message.new_plan_id())?;
        let command = message.to_command().map_err(ServiceError::Invalid)?;
        // The owner derives the same new plan id from the command id.
        if let Ok(plan_id) = self.service.written_plan(&meta, &command)
            && let Some(owner) = self.owner_elsewhere(plan_id, &metadata).await
        {
            return self
                .forward(plan_id, &owner, &caller, &metadata, message)
                .await;
        }
        let outcome = self.service.execute(&caller, meta, command).await?;
        Ok(Response::new(command_result(&outcome)))
    }
}

fn parse_plan_id(field: &str, value: &str) -> Result<Option<PlanId>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    PlanId::parse_str(value)
        .map(Some)
        .map_err(|_| ServiceError::invalid(field, format!("{value:?} is not a UUID")))
}

fn command_meta(
    meta: Option<&v1::CommandMeta>,
    new_plan_id: &str,
) -> Result<CommandMeta, ServiceError> {
    let meta = meta.ok_or_else(|| ServiceError::invalid("meta", "is required"))?;
    let default_to_command = |value: &str| {
        if value.is_empty() {
            meta.command_id.clone()
        } else {
            value.to_owned()
        }
    };
    Ok(CommandMeta {
        command_id: meta.command_id.clone(),
        plan_id: parse_plan_id("meta.plan_id", &meta.plan_id)?,
        new_plan_id: parse_plan_id("new_plan_id", new_plan_id)?,
        based_on_version: meta.based_on_version,
        correlation_id: default_to_command(&meta.correlation_id),
        causation_id: default_to_command(&meta.causation_id),
    })
}

fn command_result(outcome: &CommandOutcome) -> v1::CommandResult {
    v1::CommandResult {
        plan_id: outcome.plan_id.to_string(),
        first_version: outcome.first_version,
        plan_version: outcome.plan_version,
        event_ids: outcome.event_ids.iter().map(ToString::to_string).collect(),
        replayed: outcome.replayed,
    }
}

type CommandResponse = Result<Response<v1::CommandResult>, Status>;

#[tonic::async_trait]
impl<L: EventLog> PlanCommands for PlanCommandsApi<L> {
    async fn create_plan(&self, request: Request<v1::CreatePlanRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn branch_plan(&self, request: Request<v1::BranchPlanRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn register_force_element(
        &self,
        request: Request<v1::RegisterForceElementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn record_capability_level(
        &self,
        request: Request<v1::RecordCapabilityLevelRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn define_agreement_clause(
        &self,
        request: Request<v1::DefineAgreementClauseRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn define_condition(
        &self,
        request: Request<v1::DefineConditionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn assess_condition(
        &self,
        request: Request<v1::AssessConditionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn propose_decision(
        &self,
        request: Request<v1::ProposeDecisionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn record_simulation_run(
        &self,
        request: Request<v1::RecordSimulationRunRequest>,
    ) -> CommandResponse {
        let caller = self.auth.authenticate(&request)?;
        alliance_server::recording::check(&request, &self.auth, &caller)?;
        self.execute(caller, request).await
    }

    async fn grant_role(&self, request: Request<v1::GrantRoleRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn revoke_role(&self, request: Request<v1::RevokeRoleRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn require_prerequisite(
        &self,
        request: Request<v1::RequirePrerequisiteRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn define_constraint(
        &self,
        request: Request<v1::DefineConstraintRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn waive_constraint(
        &self,
        request: Request<v1::WaiveConstraintRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn assign_mission(&self, request: Request<v1::AssignMissionRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn witness_head(&self, request: Request<v1::WitnessHeadRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn sign_head(&self, request: Request<v1::SignHeadRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn add_force_element(
        &self,
        request: Request<v1::AddForceElementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn withdraw_force_element(
        &self,
        request: Request<v1::WithdrawForceElementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn reduce_force_element(
        &self,
        request: Request<v1::ReduceForceElementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn relocate_force_element(
        &self,
        request: Request<v1::RelocateForceElementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn schedule_opcon_transfer(
        &self,
        request: Request<v1::ScheduleOpconTransferRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn change_command_arrangement(
        &self,
        request: Request<v1::ChangeCommandArrangementRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn amend_agreement_clause(
        &self,
        request: Request<v1::AmendAgreementClauseRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn plan_capability_investment(
        &self,
        request: Request<v1::PlanCapabilityInvestmentRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn endorse_decision(
        &self,
        request: Request<v1::EndorseDecisionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn adopt_decision(&self, request: Request<v1::AdoptDecisionRequest>) -> CommandResponse {
        self.handle(request).await
    }

    async fn reject_decision(
        &self,
        request: Request<v1::RejectDecisionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn withdraw_decision(
        &self,
        request: Request<v1::WithdrawDecisionRequest>,
    ) -> CommandResponse {
        self.handle(request).await
    }

    async fn list_plans(
        &self,
        request: Request<v1::ListPlansRequest>,
    ) -> Result<Response<v1::ListPlansResponse>, Status> {
        let caller = self.auth.authenticate(&request)?;
        let readable = |plan: &Plan| {
            plan.id.is_some_and(|plan_id| {
                alliance_server::access::authorize_read(&caller, plan, plan_id).is_ok()
            })
        };
        // Only the plans the caller holds a role on.
        let mut plans = Vec::new();
        if let Some(directory) = &self.directory {
            plans.extend(
                directory
                    .plans()
                    .iter()
                    .filter(|plan| readable(plan))
                    .map(|plan| plan_head(plan)),
            );
        } else {
            for plan_id in self.service.plan_ids() {
                match self.service.plan(plan_id).await {
                    Ok(plan) if readable(&plan) => plans.push(plan_head(&plan)),
                    Ok(_) => {}
                    // Its partition moved to another instance: that instance lists it.
                    Err(ServiceError::OwnedElsewhere { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(Response::new(v1::ListPlansResponse { plans }))
    }

    async fn get_plan(
        &self,
        request: Request<v1::GetPlanRequest>,
    ) -> Result<Response<v1::PlanSummary>, Status> {
        let caller = self.auth.authenticate(&request)?;
        let plan_id = parse_plan_id("plan_id", &request.get_ref().plan_id)?
            .ok_or_else(|| ServiceError::invalid("plan_id", "is required"))?;
        if let Some(owner) = self.owner_elsewhere(plan_id, request.metadata()).await {
            let (metadata, _, message) = request.into_parts();
            return self
                .forward(plan_id, &owner, &caller, &metadata, message)
                .await;
        }
        let plan = self.service.plan(plan_id).await?;
        alliance_server::access::authorize_read(&caller, &plan, plan_id)?;
        Ok(Response::new(plan_summary(&plan)))
    }
}
