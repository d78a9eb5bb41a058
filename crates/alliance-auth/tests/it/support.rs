//! Test keys, certificates, tokens and configuration files, all generated at test time.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};
use tonic::transport::CertificateDer;

pub const ISSUER: &str = "https://idp.alliance.test/realms/planning";
pub const AUDIENCE: &str = "alliance-planning";

/// A JWT signing key and its public JWK (with key id).
pub struct SigningKey {
    pub alg: Algorithm,
    key: EncodingKey,
    pub jwk: Jwk,
}

impl SigningKey {
    fn generate(kid: &str, alg: Algorithm) -> Self {
        let (rcgen_alg, from_pem): (_, fn(&[u8]) -> _) = match alg {
            Algorithm::RS256 => (&rcgen::PKCS_RSA_SHA256, EncodingKey::from_rsa_pem),
            Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, EncodingKey::from_ec_pem),
            other => panic!("no test keys for {other:?}"),
        };
        let pair = KeyPair::generate_for(rcgen_alg).unwrap();
        let key = from_pem(pair.serialize_pem().as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self { alg, key, jwk }
    }

    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap()
    }

    /// A token with these claims, signed by this key and naming `kid` in its header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    pub fn sign_without_kid(&self, claims: &Value) -> String {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.key).unwrap()
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid(), claims)
    }
}

/// The signing keys of the tests, generated once per test binary (RSA generation is slow).
pub struct Keys {
    pub rsa: SigningKey,
    pub ec: SigningKey,
    /// A key the JWKS does not hold.
    pub other_rsa: SigningKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: SigningKey::generate("rsa-1", Algorithm::RS256),
        ec: SigningKey::generate("ec-1", Algorithm::ES256),
        other_rsa: SigningKey::generate("rsa-other", Algorithm::RS256),
    })
}

pub fn jwks(keys: &[&SigningKey]) -> String {
    let set = JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    };
    serde_json::to_string_pretty(&set).unwrap()
}

pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// Valid claims of a user of a team.
pub fn claims(user: &str, team: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "team": team,
        "iat": now,
        "nbf": now - 10,
        "exp": now + 600,
    })
}

/// The teams of `deploy/dev-tokens.toml`.
pub const TEAMS: &str = r#"
[[team]]
team = "us-force-planning"
side = "us"
description = "U.S. force-planning cell"

[[team]]
team = "rok-jcs"
side = "rok"
description = "ROK Joint Chiefs of Staff planning cell"

[[team]]
team = "nuclear-policy"
side = "us"

[[team]]
team = "alliance-approvers"

[[team]]
team = "auditors"
"#;

/// A `[jwt]` table reading the JWKS from `jwks_file`, with extra lines appended.
pub fn jwt_table(jwks_source: &str, extra: &str) -> String {
    format!(
        "[jwt]\nissuer = \"{ISSUER}\"\naudience = [\"{AUDIENCE}\", \"planning-cli\"]\n\
         {jwks_source}\nleeway_seconds = 30\n{extra}\n"
    )
}

pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A certificate authority issuing certificates with fresh P-256 keys.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// An issued certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
        }
    }

    fn issue(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = sans;
        params.extended_key_usages = usages;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A server certificate for `localhost`.
    pub fn server(&self) -> Leaf {
        let san = SanType::DnsName("localhost".try_into().unwrap());
        self.issue(
            "localhost",
            vec![san],
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )
    }

    /// A client certificate with this Common Name and URI subject alternative name.
    pub fn client(&self, common_name: &str, uri: &str) -> Leaf {
        let san = SanType::URI(uri.try_into().unwrap());
        self.issue(
            common_name,
            vec![san],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    /// The certificate a cluster's CA issues a server reached by the DNS name `name` (its
    /// Service) and by `localhost` (on this machine), for server and client authentication:
    /// no IP address, so a peer reached at an address proves `name`, or nothing.
    #[allow(dead_code)] // used by the end-to-end tests of the deployments
    pub fn service(&self, name: &str) -> Leaf {
        self.peer(name, vec![])
    }

    /// The certificate of a server of the deployment, `name`, serving on 127.0.0.1 and
    /// localhost and presenting it to the other servers as its client certificate.
    pub fn instance(&self, name: &str) -> Leaf {
        let loopback = SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        self.peer(name, vec![loopback])
    }

    /// A certificate for server and client authentication, for the DNS names `name` and
    /// `localhost` and the further subject alternative names `more`.
    fn peer(&self, name: &str, more: Vec<SanType>) -> Leaf {
        let names = [name, "localhost"].map(|n| SanType::DnsName(n.try_into().unwrap()));
        let usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(name, names.into_iter().chain(more).collect(), usages)
    }
}
