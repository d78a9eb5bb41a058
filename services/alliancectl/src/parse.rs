//! Value parsers for command-line arguments: dates, equipment counts and the contract's enums.

use std::ffi::OsStr;

use alliance_domain::Date;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use serde::Serialize;

/// A `YYYY-MM-DD` date.
pub fn date(s: &str) -> Result<Date, String> {
    Date::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("expected YYYY-MM-DD ({e})"))
}

/// An RFC 3339 instant, e.g. `2025-01-01T09:30:00Z`, as a protobuf timestamp.
pub fn instant(s: &str) -> Result<prost_types::Timestamp, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("expected an RFC 3339 instant, e.g. 2025-01-01T09:30:00Z ({e})"))?;
    Ok(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// A point of a plan's history: a version (e.g. `42`) or an RFC 3339 instant.
pub fn record_at(s: &str) -> Result<alliance_proto::v1::RecordPoint, String> {
    use alliance_proto::v1::record_point::Point;
    let point = match s.parse::<u64>() {
        Ok(0) => return Err("plan versions start at 1".to_owned()),
        Ok(version) => Point::Version(version),
        Err(_) => Point::Time(instant(s).map_err(|_| {
            "expected a plan version (e.g. 42) or an RFC 3339 instant (e.g. 2025-01-01T09:30:00Z)"
                .to_owned()
        })?),
    };
    Ok(alliance_proto::v1::RecordPoint { point: Some(point) })
}

/// A `KIND=COUNT` pair, e.g. `F-16=40`.
pub fn equipment(s: &str) -> Result<(String, u32), String> {
    let (kind, count) = s
        .rsplit_once('=')
        .ok_or_else(|| "expected KIND=COUNT, e.g. F-16=40".to_owned())?;
    let kind = kind.trim();
    if kind.is_empty() {
        return Err("equipment kind must not be empty".to_owned());
    }
    let count = count
        .trim()
        .parse()
        .map_err(|e| format!("count {count:?}: {e}"))?;
    Ok((kind.to_owned(), count))
}

/// The snake_case (serde) name of a domain enum value, e.g. `ground_combat_brigade`.
pub fn enum_name<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Case, `_` and `-` do not matter when matching a name: `Signal-C2` is `signal_c2`.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Parses a domain enum by its snake_case name. The variants are those the contract knows:
/// `from_proto(1)`, `from_proto(2)`, ... until it returns `None` (proto enums are numbered densely).
#[derive(Clone, Copy)]
pub struct EnumParser<T: 'static> {
    from_proto: fn(i32) -> Option<T>,
}

/// The parser of the domain enum that `from_proto` (from `alliance_proto::convert`) decodes.
pub fn enum_of<T>(from_proto: fn(i32) -> Option<T>) -> EnumParser<T> {
    EnumParser { from_proto }
}

impl<T: Serialize> EnumParser<T> {
    fn variants(&self) -> impl Iterator<Item = (String, T)> + '_ {
        (1..).map_while(self.from_proto).map(|v| {
            let name = enum_name(&v);
            (name, v)
        })
    }
}

impl<T: Serialize + Clone + Send + Sync + 'static> TypedValueParser for EnumParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let wanted = value.to_str().map(squash);
        if let Some((_, found)) = self
            .variants()
            .find(|(name, _)| wanted.as_deref() == Some(squash(name).as_str()))
        {
            return Ok(found);
        }
        // Not a known name: let clap word the error, with the list of possible values.
        let names: Vec<String> = self.variants().map(|(name, _)| name).collect();
        PossibleValuesParser::new(names)
            .parse_ref(cmd, arg, value)
            .and_then(|_| Err(clap::Error::new(clap::error::ErrorKind::InvalidValue)))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            self.variants().map(|(name, _)| PossibleValue::new(name)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_domain::{AgreementKind, ElementKind, Side};
    use alliance_proto::convert::{agreement_from_proto, kind_from_proto, side_from_proto};

    fn parse<T: Serialize + Clone + Send + Sync>(
        parser: EnumParser<T>,
        s: &str,
    ) -> Result<T, clap::Error> {
        parser.parse_ref(&clap::Command::new("t"), None, OsStr::new(s))
    }

    #[test]
    fn enum_names_parse_case_insensitively() {
        assert_eq!(parse(enum_of(side_from_proto), "ROK").ok(), Some(Side::Rok));
        assert_eq!(
            parse(enum_of(kind_from_proto), "Ground_Combat_Brigade").ok(),
            Some(ElementKind::GroundCombatBrigade)
        );
        assert_eq!(
            parse(enum_of(kind_from_proto), "signal-c2").ok(),
            Some(ElementKind::SignalC2)
        );
        for spelling in ["nuclear_cooperation123", "nuclear_cooperation_123"] {
            assert_eq!(
                parse(enum_of(agreement_from_proto), spelling).ok(),
                Some(AgreementKind::NuclearCooperation123)
            );
        }
    }

    #[test]
    fn unknown_enum_name_lists_possible_values() {
        let err = parse(enum_of(side_from_proto), "nato").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("us") && text.contains("rok"), "{text}");
    }

    #[test]
    fn every_variant_has_a_name() {
        let names: Vec<String> = enum_of(kind_from_proto)
            .variants()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names.len(), 12);
        assert_eq!(names[0], "ground_combat_brigade");
    }

    #[test]
    fn dates_and_equipment() {
        assert_eq!(date("2029-06-01").ok(), Date::from_ymd_opt(2029, 6, 1));
        assert!(date("2029-13-01").is_err());
        assert!(date("June 2029").is_err());
        assert_eq!(equipment("F-16=40"), Ok(("F-16".to_owned(), 40)));
        assert!(equipment("F-16").is_err());
        assert!(equipment("=3").is_err());
        assert!(equipment("M1A2=-1").is_err());
    }

    #[test]
    fn record_points_are_versions_or_instants() {
        use alliance_proto::v1::record_point::Point;
        assert_eq!(record_at("42").unwrap().point, Some(Point::Version(42)));
        let Some(Point::Time(t)) = record_at("2025-01-01T00:00:00Z").unwrap().point else {
            panic!("an instant");
        };
        assert_eq!(t.seconds, 1_735_689_600);
        assert!(record_at("0").is_err());
        assert!(record_at("2025-01-01").is_err());
    }

    #[test]
    fn instants_are_rfc3339() {
        let t = instant("2025-01-01T09:30:00.25+09:00").unwrap();
        assert_eq!(t.seconds, 1_735_691_400);
        assert_eq!(t.nanos, 250_000_000);
        assert!(instant("2025-01-01").is_err());
        assert!(instant("yesterday").is_err());
    }
}
