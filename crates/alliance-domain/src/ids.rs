//! Identifiers and versions. Plan ids are UUIDs (v7 when the service mints them); the ids of
//! things inside a plan are short slugs chosen by planners (`opcon-transfer`, `2id-abct`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifier of a plan (and of its event stream).
pub type PlanId = uuid::Uuid;

/// Per-plan version: the number of events in the plan's own stream.
pub type Version = u64;

/// The most events a plan's own stream holds: a command that would take it past is refused
/// (`plan_full`; a branch starts a stream of its own), and the read models set aside a record
/// past it. Within it a version fits in 32 bits, as the read models' indexes keep it (a plan
/// that long would hold terabytes of memory in them).
pub const MAX_VERSION: Version = u32::MAX as Version;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters, got {len}")]
    TooLong { max: usize, len: usize },
    #[error(
        "must start with a letter or digit and contain only letters, digits, '.', '_', ':' or '-'"
    )]
    BadCharacter,
}

const MAX_ID_LEN: usize = 64;

fn check_slug(s: &str) -> Result<(), IdError> {
    let len = s.chars().count();
    if len == 0 {
        return Err(IdError::Empty);
    }
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong {
            max: MAX_ID_LEN,
            len,
        });
    }
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(IdError::BadCharacter)
    }
}

// A slug is held in place when it fits (24 bytes; most do), without an allocation of its own:
// ids are cloned into every index and event that names them.
use compact_str::CompactString;

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(CompactString);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_slug(s)?;
                Ok(Self(CompactString::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check_slug(&s)?;
                Ok(Self(CompactString::from(s)))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A decision of a plan.
    DecisionId
);
slug_id!(
    /// A force element (unit or capability) of a plan.
    ElementId
);
slug_id!(
    /// A condition that gates a decision, such as the OPCON transfer.
    ConditionId
);
slug_id!(
    /// A clause of an agreement or restriction (123 agreement, missile guidelines, treaty scope).
    ClauseId
);
slug_id!(
    /// A ROK capability investment.
    InvestmentId
);
slug_id!(
    /// A planning team (cell), e.g. `us-force-planning` or `rok-jcs`.
    TeamId
);
slug_id!(
    /// A plan-level rule the posture must keep, such as a floor on U.S. personnel.
    ConstraintId
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Held in place (up to 24 bytes) or not, an id reads back, orders, prints and serializes
    /// as the text it was parsed from.
    #[test]
    fn an_id_is_its_text_whether_held_in_place_or_not() {
        let longest = "a".repeat(MAX_ID_LEN);
        let texts = ["e1", "opcon-transfer", "exactly-24-characters-ab", &longest];
        for text in texts {
            let id = ElementId::parse(text).unwrap();
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
            assert_eq!(String::from(id.clone()), text);
            assert_eq!(ElementId::try_from(text.to_owned()).unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<ElementId>(&json).unwrap(), id);
        }
        let mut ids: Vec<ElementId> = texts.iter().map(|t| ElementId::parse(t).unwrap()).collect();
        ids.sort();
        let mut sorted = texts.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            ids.iter().map(ElementId::as_str).collect::<Vec<_>>(),
            sorted
        );
        assert_eq!(
            ElementId::parse(&"a".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong {
                max: MAX_ID_LEN,
                len: MAX_ID_LEN + 1
            })
        );
        assert!(serde_json::from_str::<ElementId>("\"-x\"").is_err());
    }
}
