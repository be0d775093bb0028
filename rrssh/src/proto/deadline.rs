//! The caller's time budget, `rrssh-timeout` (`PROTOCOL.md` §3, "Deadlines"): the one parser, encoder and
//! cap every reader of the header uses.

use std::fmt;
use std::time::Duration;

/// A call's time budget in whole milliseconds, counted from when the callee receives the
/// `REQUEST`; it covers the whole call, bodies and streams included.
///
/// On the wire: 1 to 20 ASCII digits, nothing else (no sign, space, point or exponent; leading
/// zeros are allowed). A value above [`Budget::MAX_MS`] (2^40 ms, about 35 years) means
/// [`Budget::MAX_MS`], however many digits it has. A budget of 0 has already run out: the call
/// is answered `RESET 504` without running its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Budget(u64);

/// Why an `rrssh-timeout` value was refused (the callee answers `RESET 400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rrssh-timeout {value:?}: expected 1 to 20 ASCII digits (whole milliseconds)")]
pub struct BudgetError {
    /// The value as received (lossily decoded, at most 32 bytes of it).
    pub value: String,
}

impl Budget {
    /// The largest budget: 2^40 ms. Larger values are read as this one.
    pub const MAX_MS: u64 = 1 << 40;

    /// The most digits a value may have.
    pub const MAX_DIGITS: usize = 20;

    /// A budget of `ms` milliseconds (capped at [`MAX_MS`](Self::MAX_MS)).
    pub fn from_millis(ms: u64) -> Self {
        Self(ms.min(Self::MAX_MS))
    }

    /// A budget of `d`, rounded down to whole milliseconds (capped).
    pub fn from_duration(d: Duration) -> Self {
        Self::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Parses a header value by the rules above.
    pub fn parse(value: &[u8]) -> Result<Self, BudgetError> {
        let valid =
            (1..=Self::MAX_DIGITS).contains(&value.len()) && value.iter().all(u8::is_ascii_digit);
        if !valid {
            let shown = &value[..value.len().min(32)];
            return Err(BudgetError {
                value: String::from_utf8_lossy(shown).into_owned(),
            });
        }
        let ms = value.iter().fold(0u64, |acc, d| {
            acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        });
        Ok(Self::from_millis(ms))
    }

    /// The budget in milliseconds.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// The budget as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// Whether the budget has run out before the call starts (0 ms).
    pub fn is_spent(self) -> bool {
        self.0 == 0
    }

    /// The header value: the milliseconds in decimal.
    pub fn to_header_value(self) -> http::HeaderValue {
        http::HeaderValue::from(self.0)
    }

    /// The budget a request's headers carry: `Ok(None)` without the header, `Err` when it is
    /// malformed (several values: the first counts).
    pub fn of_headers(headers: &http::HeaderMap) -> Result<Option<Self>, BudgetError> {
        headers
            .get(super::headers::TIMEOUT)
            .map(|v| Self::parse(v.as_bytes()))
            .transpose()
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_only_with_leading_zeros_and_a_cap() {
        assert_eq!(Budget::parse(b"5000"), Ok(Budget(5000)));
        assert_eq!(Budget::parse(b"0050"), Ok(Budget(50)));
        assert_eq!(Budget::parse(b"0"), Ok(Budget(0)));
        assert!(Budget::parse(b"0").unwrap().is_spent());
        assert_eq!(
            Budget::parse(b"18446744073709551616"),
            Ok(Budget(Budget::MAX_MS)),
            "2^64 is read as the cap"
        );
        assert_eq!(
            Budget::parse(b"99999999999999999999"),
            Ok(Budget(Budget::MAX_MS))
        );
        assert_eq!(Budget::parse(b"1099511627776"), Ok(Budget(1 << 40)));
        assert_eq!(Budget::parse(b"1099511627777"), Ok(Budget(1 << 40)));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"1e3",
            b"1.5",
            b"0x10",
            b"5ms",
            b"\xff",
            b"123456789012345678901",
        ] {
            let e = Budget::parse(bad).unwrap_err();
            assert!(e.to_string().contains("invalid rrssh-timeout"), "{e}");
        }
    }

    #[test]
    fn encodes_as_decimal_milliseconds() {
        assert_eq!(Budget::from_millis(250).to_header_value(), "250");
        assert_eq!(
            Budget::from_duration(Duration::from_secs(u64::MAX)).as_millis(),
            Budget::MAX_MS
        );
        let mut h = http::HeaderMap::new();
        assert_eq!(Budget::of_headers(&h), Ok(None));
        h.insert("rrssh-timeout", http::HeaderValue::from_static("7"));
        assert_eq!(Budget::of_headers(&h), Ok(Some(Budget(7))));
    }
}
