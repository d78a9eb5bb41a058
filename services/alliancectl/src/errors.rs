//! Why a command failed: one line for a person, structured details for a script, and an exit
//! code per kind of failure.

use std::collections::BTreeMap;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The process exit codes (0 is success).
///
/// | code | kind            | when                                                          |
/// |------|-----------------|---------------------------------------------------------------|
/// | 1    | `error`         | anything else (INTERNAL, UNKNOWN, ...)                        |
/// | 2    | `invalid_input` | INVALID_ARGUMENT, or a usage error caught before sending       |
/// | 3    | `conflict`      | ABORTED: the plan changed since `--based-on`                  |
/// | 4    | `permission`    | UNAUTHENTICATED or PERMISSION_DENIED                          |
/// | 5    | `unavailable`   | UNAVAILABLE, DEADLINE_EXCEEDED, server unreachable            |
/// | 6    | `not_found`     | NOT_FOUND                                                     |
/// | 7    | `refused`       | FAILED_PRECONDITION (a planning rule), ALREADY_EXISTS         |
/// | 8    | `tampered`      | `audit verify`: the plan's hash chain does not hold           |
/// | 9    | `insecure`      | a token would go in clear (`http://`) to another host         |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Other = 1,
    InvalidInput = 2,
    Conflict = 3,
    Permission = 4,
    Unavailable = 5,
    NotFound = 6,
    Refused = 7,
    Tampered = 8,
    Insecure = 9,
}

/// The exit-code table of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok
  1  error          anything else
  2  invalid_input  invalid arguments (INVALID_ARGUMENT, or a usage error)
  3  conflict       the plan changed since --based-on (ABORTED); retry on the new version
  4  permission     UNAUTHENTICATED or PERMISSION_DENIED (check --token)
  5  unavailable    server unreachable, UNAVAILABLE, DEADLINE_EXCEEDED, or the call cut off
                    (CANCELLED); retry safely with the same --command-id
  6  not_found      NOT_FOUND
  7  refused        refused by a planning rule (FAILED_PRECONDITION) or ALREADY_EXISTS
  8  tampered       audit verify: the plan's hash chain does not hold
  9  insecure       not sent: --token would go in clear (http://) to a host other than this
                    machine; use https:// (or --insecure-plaintext)";

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The stable name of the kind, the `code` of a JSON error.
    pub fn kind(self) -> &'static str {
        match self {
            Exit::Other => "error",
            Exit::InvalidInput => "invalid_input",
            Exit::Conflict => "conflict",
            Exit::Permission => "permission",
            Exit::Unavailable => "unavailable",
            Exit::NotFound => "not_found",
            Exit::Refused => "refused",
            Exit::Tampered => "tampered",
            Exit::Insecure => "insecure",
        }
    }

    pub fn of(code: Code) -> Exit {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Exit::InvalidInput,
            Code::Aborted => Exit::Conflict,
            Code::Unauthenticated | Code::PermissionDenied => Exit::Permission,
            // CANCELLED reaches this client only when the call was cut off (the server went
            // away mid-call): like UNAVAILABLE, the outcome is unknown and a retry with the same
            // command id is safe.
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Exit::Unavailable,
            Code::NotFound => Exit::NotFound,
            Code::FailedPrecondition | Code::AlreadyExists => Exit::Refused,
            _ => Exit::Other,
        }
    }
}

/// Whether the call failed in transport (the connection refused or broke), not at the server.
pub fn broken_connection(status: &Status) -> bool {
    status.code() == Code::Unknown
        && std::error::Error::source(status)
            .is_some_and(|source| source.is::<tonic::transport::Error>())
}

/// One structured detail of an error status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    /// `google.rpc.BadRequest.FieldViolation`.
    Field { field: String, description: String },
    /// `google.rpc.PreconditionFailure.Violation`, e.g. one conflicting event.
    Precondition {
        kind: String,
        subject: String,
        description: String,
    },
    /// `google.rpc.ErrorInfo`.
    Info {
        reason: String,
        domain: String,
        metadata: BTreeMap<String, String>,
    },
    /// `google.rpc.ResourceInfo`.
    Resource {
        kind: String,
        name: String,
        description: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    pub exit: Exit,
    /// The gRPC status code, when the server (or the channel) answered with one.
    pub status: Option<Code>,
    /// One line, no trailing newline.
    pub message: String,
    pub details: Vec<Detail>,
    /// The command id of the refused command, to retry it with `--command-id`.
    pub command_id: Option<String>,
}

impl CliError {
    /// A failure found here rather than answered by the server.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            status: None,
            message: message.into(),
            details: Vec::new(),
            command_id: None,
        }
    }

    /// Bad input caught before anything was sent.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        CliError {
            exit: Exit::InvalidInput,
            status: None,
            message: one_line(&format!("invalid input: {}", message.into())),
            details: Vec::new(),
            command_id: None,
        }
    }

    pub fn from_status(status: &Status) -> Self {
        let found = status.get_error_details();
        let violations = found
            .bad_request()
            .map(|b| b.field_violations.as_slice())
            .unwrap_or_default();
        let preconditions = found
            .precondition_failure()
            .map(|p| p.violations.as_slice())
            .unwrap_or_default();
        let info = found.error_info();

        let mut details: Vec<Detail> = violations
            .iter()
            .map(|v| Detail::Field {
                field: v.field.clone(),
                description: v.description.clone(),
            })
            .collect();
        details.extend(info.map(|i| Detail::Info {
            reason: i.reason.clone(),
            domain: i.domain.clone(),
            metadata: i.metadata.clone().into_iter().collect(),
        }));
        details.extend(preconditions.iter().map(|p| Detail::Precondition {
            kind: p.r#type.clone(),
            subject: p.subject.clone(),
            description: p.description.clone(),
        }));
        details.extend(found.resource_info().map(|r| Detail::Resource {
            kind: r.resource_type.clone(),
            name: r.resource_name.clone(),
            description: r.description.clone(),
        }));

        let server = with_causes(status);
        let exit = if broken_connection(status) {
            // The connection broke mid-call: whether the command was applied is unknown, and
            // retrying it with its command id is exactly as safe as after UNAVAILABLE.
            Exit::Unavailable
        } else {
            Exit::of(status.code())
        };
        let message = match exit {
            Exit::InvalidInput if !violations.is_empty() => {
                let fields: Vec<String> = violations
                    .iter()
                    .map(|v| match v.field.as_str() {
                        "" => v.description.clone(),
                        field => format!("{field}: {}", v.description),
                    })
                    .collect();
                format!("invalid input: {}", fields.join("; "))
            }
            Exit::InvalidInput => format!("invalid input: {server}"),
            Exit::Conflict => {
                let since = info
                    .filter(|i| i.reason == "PLAN_VERSION_CONFLICT")
                    .and_then(|i| i.metadata.get("based_on_version"));
                let events: Vec<String> = preconditions
                    .iter()
                    .filter(|p| p.r#type == "CONFLICTING_EVENT")
                    .map(|p| format!("{} ({})", p.subject, p.description))
                    .collect();
                match since {
                    Some(v) if !events.is_empty() => {
                        format!(
                            "conflict: plan changed since version {v}: {}",
                            events.join("; ")
                        )
                    }
                    _ => format!("conflict: {server}"),
                }
            }
            Exit::Permission if status.code() == Code::Unauthenticated => {
                format!("permission: not authenticated: {server} (check --token or ALLIANCE_TOKEN)")
            }
            Exit::Permission => format!("permission: denied: {server}"),
            Exit::Unavailable if status.code() == Code::DeadlineExceeded => {
                format!("unavailable: deadline exceeded: {server}")
            }
            Exit::Unavailable => format!("unavailable: {server}"),
            Exit::NotFound => format!("not found: {server}"),
            Exit::Refused => match info.map(|i| i.reason.as_str()) {
                Some(rule) if !rule.is_empty() => {
                    format!("refused by planning rule {rule}: {server}")
                }
                _ if status.code() == Code::AlreadyExists => {
                    format!("refused: already exists: {server}")
                }
                _ => format!("refused: {server}"),
            },
            Exit::Other | Exit::Tampered | Exit::Insecure => {
                format!("{}: {server}", grpc_name(status.code()).to_lowercase())
            }
        };
        CliError {
            exit,
            status: Some(status.code()),
            message: one_line(&message),
            details,
            command_id: None,
        }
    }
}

/// The canonical name of a status code, e.g. `FAILED_PRECONDITION`.
pub fn grpc_name(code: Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The status message followed by the causes that do not repeat it, e.g.
/// `tcp connect error: Connection refused (os error 111)`.
fn with_causes(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text = format!("{text}: {c_text}");
        }
        cause = c.source();
    }
    text
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::ErrorDetails;

    use super::*;

    fn status(code: Code, message: &str, details: ErrorDetails) -> Status {
        Status::with_error_details(code, message, details)
    }

    #[test]
    fn invalid_argument_lists_field_violations() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("horizon_end", "must be after horizon_start");
        details.add_bad_request_violation("name", "must not be empty");
        let err = CliError::from_status(&status(Code::InvalidArgument, "invalid command", details));
        assert_eq!(err.exit, Exit::InvalidInput);
        assert_eq!(err.exit.code(), 2);
        assert_eq!(
            err.message,
            "invalid input: horizon_end: must be after horizon_start; name: must not be empty"
        );
        assert_eq!(err.details.len(), 2);
    }

    #[test]
    fn aborted_names_the_conflicting_events() {
        let metadata = HashMap::from([
            ("based_on_version".to_owned(), "12".to_owned()),
            ("current_version".to_owned(), "13".to_owned()),
        ]);
        let mut details =
            ErrorDetails::with_error_info("PLAN_VERSION_CONFLICT", "alliance.v1", metadata);
        details.add_precondition_failure_violation(
            "CONFLICTING_EVENT",
            "v13 DecisionEndorsed 0199",
            "decision/opcon-transfer",
        );
        let err = CliError::from_status(&status(Code::Aborted, "plan changed", details));
        assert_eq!(err.exit.code(), 3);
        assert_eq!(
            err.message,
            "conflict: plan changed since version 12: v13 DecisionEndorsed 0199 (decision/opcon-transfer)"
        );
        assert!(err.details.iter().any(|d| matches!(
            d,
            Detail::Info { reason, metadata, .. }
                if reason == "PLAN_VERSION_CONFLICT" && metadata["current_version"] == "13"
        )));
    }

    #[test]
    fn aborted_without_details_uses_the_message() {
        let err = Status::aborted("plan changed concurrently; retry the command");
        let err = CliError::from_status(&err);
        assert_eq!(err.exit, Exit::Conflict);
        assert_eq!(
            err.message,
            "conflict: plan changed concurrently; retry the command"
        );
    }

    #[test]
    fn failed_precondition_names_the_rule() {
        let mut details =
            ErrorDetails::with_error_info("OPCON_CONDITIONS", "alliance.v1", HashMap::new());
        details.add_precondition_failure_violation(
            "opcon_conditions",
            "plan",
            "condition c2 is not met",
        );
        let err = CliError::from_status(&status(
            Code::FailedPrecondition,
            "condition c2 is not met",
            details,
        ));
        assert_eq!(err.exit.code(), 7);
        assert_eq!(
            err.message,
            "refused by planning rule OPCON_CONDITIONS: condition c2 is not met"
        );
    }

    #[test]
    fn already_exists_is_refused() {
        let err = CliError::from_status(&Status::already_exists("decision d1 already exists"));
        assert_eq!(err.exit, Exit::Refused);
        assert_eq!(
            err.message,
            "refused: already exists: decision d1 already exists"
        );
    }

    #[test]
    fn other_codes_map_to_distinct_exits() {
        let cases = [
            (Code::Unauthenticated, Exit::Permission, 4),
            (Code::PermissionDenied, Exit::Permission, 4),
            (Code::Unavailable, Exit::Unavailable, 5),
            (Code::DeadlineExceeded, Exit::Unavailable, 5),
            (Code::Cancelled, Exit::Unavailable, 5),
            (Code::NotFound, Exit::NotFound, 6),
            (Code::Internal, Exit::Other, 1),
            (Code::Unknown, Exit::Other, 1),
        ];
        for (code, exit, number) in cases {
            let err = CliError::from_status(&Status::new(code, "boom\nsecond line"));
            assert_eq!((err.exit, err.exit.code()), (exit, number), "{code:?}");
            assert!(!err.message.contains('\n'));
            assert_eq!(err.status, Some(code));
        }
        let err = CliError::from_status(&Status::unauthenticated("unknown token"));
        assert_eq!(
            err.message,
            "permission: not authenticated: unknown token (check --token or ALLIANCE_TOKEN)"
        );
        let err = CliError::from_status(&Status::internal("disk on fire"));
        assert_eq!(err.message, "internal: disk on fire");
    }

    #[test]
    fn exit_codes_are_distinct_and_in_the_help() {
        let all = [
            Exit::Other,
            Exit::InvalidInput,
            Exit::Conflict,
            Exit::Permission,
            Exit::Unavailable,
            Exit::NotFound,
            Exit::Refused,
            Exit::Tampered,
            Exit::Insecure,
        ];
        let codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        for exit in all {
            let line = format!("  {}  {}", exit.code(), exit.kind());
            assert!(EXIT_CODES_HELP.contains(&line), "missing {line:?}");
        }
    }

    #[test]
    fn grpc_names_are_canonical() {
        assert_eq!(grpc_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
        assert_eq!(grpc_name(Code::Ok), "OK");
    }
}
