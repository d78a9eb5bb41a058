//! Who is calling: a bearer token looked up in a token file.
//!
//! The token file is the development default; the actor of every event comes from here, never
//! from a field the client fills in.

use std::collections::HashMap;
use std::path::Path;

use alliance_domain::{Actor, Side, TeamId};
use serde::Deserialize;

use crate::error::CommandError;

/// One team of the token file.
#[derive(Debug, Clone, Deserialize)]
pub struct TeamEntry {
    pub team: TeamId,
    pub side: Option<Side>,
    pub description: Option<String>,
}

/// One token of the token file.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenEntry {
    pub token: String,
    pub team: TeamId,
    pub user: String,
}

/// The parsed token file (`deploy/dev-tokens.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenFile {
    #[serde(rename = "team")]
    pub teams: Vec<TeamEntry>,
    #[serde(rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("cannot read token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path} is invalid: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("token file names unknown team {0}")]
    UnknownTeam(TeamId),
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<Self, AuthConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| AuthConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }
}

/// Maps bearer tokens to actors.
#[derive(Debug, Clone)]
pub struct Authenticator {
    by_token: HashMap<String, Actor>,
    teams: HashMap<TeamId, Option<Side>>,
}

impl Authenticator {
    pub fn from_token_file(file: &TokenFile) -> Result<Self, AuthConfigError> {
        let teams: HashMap<TeamId, Option<Side>> = file
            .teams
            .iter()
            .map(|t| (t.team.clone(), t.side))
            .collect();
        let mut by_token = HashMap::new();
        for entry in &file.tokens {
            let side = *teams
                .get(&entry.team)
                .ok_or_else(|| AuthConfigError::UnknownTeam(entry.team.clone()))?;
            by_token.insert(
                entry.token.clone(),
                Actor {
                    team: entry.team.clone(),
                    user: entry.user.clone(),
                    side,
                },
            );
        }
        Ok(Self { by_token, teams })
    }

    /// The caller behind an `authorization: Bearer <token>` header.
    pub fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Actor, CommandError> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| CommandError::Unauthenticated("missing authorization header".into()))?
            .to_str()
            .map_err(|_| CommandError::Unauthenticated("malformed authorization header".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                CommandError::Unauthenticated("authorization must be a bearer token".into())
            })?;
        self.by_token
            .get(token.trim())
            .cloned()
            .ok_or_else(|| CommandError::Unauthenticated("unknown token".into()))
    }

    /// The actor a team acts as when the service itself loads data on its behalf.
    pub fn team_actor(&self, team: &TeamId, user: &str) -> Option<Actor> {
        self.teams.get(team).map(|side| Actor {
            team: team.clone(),
            user: user.to_owned(),
            side: *side,
        })
    }
}
