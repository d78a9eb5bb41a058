//! Client certificates (mutual TLS) mapped to teams.
//!
//! A `[[client_cert]]` entry names the certificate by one of its names, written with a prefix
//! that says which ([`CertName`]):
//!
//! - `URI:spiffe://alliance.example/team/rok-jcs`: a URI subject alternative name (the
//!   SPIFFE-style choice, preferred for new certificates);
//! - `DNS:gateway.rok.example`: a DNS subject alternative name (compared case-insensitively);
//! - `CN=rok-jcs-gateway`: a Common Name of the subject (what many existing PKIs issue).
//!
//! The prefix makes each entry say exactly which field it trusts: a DNS name never matches an
//! entry written for a Common Name. A certificate whose names match entries of different
//! identities is refused as ambiguous.
//!
//! Only the leaf certificate is looked at, and only certificates the TLS layer has verified
//! against the client CA may be passed in (tonic's `Request::peer_certs` are).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use tonic::transport::CertificateDer;
use x509_parser::extensions::GeneralName;

use crate::config::{ClientCertEntry, ConfigProblem, Teams};
use crate::{Identity, Method};

/// A name of a client certificate: `CN=…`, `URI:…` or `DNS:…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum CertName {
    CommonName(String),
    Uri(String),
    Dns(String),
}

impl CertName {
    /// The name without its prefix.
    pub fn value(&self) -> &str {
        match self {
            CertName::CommonName(v) | CertName::Uri(v) | CertName::Dns(v) => v,
        }
    }

    fn dns(name: &str) -> Self {
        CertName::Dns(name.to_ascii_lowercase())
    }
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertName::CommonName(v) => write!(f, "CN={v}"),
            CertName::Uri(v) => write!(f, "URI:{v}"),
            CertName::Dns(v) => write!(f, "DNS:{v}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client certificate subject {0:?} must be CN=<common name>, URI:<uri> or DNS:<name>")]
pub struct CertNameError(String);

impl FromStr for CertName {
    type Err = CertNameError;

    fn from_str(s: &str) -> Result<Self, CertNameError> {
        let name = if let Some(v) = s.strip_prefix("CN=") {
            CertName::CommonName(v.to_owned())
        } else if let Some(v) = s.strip_prefix("URI:") {
            CertName::Uri(v.to_owned())
        } else if let Some(v) = s.strip_prefix("DNS:") {
            CertName::dns(v)
        } else {
            return Err(CertNameError(s.to_owned()));
        };
        if name.value().is_empty() {
            return Err(CertNameError(s.to_owned()));
        }
        Ok(name)
    }
}

impl TryFrom<String> for CertName {
    type Error = CertNameError;

    fn try_from(s: String) -> Result<Self, CertNameError> {
        s.parse()
    }
}

/// Why a client certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no client certificate")]
    Missing,
    #[error("client certificate cannot be parsed")]
    Unparsable,
    #[error("client certificate ({0}) is not mapped to a team")]
    NotMapped(String),
    #[error("client certificate matches client_cert entries of different identities: {0}")]
    Ambiguous(String),
    #[error(
        "only a server of this deployment ([[peer]]) may act for a caller; this certificate ({0}) is not one"
    )]
    NotAPeer(String),
}

/// The names of a DER certificate: Common Names of its subject, then its URI and DNS subject
/// alternative names.
pub fn cert_names(der: &[u8]) -> Result<Vec<CertName>, CertError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| CertError::Unparsable)?;
    let common_names = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(|cn| CertName::CommonName(cn.to_owned()));
    let alt_names = cert
        .subject_alternative_name()
        .map_err(|_| CertError::Unparsable)?;
    let alt_names = alt_names.iter().flat_map(|ext| &ext.value.general_names);
    let alt_names = alt_names.filter_map(|name| match name {
        GeneralName::URI(uri) => Some(CertName::Uri((*uri).to_owned())),
        GeneralName::DNSName(dns) => Some(CertName::dns(dns)),
        _ => None,
    });
    Ok(common_names.chain(alt_names).collect())
}

/// The names for a message.
fn list<'a>(names: impl IntoIterator<Item = &'a CertName>) -> String {
    let names: Vec<String> = names.into_iter().map(ToString::to_string).collect();
    if names.is_empty() {
        "no CN, URI or DNS name".to_owned()
    } else {
        names.join(", ")
    }
}

/// The client certificates of this deployment's own servers.
#[derive(Debug, Clone, Default)]
pub struct PeerCerts {
    names: std::collections::HashSet<CertName>,
}

impl PeerCerts {
    pub fn new(names: impl IntoIterator<Item = CertName>) -> Self {
        Self {
            names: names.into_iter().collect(),
        }
    }

    /// Whether the verified chain (leaf first) is a peer's.
    pub fn check(&self, peer_certs: &[CertificateDer<'_>]) -> Result<(), CertError> {
        let leaf = peer_certs.first().ok_or(CertError::Missing)?;
        let names = cert_names(leaf)?;
        if names.iter().any(|name| self.names.contains(name)) {
            Ok(())
        } else {
            Err(CertError::NotAPeer(list(&names)))
        }
    }
}

/// Maps verified client certificates to identities.
#[derive(Debug, Clone, Default)]
pub struct ClientCertMap {
    by_name: HashMap<CertName, Identity>,
}

impl ClientCertMap {
    /// Every entry must name a known team, and no subject may be listed twice.
    pub fn new(entries: &[ClientCertEntry], teams: &Teams) -> Result<Self, ConfigProblem> {
        let mut by_name = HashMap::new();
        for entry in entries {
            let user = entry
                .user
                .clone()
                .unwrap_or_else(|| entry.subject.value().to_owned());
            let identity = teams
                .identity(&entry.team, user, Method::ClientCertificate)
                .ok_or_else(|| ConfigProblem::UnknownCertTeam {
                    subject: entry.subject.clone(),
                    team: entry.team.clone(),
                })?;
            if by_name.insert(entry.subject.clone(), identity).is_some() {
                return Err(ConfigProblem::DuplicateCertSubject(entry.subject.clone()));
            }
        }
        Ok(Self { by_name })
    }

    /// The identity of the peer whose verified chain this is (leaf first).
    pub fn identify(&self, peer_certs: &[CertificateDer<'_>]) -> Result<Identity, CertError> {
        let leaf = peer_certs.first().ok_or(CertError::Missing)?;
        let names = cert_names(leaf)?;
        let matches: Vec<(&CertName, &Identity)> = names
            .iter()
            .filter_map(|name| self.by_name.get_key_value(name))
            .collect();
        match matches.as_slice() {
            [] => Err(CertError::NotMapped(list(&names))),
            [(_, first), rest @ ..] if rest.iter().all(|(_, id)| id == first) => {
                Ok((*first).clone())
            }
            _ => Err(CertError::Ambiguous(list(
                matches.iter().map(|(name, _)| *name),
            ))),
        }
    }
}
