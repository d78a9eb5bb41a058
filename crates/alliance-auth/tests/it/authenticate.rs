use alliance_auth::{
    AuthConfig, AuthError, Authenticator, CertError, ClientCertMap, Identity, JwtError, Method,
};
use alliance_domain::{Side, TeamId};
use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::support::{Ca, TEAMS, claims, jwks, jwt_table, keys, write};

const CLIENT_CERTS: &str = r#"
[[client_cert]]
subject = "CN=us-force-planning-gateway"
team = "us-force-planning"

[[peer]]
subject = "DNS:allianced-2.alliance.internal"
"#;

async fn authenticator(with_jwt: bool) -> Authenticator {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "jwks.json", jwks(&[&keys().rsa]));
    let jwt = if with_jwt {
        jwt_table("jwks_file = \"jwks.json\"", "")
    } else {
        String::new()
    };
    let toml = format!("{jwt}{CLIENT_CERTS}{TEAMS}");
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml)).unwrap();
    Authenticator::from_config(&config).await.unwrap()
}

/// Who a caller is: `team`'s `user`, on `side`, authenticated by `method`.
pub(crate) fn identity(team: &str, user: &str, side: Option<Side>, method: Method) -> Identity {
    Identity {
        team: TeamId::parse(team).unwrap(),
        user: user.into(),
        side,
        method,
    }
}

fn bearer(value: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", value.parse().unwrap());
    metadata
}

#[tokio::test]
async fn bearer_token_comes_first() {
    let auth = authenticator(true).await;
    let cert = Ca::new("Client CA").client("us-force-planning-gateway", "urn:x");
    let token = keys().rsa.sign(&claims("rok.planner", "rok-jcs"));
    let metadata = bearer(&format!("Bearer {token}"));
    let identity = auth
        .authenticate(&metadata, Some(std::slice::from_ref(&cert.der)))
        .await
        .unwrap();
    assert_eq!(identity.team, TeamId::parse("rok-jcs").unwrap());
    assert_eq!(identity.method, Method::Jwt);
    // The identity is what the services record as the actor of events.
    let actor = identity.actor();
    assert_eq!(
        (actor.team, actor.user.as_str(), actor.side),
        (identity.team.clone(), "rok.planner", Some(Side::Rok))
    );

    // A bad token is refused even though the certificate would do.
    let metadata = bearer("bearer not.a.token");
    assert_eq!(
        auth.authenticate(&metadata, Some(&[cert.der])).await,
        Err(AuthError::Jwt(JwtError::Malformed))
    );
}

#[tokio::test]
async fn client_certificate_when_there_is_no_authorization_header() {
    let auth = authenticator(true).await;
    let cert = Ca::new("Client CA").client("us-force-planning-gateway", "urn:x");
    let caller = auth
        .authenticate(&MetadataMap::new(), Some(&[cert.der]))
        .await
        .unwrap();
    let gateway = "us-force-planning-gateway";
    let us = identity(
        "us-force-planning",
        gateway,
        Some(Side::Us),
        Method::ClientCertificate,
    );
    assert_eq!(caller, us);

    let unmapped = Ca::new("Client CA").client("stranger", "urn:y");
    assert_eq!(
        auth.authenticate(&MetadataMap::new(), Some(&[unmapped.der]))
            .await,
        Err(AuthError::ClientCert(CertError::NotMapped(
            "CN=stranger, URI:urn:y".into()
        )))
    );
}

#[tokio::test]
async fn no_credentials_is_unauthenticated() {
    let auth = authenticator(true).await;
    for certs in [None, Some(&[][..])] {
        let error = auth
            .authenticate(&MetadataMap::new(), certs)
            .await
            .unwrap_err();
        assert_eq!(error, AuthError::NoCredentials);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            status.message(),
            "unauthenticated: no bearer token and no client certificate"
        );
    }
}

#[tokio::test]
async fn authorization_must_be_a_bearer_token() {
    let auth = authenticator(true).await;
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
        assert_eq!(
            auth.authenticate(&bearer(value), None).await,
            Err(AuthError::NotBearer),
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn bearer_tokens_need_a_jwt_configuration() {
    let auth = authenticator(false).await;
    let token = keys().rsa.sign(&claims("rok.planner", "rok-jcs"));
    assert_eq!(
        auth.authenticate(&bearer(&format!("Bearer {token}")), None)
            .await,
        Err(AuthError::BearerNotAccepted)
    );
}

#[tokio::test]
async fn authenticating_a_tonic_request_without_tls() {
    let auth = authenticator(true).await;
    let token = keys().rsa.sign(&claims("auditor", "auditors"));
    let mut request = tonic::Request::new(());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let identity = auth.authenticate_request(&request).await.unwrap();
    assert_eq!(identity.team, TeamId::parse("auditors").unwrap());
    assert_eq!(identity.side, None);
}

#[test]
fn authentication_can_run_in_spawned_tasks() {
    fn assert_send<T: Send>(_: &T) {}
    let auth: Option<Authenticator> = None;
    if let Some(auth) = &auth {
        assert_send(&auth.authenticate(&MetadataMap::new(), None));
    }
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
}

#[test]
fn certificate_matching_entries_of_different_teams_is_refused() {
    let toml = format!(
        "[[client_cert]]\nsubject = \"CN=gateway\"\nteam = \"rok-jcs\"\n\
         [[client_cert]]\nsubject = \"URI:urn:alliance:us\"\nteam = \"us-force-planning\"\n{TEAMS}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml)).unwrap();
    let map = ClientCertMap::new(&config.client_certs, &config.teams().unwrap()).unwrap();
    let cert = Ca::new("Client CA").client("gateway", "urn:alliance:us");
    assert_eq!(
        map.identify(&[cert.der]),
        Err(CertError::Ambiguous(
            "CN=gateway, URI:urn:alliance:us".into()
        ))
    );
    assert_eq!(map.identify(&[]), Err(CertError::Missing));
    assert_eq!(
        map.identify(&[b"not a certificate".to_vec().into()]),
        Err(CertError::Unparsable)
    );
}

fn on_behalf_of(value: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert(alliance_auth::ON_BEHALF_OF, value.parse().unwrap());
    metadata
}

#[tokio::test]
async fn a_peer_server_passes_on_the_caller_it_verified_and_no_one_else_can() {
    let auth = authenticator(false).await;
    let ca = Ca::new("Client CA");
    let peer = ca.instance("allianced-2.alliance.internal");
    let caller = auth
        .authenticate(
            &on_behalf_of("rok-jcs/rok.gateway"),
            Some(std::slice::from_ref(&peer.der)),
        )
        .await
        .unwrap();
    let rok = identity("rok-jcs", "rok.gateway", Some(Side::Rok), Method::Peer);
    assert_eq!(caller, rok);

    // Without the header the peer's certificate is no caller (it is mapped to no team).
    let alone = auth
        .authenticate(&MetadataMap::new(), Some(std::slice::from_ref(&peer.der)))
        .await;
    assert!(
        matches!(alone, Err(AuthError::ClientCert(CertError::NotMapped(_)))),
        "{alone:?}"
    );
    // A team's own certificate cannot speak for another team.
    let gateway = ca.client("us-force-planning-gateway", "urn:x");
    let claimed = auth
        .authenticate(&on_behalf_of("rok-jcs/someone"), Some(&[gateway.der]))
        .await;
    assert!(
        matches!(claimed, Err(AuthError::ClientCert(CertError::NotAPeer(_)))),
        "{claimed:?}"
    );
    // Only a peer's connection is one of this deployment's servers (what a simulation run's
    // recording is believed from).
    assert!(auth.is_peer(Some(std::slice::from_ref(&peer.der))));
    let other = ca.client("us-force-planning-gateway", "urn:x");
    assert!(!auth.is_peer(Some(std::slice::from_ref(&other.der))));
    assert!(!auth.is_peer(None));
    // With no peer configured, no connection is a server's.
    let no_peers = alliance_auth::Authenticator::new(None, Default::default());
    assert!(!no_peers.is_peer(Some(std::slice::from_ref(&peer.der))));
    // Nor can a request without a certificate.
    assert_eq!(
        auth.authenticate(&on_behalf_of("rok-jcs/someone"), None)
            .await,
        Err(AuthError::NoCredentials)
    );
    // A peer must name a known team and a user.
    for bad in ["nobody/x", "rok-jcs/", "rok-jcs", "Not A Team/x"] {
        assert_eq!(
            auth.authenticate(&on_behalf_of(bad), Some(std::slice::from_ref(&peer.der)))
                .await,
            Err(AuthError::OnBehalfOf),
            "{bad}"
        );
    }
}
