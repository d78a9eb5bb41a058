//! Why a command was refused, and how each refusal maps to a gRPC status (in one place).

use std::collections::HashMap;

use alliance_domain::{DomainError, FieldViolation, PlanId, Version, describe_violations};
use alliance_eventlog::LogError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// `google.rpc.ErrorInfo.domain` of every error this service returns.
const ERROR_DOMAIN: &str = "alliance.v1";

/// One event that changed what a command touches after the version it was based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictingEvent {
    pub version: Version,
    pub event_id: uuid::Uuid,
    pub event_type: &'static str,
    pub team: String,
    /// The keys of the command this event changed, e.g. `element/2id-abct`.
    pub keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("team {team} may not {action}: it lacks the {role} role")]
    PermissionDenied {
        team: String,
        action: String,
        role: String,
    },
    /// A stream's caller lost every role on its plan while it was open.
    #[error("team {team} no longer holds a role on plan {plan_id}: the stream ends")]
    StandingEnded { team: String, plan_id: PlanId },
    #[error("invalid command: {}", describe_violations(.0))]
    Invalid(Vec<FieldViolation>),
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("plan {0} not found")]
    PlanNotFound(PlanId),
    /// The caller holds no role on the plan: answered exactly as [`ServiceError::PlanNotFound`]
    /// (only the security log tells them apart, through [`NoStanding`]).
    #[error("plan {0} not found")]
    NoStanding(PlanId),
    #[error(
        "plan {plan_id} changed since version {based_on}: {} conflicting event(s) up to version {current}",
        conflicts.len()
    )]
    Conflict {
        plan_id: PlanId,
        based_on: Version,
        current: Version,
        conflicts: Vec<ConflictingEvent>,
    },
    /// Another instance writes this plan: the caller should go there.
    #[error("plan {plan_id} is served by {} (partition {partition}); send the command there", owner.as_deref().unwrap_or("another instance"))]
    OwnedElsewhere {
        plan_id: PlanId,
        partition: i32,
        owner: Option<String>,
    },
    /// Another writer appended to the plan between our read and our append.
    #[error("plan {plan_id} changed concurrently; retry the command")]
    Concurrent { plan_id: PlanId },
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("the log holds an event this service cannot read: {0}")]
    Corrupt(String),
}

impl From<alliance_record::RecordError> for ServiceError {
    fn from(error: alliance_record::RecordError) -> Self {
        ServiceError::Corrupt(error.0)
    }
}

impl ServiceError {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldViolation::new(field, description)])
    }

    pub fn code(&self) -> Code {
        match self {
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied { .. } | ServiceError::StandingEnded { .. } => {
                Code::PermissionDenied
            }
            ServiceError::Invalid(_) => Code::InvalidArgument,
            ServiceError::Domain(e) => match e.kind() {
                alliance_domain::ErrorKind::InvalidArgument => Code::InvalidArgument,
                alliance_domain::ErrorKind::NotFound => Code::NotFound,
                alliance_domain::ErrorKind::AlreadyExists => Code::AlreadyExists,
                alliance_domain::ErrorKind::FailedPrecondition => Code::FailedPrecondition,
            },
            ServiceError::PlanNotFound(_) | ServiceError::NoStanding(_) => Code::NotFound,
            ServiceError::Conflict { .. } | ServiceError::Concurrent { .. } => Code::Aborted,
            ServiceError::Log(LogError::Unavailable(_)) | ServiceError::OwnedElsewhere { .. } => {
                Code::Unavailable
            }
            ServiceError::Log(_) | ServiceError::Corrupt(_) => Code::Internal,
        }
    }
}

fn bad_request(violations: &[FieldViolation]) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    for v in violations {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    details
}

/// `INVALID_ARGUMENT` naming each field in a `google.rpc.BadRequest`: how every service refuses
/// bad input.
pub fn invalid_fields(violations: &[FieldViolation]) -> tonic::Status {
    tonic::Status::with_error_details(
        Code::InvalidArgument,
        describe_violations(violations),
        bad_request(violations),
    )
}

/// [`invalid_fields`] for one field; the message is `{field}: {description}`.
pub fn invalid_field(field: &str, description: impl Into<String>) -> tonic::Status {
    invalid_fields(&[FieldViolation::new(field, description)])
}

/// `OUT_OF_RANGE` naming the field in a `google.rpc.BadRequest`: a value that is not valid now
/// but may become so (a version the plan has not reached yet).
pub fn out_of_range_field(field: &str, description: impl Into<String>) -> tonic::Status {
    let violation = FieldViolation::new(field, description);
    tonic::Status::with_error_details(
        Code::OutOfRange,
        describe_violations(std::slice::from_ref(&violation)),
        bad_request(&[violation]),
    )
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        let code = error.code();
        let message = error.to_string();
        let details = match &error {
            ServiceError::Invalid(violations) => bad_request(violations),
            ServiceError::Domain(DomainError::Invalid(violations)) => bad_request(violations),
            ServiceError::Domain(DomainError::Rule { rule, message }) => {
                let mut details = ErrorDetails::with_error_info(
                    rule.to_uppercase(),
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                details.add_precondition_failure_violation(*rule, "plan", message.clone());
                details
            }
            ServiceError::Domain(DomainError::NewFindings {
                decision_id,
                findings,
            }) => {
                let metadata = HashMap::from([
                    ("decision_id".to_owned(), decision_id.clone()),
                    (
                        "finding_ids".to_owned(),
                        findings
                            .iter()
                            .map(|(id, _)| id.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                ]);
                let mut details =
                    ErrorDetails::with_error_info("NEW_FINDINGS", ERROR_DOMAIN, metadata);
                for (id, message) in findings {
                    details.add_precondition_failure_violation("FINDING", id, message);
                }
                details
            }
            ServiceError::Domain(DomainError::NotFound { what, id })
            | ServiceError::Domain(DomainError::AlreadyExists { what, id }) => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(*what, id.clone(), "", message.clone());
                details
            }
            ServiceError::Conflict {
                plan_id,
                based_on,
                current,
                conflicts,
            } => {
                let metadata = HashMap::from([
                    ("plan_id".to_owned(), plan_id.to_string()),
                    ("based_on_version".to_owned(), based_on.to_string()),
                    ("current_version".to_owned(), current.to_string()),
                    (
                        "conflicting_versions".to_owned(),
                        conflicts
                            .iter()
                            .map(|c| c.version.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                ]);
                let mut details =
                    ErrorDetails::with_error_info("PLAN_VERSION_CONFLICT", ERROR_DOMAIN, metadata);
                for c in conflicts {
                    details.add_precondition_failure_violation(
                        "CONFLICTING_EVENT",
                        format!("v{} {} {}", c.version, c.event_type, c.event_id),
                        format!(
                            "{} by {} changed {}",
                            c.event_type,
                            c.team,
                            c.keys.join(", ")
                        ),
                    );
                }
                details
            }
            ServiceError::OwnedElsewhere {
                partition, owner, ..
            } => ErrorDetails::with_error_info(
                "PLAN_OWNED_ELSEWHERE",
                ERROR_DOMAIN,
                HashMap::from([
                    ("partition".to_owned(), partition.to_string()),
                    ("owner".to_owned(), owner.clone().unwrap_or_default()),
                ]),
            ),
            ServiceError::PlanNotFound(plan_id) | ServiceError::NoStanding(plan_id) => {
                let mut details = ErrorDetails::new();
                details.set_resource_info("plan", plan_id.to_string(), "", message.clone());
                details
            }
            ServiceError::StandingEnded { plan_id, .. } => ErrorDetails::with_error_info(
                "STANDING_REVOKED",
                ERROR_DOMAIN,
                HashMap::from([("plan_id".to_owned(), plan_id.to_string())]),
            ),
            ServiceError::PermissionDenied { role, .. } => ErrorDetails::with_error_info(
                "MISSING_ROLE",
                ERROR_DOMAIN,
                HashMap::from([("role".to_owned(), role.clone())]),
            ),
            _ => ErrorDetails::new(),
        };
        if matches!(code, Code::Internal) {
            tracing::error!(error = %error, "command failed");
        }
        let mut status = tonic::Status::with_error_details(code, message, details);
        if let ServiceError::NoStanding(plan_id) = error {
            // Never sent: the server's own layers read it from the response's extensions.
            status.set_source(std::sync::Arc::new(NoStanding(plan_id)));
        }
        status
    }
}

/// Marks a NOT_FOUND answered because the caller holds no role on a plan that exists, so the
/// security log records the attempt while the caller learns nothing more than "not found".
#[derive(Debug, thiserror::Error)]
#[error("no role on plan {0}")]
pub struct NoStanding(pub PlanId);

impl NoStanding {
    /// The marker of a refusal, if it is one.
    pub fn of(status: &tonic::Status) -> Option<&NoStanding> {
        std::error::Error::source(status)?.downcast_ref::<NoStanding>()
    }
}
