//! The caller's deadline, from the `grpc-timeout` header: one parser for every service.
//!
//! The gRPC protocol allows at most 8 digits, but a client may send any number. A value past
//! [`MAX_DEADLINE`] (however many digits) is taken as [`MAX_DEADLINE`], so no arithmetic on a
//! deadline overflows; a value that is not a timeout at all is ignored, as tonic ignores it.

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// The longest deadline a server honours: a day. Longer ones are clamped to it.
pub const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// The caller's whole deadline (`grpc-timeout`), at most [`MAX_DEADLINE`]; `None` without one
/// or when the header is not a timeout.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    parse(metadata.get("grpc-timeout")?.to_str().ok()?)
}

/// Parses a `grpc-timeout` value (`{digits}{H|M|S|m|u|n}`), clamped to [`MAX_DEADLINE`].
pub fn parse(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than a u64 holds is past the clamp whatever the unit.
    let amount: u64 = digits.parse().unwrap_or(u64::MAX);
    let full = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(full.min(MAX_DEADLINE))
}

/// The caller's deadline less a margin to answer in (a tenth of it): how long a server may
/// wait for something before it must answer.
pub fn patience(metadata: &MetadataMap) -> Option<Duration> {
    grpc_timeout(metadata).map(|d| d.mul_f64(0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_the_clamp() {
        assert_eq!(parse("7S"), Some(Duration::from_secs(7)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("15m"), Some(Duration::from_millis(15)));
        assert_eq!(parse("15u"), Some(Duration::from_micros(15)));
        assert_eq!(parse("15n"), Some(Duration::from_nanos(15)));
        for huge in [
            "18446744073709551615S",
            "18446744073709551615H",
            "99999999999999999999999999M",
            "99999999H",
        ] {
            assert_eq!(parse(huge), Some(MAX_DEADLINE), "{huge}");
        }
        for bad in ["", "S", "10", "10x", "-1S", "+1S", "1.5S", "１S", "S１"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
