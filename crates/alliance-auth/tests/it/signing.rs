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

#[test]
fn witness_keys_load_with_their_side_and_period_and_a_keys_file_reads_them_alone() {
    let dir = tempfile::tempdir().unwrap();
    let keys = "[[signing_key]]\n\
                public_key = \"keys/writer.pub.pem\"\n\
                [[witness_key]]\n\
                public_key = \"keys/rok-audit.pub.pem\"\n\
                side = \"rok\"\n\
                not_before = \"2025-01-01T00:00:00Z\"\n\
                description = \"ROK auditors\"\n\
                [[witness_key]]\n\
                public_key = \"keys/us-audit.pub.pem\"\n\
                side = \"us\"\n";
    let toml = format!(
        "{}\n{TEAMS}\n{keys}",
        jwt_table("jwks_file = \"jwks.json\"", "")
    );
    let config = AuthConfig::load(&write(dir.path(), "auth.toml", &toml)).unwrap();
    let [rok, us] = config.witness_keys.as_slice() else {
        panic!("two witness keys: {:?}", config.witness_keys)
    };
    assert_eq!(rok.public_key, dir.path().join("keys/rok-audit.pub.pem"));
    assert_eq!(
        (rok.side, us.side),
        (alliance_domain::Side::Rok, alliance_domain::Side::Us)
    );
    assert_eq!(rok.not_before.map(|t| t.timestamp()), Some(1_735_689_600));

    // The same entries read from the identity configuration, the rest of it left aside, and
    // from a file of keys alone.
    for name in ["auth.toml", "keys.toml"] {
        let path = write(
            dir.path(),
            name,
            if name == "keys.toml" { keys } else { &toml },
        );
        let file = alliance_auth::KeysFile::load(&path).unwrap();
        assert_eq!(file.witness_keys, config.witness_keys);
        assert_eq!(file.signing_keys, config.signing_keys);
    }

    // A witness key without a side, or of no known side, is refused.
    let sideless = toml.replace("side = \"us\"\n", "");
    assert!(AuthConfig::load(&write(dir.path(), "sideless.toml", &sideless)).is_err());
    let stranger = toml.replace("side = \"us\"", "side = \"nato\"");
    assert!(AuthConfig::load(&write(dir.path(), "stranger.toml", &stranger)).is_err());
}
