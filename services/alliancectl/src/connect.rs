//! How `alliancectl` reaches a server: the address, the bearer token and the TLS files, from
//! flags, environment variables or a profile file (flags and variables win).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tonic::transport::ClientTlsConfig;

use crate::errors::CliError;

/// `~/.config/alliancectl/config.toml` (or `--config FILE`):
///
/// ```toml
/// server = "https://planning.example:50051"
/// token = "…"                       # or a client certificate:
/// ca_cert = "/etc/alliance/ca.pem"
/// client_cert = "/home/me/.alliance/me.pem"
/// client_key = "/home/me/.alliance/me.key"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: Option<String>,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// The profile at `path`, or at the default place when there is one there.
pub fn profile(path: Option<&Path>) -> Result<Profile, CliError> {
    let (path, required) = match path {
        Some(path) => (path.to_owned(), true),
        None => match std::env::var_os("HOME") {
            Some(home) => (
                PathBuf::from(home).join(".config/alliancectl/config.toml"),
                false,
            ),
            None => return Ok(Profile::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Profile::default());
        }
        Err(e) => {
            return Err(CliError::invalid_input(format!(
                "--config {}: {e}",
                path.display()
            )));
        }
    };
    toml::from_str(&text)
        .map_err(|e| CliError::invalid_input(format!("--config {}: {e}", path.display())))
}

/// The client TLS of `https://` servers: the CA that signed the server's certificate, and a
/// client certificate for servers that ask for one (mutual TLS).
pub fn tls(
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<ClientTlsConfig>, CliError> {
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(alliance_auth::CertKeyPaths {
            cert_chain: cert.to_owned(),
            private_key: key.to_owned(),
        }),
        (None, None) => None,
        _ => {
            return Err(CliError::invalid_input(
                "--client-cert and --client-key go together",
            ));
        }
    };
    let Some(ca) = ca else {
        return match identity {
            Some(_) => Err(CliError::invalid_input(
                "--client-cert needs --ca-cert (the CA of the server's certificate)",
            )),
            None => Ok(None),
        };
    };
    alliance_auth::ClientTlsPaths {
        ca: ca.to_owned(),
        identity,
        domain_name: None,
    }
    .load()
    .map(Some)
    .map_err(|e| CliError::invalid_input(e.to_string()))
}
