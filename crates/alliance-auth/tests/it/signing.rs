use alliance_auth::{AuthConfig, ConfigProblem};

use crate::support::{TEAMS, jwt_table, write};

#[test]
fn signing_keys_load_with_their_periods_and_paths_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "{}\n{TEAMS}\n\
         [[signing_key]]\n\
         public_key = \"keys/a.pub.pem\"\n\
         not_before = \"2025-01-01T00:00:00Z\"\n\
         not_after = \"2026-01-01T00:00:00Z\"\n\
         description = \"retired\"\n\
         [[signing_key]]\n\
         public_key = \"/etc/alliance/b.pub.pem\"\n\
         not_before = \"2026-01-01T00:00:00Z\"\n",
        jwt_table("jwks_file = \"jwks.json\"", "")
    );
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", &toml)).unwrap();
    let [a, b] = config.signing_keys.as_slice() else {
        panic!("two keys: {:?}", config.signing_keys)
    };
    assert_eq!(a.public_key, dir.path().join("keys/a.pub.pem"));
    assert_eq!(b.public_key.to_str(), Some("/etc/alliance/b.pub.pem"));
    assert_eq!(a.not_after, b.not_before);
    assert_eq!(
        a.not_before.map(|t| t.timestamp()),
        Some(1_735_689_600),
        "2025-01-01T00:00:00Z"
    );
    assert_eq!(b.not_after, None);

    // A period that ends before it starts is refused, naming the key.
    let empty = toml.replace(
        "not_after = \"2026-01-01T00:00:00Z\"",
        "not_after = \"2024-01-01T00:00:00Z\"",
    );
    let error = AuthConfig::load(&write(dir.path(), "empty.toml", &empty)).unwrap_err();
    assert!(
        matches!(
            &error,
            alliance_auth::ConfigError::Invalid {
                problem: ConfigProblem::EmptySigningPeriod(key),
                ..
            } if key.ends_with("keys/a.pub.pem")
        ),
        "{error}"
    );
}
