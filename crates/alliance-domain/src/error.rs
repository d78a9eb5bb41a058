//! The typed refusal of a command.

/// How a refusal maps to a status: the one place the edge looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command itself is malformed or out of range.
    InvalidArgument,
    /// Something the command names does not exist.
    NotFound,
    /// Something the command would create exists already.
    AlreadyExists,
    /// The command is well formed but the plan's current state does not allow it.
    FailedPrecondition,
}

/// One field of a command and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid command: {}", describe_violations(.0))]
    Invalid(Vec<FieldViolation>),
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{what} {id} already exists")]
    AlreadyExists { what: &'static str, id: String },
    /// A planning rule refuses the command; `rule` is a short stable name for it.
    #[error("{message}")]
    Rule { rule: &'static str, message: String },
    /// Adopting the decision would add these findings (id, what it says) to the adopted plan,
    /// and the command did not acknowledge them.
    #[error(
        "adopting decision {decision_id} would add {} to the adopted plan; acknowledge {} to adopt it anyway: {}",
        plural(.findings.len()),
        if .findings.len() == 1 { "it" } else { "them" },
        .findings.iter().map(|(id, message)| format!("{id}: {message}")).collect::<Vec<_>>().join("; ")
    )]
    NewFindings {
        decision_id: String,
        findings: Vec<(String, String)>,
    },
}

fn plural(n: usize) -> String {
    if n == 1 {
        "a finding".to_owned()
    } else {
        format!("{n} findings")
    }
}

/// `field: description; field: description`, for messages.
pub fn describe_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldViolation::new(field, description)])
    }

    pub fn rule(rule: &'static str, message: impl Into<String>) -> Self {
        DomainError::Rule {
            rule,
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        DomainError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn already_exists(what: &'static str, id: impl ToString) -> Self {
        DomainError::AlreadyExists {
            what,
            id: id.to_string(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::Invalid(_) => ErrorKind::InvalidArgument,
            DomainError::NotFound { .. } => ErrorKind::NotFound,
            DomainError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            DomainError::Rule { .. } | DomainError::NewFindings { .. } => {
                ErrorKind::FailedPrecondition
            }
        }
    }
}
