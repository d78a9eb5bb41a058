use alliance_auth::{AuthConfig, CertName, ConfigError, ConfigProblem, JwksSource};
use alliance_domain::{Side, TeamId};

use crate::support::{TEAMS, jwt_table, write};

/// Loads this configuration from `auth.toml` in a new directory.
fn load(toml: &str) -> (tempfile::TempDir, Result<AuthConfig, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml));
    (dir, config)
}

/// The error message, checking that it names the file.
fn load_error(toml: &str) -> String {
    let (dir, config) = load(toml);
    let message = config.unwrap_err().to_string();
    let path = dir.path().join("auth.toml").display().to_string();
    assert!(message.contains(&path), "{message} does not name {path}");
    message
}

#[test]
fn full_configuration_loads_with_paths_relative_to_the_file() {
    let toml = format!(
        "{}\n[tls]\ncert_chain = \"tls/server.pem\"\nprivate_key = \"/etc/alliance/server.key\"\n\
         client_ca = \"client-ca.pem\"\n\n\
         [peer_tls]\nca = \"internal-ca.pem\"\n\
         [peer_tls.identity]\ncert_chain = \"tls/instance.pem\"\nprivate_key = \"/etc/alliance/instance.key\"\n\n\
         [[client_cert]]\nsubject = \"CN=rok-jcs-gateway\"\nteam = \"rok-jcs\"\n\n\
         [[client_cert]]\nsubject = \"DNS:Gateway.US.example\"\nteam = \"us-force-planning\"\n{TEAMS}",
        jwt_table("jwks_file = \"keys/jwks.json\"", "team_claim = \"cell\"")
    );
    let (dir, config) = load(&toml);
    let config = config.unwrap();
    let jwt = config.jwt.as_ref().unwrap();
    assert_eq!(jwt.audience, ["alliance-planning", "planning-cli"]);
    assert_eq!(jwt.team_claim, "cell");
    assert_eq!(jwt.leeway_seconds, 30);
    assert_eq!(jwt.jwks_min_refresh_seconds, 60);
    assert_eq!(
        jwt.check().unwrap(),
        JwksSource::File(dir.path().join("keys/jwks.json"))
    );
    let tls = config.tls.as_ref().unwrap();
    assert_eq!(tls.cert_chain, dir.path().join("tls/server.pem"));
    assert_eq!(tls.private_key.to_str(), Some("/etc/alliance/server.key"));
    assert_eq!(tls.client_ca, Some(dir.path().join("client-ca.pem")));
    assert!(!tls.client_auth_optional);
    let peer_tls = config.peer_tls.as_ref().unwrap();
    assert_eq!(peer_tls.ca, dir.path().join("internal-ca.pem"));
    let identity = peer_tls.identity.as_ref().unwrap();
    assert_eq!(identity.cert_chain, dir.path().join("tls/instance.pem"));
    assert_eq!(
        identity.private_key.to_str(),
        Some("/etc/alliance/instance.key")
    );
    assert_eq!(
        config.client_certs[0].subject,
        CertName::CommonName("rok-jcs-gateway".into())
    );
    // DNS names compare case-insensitively.
    assert_eq!(
        config.client_certs[1].subject,
        CertName::Dns("gateway.us.example".into())
    );
    let teams = config.teams().unwrap();
    let rok = teams.get(&TeamId::parse("rok-jcs").unwrap()).unwrap();
    assert_eq!(rok.side, Some(Side::Rok));
}

#[test]
fn single_audience_and_jwks_url() {
    let toml = "[jwt]\nissuer = \"i\"\naudience = \"a\"\n\
                jwks_url = \"https://idp.alliance.test/certs\"\n"
        .to_owned()
        + TEAMS;
    let (_dir, config) = load(&toml);
    let jwt = config.unwrap().jwt.unwrap();
    assert_eq!(jwt.audience, ["a"]);
    assert_eq!(jwt.team_claim, "team");
    assert!(
        matches!(jwt.check().unwrap(), JwksSource::Url(url) if url.host_str() == Some("idp.alliance.test"))
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let message = AuthConfig::load(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("cannot read auth config {}: ", path.display())),
        "{message}"
    );
}

#[test]
fn syntax_and_type_errors_are_reported_with_the_file() {
    let message = load_error("[jwt\n");
    assert!(message.contains("is invalid"), "{message}");

    let message = load_error(&format!(
        "{TEAMS}\n[[team]]\nteam = \"x\"\nside = \"france\"\n"
    ));
    assert!(message.contains("france"), "{message}");

    let message = load_error(&format!("{TEAMS}\n[[team]]\nteam = \"bad team!\"\n"));
    assert!(message.contains("letter or digit"), "{message}");
}

#[test]
fn unknown_fields_are_refused() {
    let toml = jwt_table("jwks_file = \"j.json\"", "leeway = 5") + TEAMS;
    assert!(load_error(&toml).contains("unknown field `leeway`"));
}

#[test]
fn client_cert_subject_needs_a_known_prefix() {
    let toml =
        format!("[[client_cert]]\nsubject = \"rok-jcs-gateway\"\nteam = \"rok-jcs\"\n{TEAMS}");
    let message = load_error(&toml);
    assert!(
        message.contains("must be CN=<common name>, URI:<uri> or DNS:<name>"),
        "{message}"
    );
}

fn problem(toml: &str) -> ConfigProblem {
    match load(toml).1.unwrap_err() {
        ConfigError::Invalid { problem, .. } => problem,
        other => panic!("not a configuration problem: {other}"),
    }
}

#[test]
fn client_cert_must_name_a_known_team() {
    let toml = format!("[[client_cert]]\nsubject = \"CN=gw\"\nteam = \"kgb\"\n{TEAMS}");
    assert_eq!(
        problem(&toml).to_string(),
        "client_cert CN=gw names unknown team kgb"
    );
    assert!(load_error(&toml).ends_with("client_cert CN=gw names unknown team kgb"));
}

#[test]
fn duplicates_are_refused() {
    let cert = "[[client_cert]]\nsubject = \"CN=gw\"\nteam = \"rok-jcs\"\n";
    assert_eq!(
        problem(&format!("{cert}{cert}{TEAMS}")),
        ConfigProblem::DuplicateCertSubject(CertName::CommonName("gw".into()))
    );
    assert!(matches!(
        problem(&format!("{cert}{TEAMS}{TEAMS}")),
        ConfigProblem::DuplicateTeam(_)
    ));
}

#[test]
fn jwks_source_must_be_one_file_or_one_http_url() {
    let both = jwt_table(
        "jwks_file = \"j.json\"\njwks_url = \"https://x.test/j\"",
        "",
    ) + TEAMS;
    assert_eq!(problem(&both), ConfigProblem::JwksSource);
    let neither = jwt_table("", "") + TEAMS;
    assert_eq!(problem(&neither), ConfigProblem::JwksSource);
    let ftp = jwt_table("jwks_url = \"ftp://x.test/j\"", "") + TEAMS;
    assert_eq!(
        problem(&ftp),
        ConfigProblem::JwksUrl("ftp://x.test/j".into())
    );
}

#[test]
fn a_jwks_url_is_https_or_plain_http_to_loopback_only() {
    // Whoever is on the path of a plain-http JWKS fetch can serve their own keys and mint
    // tokens for any team.
    for (url, accepted) in [
        ("http://idp.alliance.test/certs", false),
        ("http://10.0.0.7:8080/certs", false),
        ("http://[2001:db8::1]/certs", false),
        ("http://localhost.evil.test/certs", false),
        ("https://idp.alliance.test/certs", true),
        ("http://127.0.0.1:8080/certs", true),
        ("http://[::1]:8080/certs", true),
        ("http://localhost:8080/certs", true),
    ] {
        let toml = jwt_table(&format!("jwks_url = \"{url}\""), "") + TEAMS;
        if accepted {
            let (_dir, config) = load(&toml);
            assert!(config.is_ok(), "{url}: {:?}", config.err());
        } else {
            assert_eq!(problem(&toml), ConfigProblem::JwksUrl(url.into()), "{url}");
            let message = load_error(&toml);
            assert!(message.contains(url), "{message}");
            assert!(message.contains("https"), "{message}");
        }
    }
}

#[test]
fn some_method_must_be_configured() {
    assert_eq!(problem(TEAMS), ConfigProblem::NoMethod);
}

#[test]
fn empty_audience_is_refused() {
    let toml = "[jwt]\nissuer = \"i\"\naudience = []\njwks_file = \"j.json\"\n".to_owned() + TEAMS;
    assert_eq!(problem(&toml), ConfigProblem::NoAudience);
}

#[test]
fn the_example_in_deploy_parses_and_passes_the_checks() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/identity.example.toml");
    let config = AuthConfig::load(&path).unwrap();
    config.check().unwrap();
    assert_eq!(config.peers.len(), 2);
    let peer_tls = config.peer_tls.unwrap();
    assert_eq!(
        peer_tls.ca,
        std::path::Path::new("/etc/alliance/tls/internal-ca.pem")
    );
    assert!(peer_tls.identity.is_some());
}
