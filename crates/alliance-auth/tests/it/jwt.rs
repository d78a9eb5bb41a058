use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use alliance_auth::{AuthConfig, Identity, JwtError, JwtVerifier, Method, SetupError};
use alliance_domain::{Side, TeamId};
use alliance_stdx::lock;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{TEAMS, claims, jwks, jwt_table, keys, now, write};

struct Fixture {
    dir: TempDir,
    verifier: JwtVerifier,
}

/// A verifier reading this JWKS from a file, with extra `[jwt]` lines.
async fn verifier_with(jwks: &str, extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "jwks.json", jwks);
    let toml = jwt_table("jwks_file = \"jwks.json\"", extra) + TEAMS;
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml)).unwrap();
    let verifier = JwtVerifier::new(config.jwt.as_ref().unwrap(), config.teams().unwrap())
        .await
        .unwrap();
    Fixture { dir, verifier }
}

async fn verifier() -> Fixture {
    let keys = keys();
    verifier_with(&jwks(&[&keys.rsa, &keys.ec]), "").await
}

/// The error for a token, checking that its message quotes no part of the token.
async fn reject(verifier: &JwtVerifier, token: &str) -> JwtError {
    let error = verifier.verify(token).await.unwrap_err();
    let message = error.to_string();
    for part in token.split('.').filter(|part| part.len() > 8) {
        assert!(!message.contains(part), "{message:?} quotes the token");
    }
    error
}

fn team(id: &str) -> TeamId {
    TeamId::parse(id).unwrap()
}

#[tokio::test]
async fn rs256_token_maps_to_the_team_identity() {
    let f = verifier().await;
    let token = keys().rsa.sign(&claims("rok.planner", "rok-jcs"));
    let identity = f.verifier.verify(&token).await.unwrap();
    assert_eq!(
        identity,
        Identity {
            team: team("rok-jcs"),
            user: "rok.planner".into(),
            side: Some(Side::Rok),
            method: Method::Jwt,
        }
    );
}

#[tokio::test]
async fn es256_token_is_accepted_for_any_configured_audience() {
    let f = verifier().await;
    let mut claims = claims("us.planner", "us-force-planning");
    claims["aud"] = json!(["someone-else", "planning-cli"]);
    let identity = f.verifier.verify(&keys().ec.sign(&claims)).await.unwrap();
    let us = crate::authenticate::identity(
        "us-force-planning",
        "us.planner",
        Some(Side::Us),
        Method::Jwt,
    );
    assert_eq!(identity, us);
}

#[tokio::test]
async fn alliance_level_team_has_no_side() {
    let f = verifier().await;
    let token = keys().rsa.sign(&claims("approver", "alliance-approvers"));
    assert_eq!(f.verifier.verify(&token).await.unwrap().side, None);
}

/// Claims changed by `edit`, signed with the RSA key.
fn token_with(edit: impl FnOnce(&mut Value)) -> String {
    let mut claims = claims("rok.planner", "rok-jcs");
    edit(&mut claims);
    keys().rsa.sign(&claims)
}

/// The token of `claims("rok.planner", "rok-jcs")` without `claim`, signed with the RSA key.
fn token_without(claim: &str) -> String {
    token_with(|c| drop(c.as_object_mut().unwrap().remove(claim)))
}

#[tokio::test]
async fn tokens_with_bad_claims_are_refused() {
    let f = verifier().await;
    let missing = |claim: &str| JwtError::ClaimMissing(claim.into());
    let team_id = |bad: Value| token_with(|c| c["team"] = bad);
    let malformed_team = JwtError::TeamClaimMalformed("team".into());
    for (token, expected) in [
        (
            token_with(|c| c["exp"] = json!(now() - 3600)),
            JwtError::Expired,
        ),
        (token_without("exp"), missing("exp")),
        (
            token_with(|c| c["nbf"] = json!(now() + 3600)),
            JwtError::NotYetValid,
        ),
        (
            token_with(|c| c["iss"] = json!("https://evil.test")),
            JwtError::IssuerNotAccepted,
        ),
        (token_without("iss"), missing("iss")),
        (
            token_with(|c| c["aud"] = json!("another-service")),
            JwtError::AudienceNotAccepted,
        ),
        (token_without("aud"), missing("aud")),
        (token_without("sub"), missing("sub")),
        (
            token_without("team"),
            JwtError::TeamClaimMissing("team".into()),
        ),
        (team_id(json!(42)), malformed_team.clone()),
        (team_id(json!(["rok-jcs"])), malformed_team.clone()),
        (team_id(json!("not a team!")), malformed_team),
        (
            team_id(json!("kgb-planning")),
            JwtError::UnknownTeam(team("kgb-planning")),
        ),
    ] {
        assert_eq!(reject(&f.verifier, &token).await, expected);
    }
    for (error, message) in [
        (JwtError::Expired, "token expired"),
        (JwtError::AudienceNotAccepted, "token audience not accepted"),
        (
            JwtError::TeamClaimMissing("team".into()),
            "team claim team missing",
        ),
        (
            JwtError::UnknownTeam(team("kgb-planning")),
            "unknown team kgb-planning",
        ),
    ] {
        assert_eq!(error.to_string(), message);
    }
}

#[tokio::test]
async fn expiry_within_the_leeway_is_tolerated() {
    let f = verifier().await;
    let token = token_with(|c| c["exp"] = json!(now() - 5));
    assert!(f.verifier.verify(&token).await.is_ok());
}

/// Tokens signed by a key the set does not hold, under a key id it does not know or with an
/// algorithm it does not accept for the key, and tokens that are no JWS at all.
#[tokio::test]
async fn tokens_not_signed_as_the_key_set_says_are_refused() {
    let f = verifier().await;
    let keys = keys();
    let rok = claims("rok.planner", "rok-jcs");
    let token = keys.rsa.sign(&rok);
    let forged = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims("rok.planner", "alliance-approvers")).unwrap());
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"rsa-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&rok).unwrap());
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(keys.rsa.kid().to_owned());
    // The classic confusion attack: the RSA public key (here its JWK) as the HMAC secret.
    let secret = serde_json::to_vec(&keys.rsa.jwk).unwrap();
    let hmac = jsonwebtoken::encode(&hs256, &rok, &EncodingKey::from_secret(&secret)).unwrap();
    let mut cases = vec![
        (
            keys.other_rsa.sign_as(keys.rsa.kid(), &rok),
            JwtError::BadSignature,
        ),
        (tampered, JwtError::BadSignature),
        (
            keys.rsa.sign_as("not-in-the-set", &rok),
            JwtError::UnknownKeyId,
        ),
        (keys.rsa.sign_without_kid(&rok), JwtError::MissingKeyId),
        (format!("{none}.{payload}."), JwtError::AlgorithmNotAccepted),
        (hmac, JwtError::AlgorithmNotAccepted),
        (
            keys.ec.sign_as(keys.rsa.kid(), &rok),
            JwtError::KeyAlgorithmMismatch,
        ),
    ];
    for malformed in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        cases.push((malformed.to_owned(), JwtError::Malformed));
    }
    for (token, expected) in cases {
        assert_eq!(reject(&f.verifier, &token).await, expected, "{token:?}");
    }
    assert_eq!(
        JwtError::BadSignature.to_string(),
        "token signature invalid"
    );
    assert_eq!(JwtError::UnknownKeyId.to_string(), "unknown signing key id");
}

#[tokio::test]
async fn team_claim_name_is_configurable() {
    let keys = keys();
    let f = verifier_with(&jwks(&[&keys.rsa]), "team_claim = \"planning_cell\"").await;
    let mut claims = claims("rok.planner", "ignored");
    claims["planning_cell"] = json!("rok-jcs");
    let identity = f.verifier.verify(&keys.rsa.sign(&claims)).await.unwrap();
    assert_eq!(identity.team, team("rok-jcs"));
}

#[tokio::test]
async fn rotated_key_is_picked_up_from_the_file() {
    let keys = keys();
    let f = verifier_with(&jwks(&[&keys.rsa]), "jwks_min_refresh_seconds = 0").await;
    let token = keys.ec.sign(&claims("rok.planner", "rok-jcs"));
    assert_eq!(reject(&f.verifier, &token).await, JwtError::UnknownKeyId);

    write(f.dir.path(), "jwks.json", jwks(&[&keys.rsa, &keys.ec]));
    assert!(f.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn reloading_is_rate_limited() {
    let keys = keys();
    // The default: at most one reload a minute, and the set was loaded just now.
    let f = verifier_with(&jwks(&[&keys.rsa]), "").await;
    write(f.dir.path(), "jwks.json", jwks(&[&keys.rsa, &keys.ec]));
    let token = keys.ec.sign(&claims("rok.planner", "rok-jcs"));
    assert_eq!(reject(&f.verifier, &token).await, JwtError::UnknownKeyId);
}

#[tokio::test]
async fn failed_reload_keeps_the_cached_keys() {
    let keys = keys();
    let f = verifier_with(&jwks(&[&keys.rsa]), "jwks_min_refresh_seconds = 0").await;
    write(f.dir.path(), "jwks.json", "not json");
    let unknown = keys.ec.sign(&claims("rok.planner", "rok-jcs"));
    assert_eq!(
        reject(&f.verifier, &unknown).await,
        JwtError::KeysUnavailable
    );
    let known = keys.rsa.sign(&claims("rok.planner", "rok-jcs"));
    assert!(f.verifier.verify(&known).await.is_ok());
}

/// A minimal HTTP server answering every request with the current JWKS, counting requests.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(body));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served_body, served_hits) = (body.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                served_hits.fetch_add(1, Ordering::SeqCst);
                let body = lock(&served_body).clone();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Self { url, body, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn url_verifier(url: &str, extra: &str) -> Result<JwtVerifier, SetupError> {
    let dir = tempfile::tempdir().unwrap();
    let toml = jwt_table(&format!("jwks_url = \"{url}\""), extra) + TEAMS;
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml)).unwrap();
    JwtVerifier::new(config.jwt.as_ref().unwrap(), config.teams().unwrap()).await
}

#[tokio::test]
async fn keys_are_fetched_from_the_url_and_refetched_for_an_unknown_key_id() {
    let keys = keys();
    let server = JwksServer::start(jwks(&[&keys.rsa])).await;
    let verifier = url_verifier(&server.url, "jwks_min_refresh_seconds = 0")
        .await
        .unwrap();
    assert_eq!(server.hits(), 1);

    let rsa_token = keys.rsa.sign(&claims("rok.planner", "rok-jcs"));
    assert!(verifier.verify(&rsa_token).await.is_ok());
    assert_eq!(server.hits(), 1, "a known key needs no fetch");

    let ec_token = keys.ec.sign(&claims("us.planner", "us-force-planning"));
    assert_eq!(reject(&verifier, &ec_token).await, JwtError::UnknownKeyId);
    assert_eq!(server.hits(), 2);

    *lock(&server.body) = jwks(&[&keys.rsa, &keys.ec]);
    let identity = verifier.verify(&ec_token).await.unwrap();
    assert_eq!(identity.team, team("us-force-planning"));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn url_refetch_is_rate_limited() {
    let keys = keys();
    let server = JwksServer::start(jwks(&[&keys.rsa])).await;
    let verifier = url_verifier(&server.url, "").await.unwrap();
    let token = keys.ec.sign(&claims("rok.planner", "rok-jcs"));
    for _ in 0..5 {
        assert_eq!(reject(&verifier, &token).await, JwtError::UnknownKeyId);
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn unreachable_jwks_url_fails_the_setup() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let error = url_verifier(&url, "").await.unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("cannot fetch JWKS from"), "{message}");
    assert!(message.contains(&url), "{message}");
}

#[tokio::test]
async fn jwks_without_usable_keys_fails_the_setup() {
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = write(
        dir.path(),
        "jwks.json",
        r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}"#,
    );
    let toml = jwt_table("jwks_file = \"jwks.json\"", "") + TEAMS;
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", toml)).unwrap();
    let error = JwtVerifier::new(config.jwt.as_ref().unwrap(), config.teams().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "JWKS from {} holds no RS256 or ES256 signing key with a key id",
            jwks_path.display()
        )
    );
}

#[tokio::test]
async fn old_key_sets_are_reloaded_so_withdrawn_keys_stop_working() {
    let keys = keys();
    let extra = "jwks_min_refresh_seconds = 0\njwks_max_age_seconds = 0";
    let f = verifier_with(&jwks(&[&keys.rsa, &keys.ec]), extra).await;
    let ec_token = keys.ec.sign(&claims("rok.planner", "rok-jcs"));
    assert!(f.verifier.verify(&ec_token).await.is_ok());

    write(f.dir.path(), "jwks.json", jwks(&[&keys.rsa]));
    let rsa_token = keys.rsa.sign(&claims("rok.planner", "rok-jcs"));
    assert!(f.verifier.verify(&rsa_token).await.is_ok());
    assert_eq!(reject(&f.verifier, &ec_token).await, JwtError::UnknownKeyId);

    // A failed reload leaves the cached keys in use.
    write(f.dir.path(), "jwks.json", "not json");
    assert!(f.verifier.verify(&rsa_token).await.is_ok());
}
