//! Who is calling: a bearer JWT or a client certificate verified by [`VerifyLayer`] against the
//! identity configuration (`alliance-auth`), or, for development, a bearer token looked up in a
//! token file.
//!
//! The token file is the development default; the actor of every event comes from here, never
//! from a field the client fills in.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use alliance_domain::{Actor, Grant, PlanRole, Section, Side, TeamId};
use serde::Deserialize;

use crate::error::ServiceError;

/// A team's own role (identity configuration): what it may do beyond a plan's grants, and the
/// roles it starts with on a new plan.
pub use alliance_auth::TeamRole as Role;

/// One team: its side and its own roles (the same entry in the token file and the identity
/// configuration).
pub use alliance_auth::TeamEntry;

/// An authenticated caller: who (for every event's actor) and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub actor: Actor,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn may(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The roles the team holds on a new plan (and on a plan whose history grants none).
    pub fn default_plan_roles(&self) -> BTreeSet<PlanRole> {
        plan_roles(&self.roles, self.actor.side)
    }
}

/// The plan roles that a team's roles stand for: `edit` is every section's editor and the
/// endorser for the team's side, `adopt` the adopter, `admin` the admin, `audit` the auditor.
fn plan_roles(roles: &[Role], side: Option<Side>) -> BTreeSet<PlanRole> {
    let mut plan = BTreeSet::new();
    for role in roles {
        match role {
            Role::Edit => {
                plan.extend(Section::ALL.into_iter().map(PlanRole::Editor));
                plan.extend(side.map(PlanRole::Endorser));
            }
            Role::Adopt => {
                plan.insert(PlanRole::Adopter);
            }
            Role::Admin => {
                plan.insert(PlanRole::Admin);
            }
            Role::Audit => {
                plan.insert(PlanRole::Auditor);
            }
        }
    }
    plan
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

/// Who a request's caller is: verified by [`VerifyLayer`] (a JWT or a client certificate, with
/// an identity configuration), or looked up in the development token file.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// Development tokens; empty with an identity configuration.
    by_token: HashMap<String, Caller>,
    teams: HashMap<TeamId, TeamEntry>,
    verifier: Option<Arc<alliance_auth::Authenticator>>,
}

/// The outcome of verifying a request's credentials, left in its extensions by [`VerifyLayer`].
#[derive(Debug, Clone)]
pub struct Verified(pub Result<Caller, String>);

impl Authenticator {
    pub fn from_token_file(file: &TokenFile) -> Result<Self, AuthConfigError> {
        let teams: HashMap<TeamId, TeamEntry> = file
            .teams
            .iter()
            .map(|t| (t.team.clone(), t.clone()))
            .collect();
        let mut by_token = HashMap::new();
        for entry in &file.tokens {
            let team = teams
                .get(&entry.team)
                .ok_or_else(|| AuthConfigError::UnknownTeam(entry.team.clone()))?;
            by_token.insert(entry.token.clone(), caller(team, &entry.user));
        }
        Ok(Self {
            by_token,
            teams,
            verifier: None,
        })
    }

    /// Callers verified against an identity configuration: bearer JWTs and client certificates
    /// (see [`VerifyLayer`]); no development token is accepted.
    pub async fn from_identity_config(
        config: &alliance_auth::AuthConfig,
    ) -> Result<Self, alliance_auth::SetupError> {
        let verifier = alliance_auth::Authenticator::from_config(config).await?;
        Ok(Self {
            by_token: HashMap::new(),
            teams: config
                .teams
                .iter()
                .map(|t| (t.team.clone(), t.clone()))
                .collect(),
            verifier: Some(Arc::new(verifier)),
        })
    }

    /// Whether callers are verified (JWT, client certificates) rather than looked up in the
    /// development token file.
    pub fn verifies(&self) -> bool {
        self.verifier.is_some()
    }

    /// The caller behind `request`: what [`VerifyLayer`] verified, or, with the development
    /// token file, the holder of its `authorization: Bearer <token>` header.
    pub fn authenticate<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ServiceError> {
        if let Some(Verified(verified)) = request.extensions().get::<Verified>() {
            return verified.clone().map_err(ServiceError::Unauthenticated);
        }
        if self.verifies() {
            return Err(ServiceError::Unauthenticated(
                "the request's credentials were not verified".into(),
            ));
        }
        self.token_holder(request.metadata())
    }

    /// The holder of a development token in `metadata`.
    pub fn token_holder(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Caller, ServiceError> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| ServiceError::Unauthenticated("missing authorization header".into()))?
            .to_str()
            .map_err(|_| ServiceError::Unauthenticated("malformed authorization header".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ServiceError::Unauthenticated("authorization must be a bearer token".into())
            })?;
        self.by_token
            .get(token.trim())
            .cloned()
            .ok_or_else(|| ServiceError::Unauthenticated("unknown token".into()))
    }

    /// Verifies a request's bearer JWT or client certificate (`peer_certs`, verified by the TLS
    /// handshake). The error says why, never quoting a credential.
    pub async fn verify(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[tonic::transport::CertificateDer<'_>]>,
    ) -> Result<Caller, String> {
        let Some(verifier) = &self.verifier else {
            return self.token_holder(metadata).map_err(|e| e.to_string());
        };
        let identity = verifier
            .authenticate(metadata, peer_certs)
            .await
            .map_err(|e| e.to_string())?;
        let team = self
            .teams
            .get(&identity.team)
            .ok_or_else(|| format!("unknown team {}", identity.team))?;
        Ok(caller(team, &identity.user))
    }

    /// Whether a connection's verified client certificate (leaf first) is a server's of this
    /// deployment (`[[peer]]`); never without an identity configuration.
    pub fn is_peer(&self, peer_certs: Option<&[tonic::transport::CertificateDer<'_>]>) -> bool {
        self.verifier
            .as_ref()
            .is_some_and(|verifier| verifier.is_peer(peer_certs))
    }

    /// The roles every configured team holds on a new plan, from its roles in the token file.
    pub fn default_grants(&self) -> Vec<Grant> {
        let mut grants: Vec<Grant> = self
            .teams
            .values()
            .flat_map(|team| {
                plan_roles(&team.roles, team.side)
                    .into_iter()
                    .map(|role| Grant {
                        team: team.team.clone(),
                        role,
                    })
            })
            .collect();
        grants.sort();
        grants
    }

    /// Gives a plan about to be created the default grants when it asks for none.
    pub fn complete_grants(&self, command: &mut alliance_domain::Command) {
        if let alliance_domain::Command::CreatePlan { grants, .. } = command
            && grants.is_empty()
        {
            *grants = self.default_grants();
        }
    }

    /// The caller a team acts as when the service itself loads data on its behalf.
    pub fn team_caller(&self, team: &TeamId, user: &str) -> Option<Caller> {
        self.teams.get(team).map(|entry| caller(entry, user))
    }
}

fn caller(team: &TeamEntry, user: &str) -> Caller {
    Caller {
        actor: Actor {
            team: team.team.clone(),
            user: user.to_owned(),
            side: team.side,
        },
        roles: team.roles.clone(),
    }
}
