//! `expiry-time="YYYYMMDD[HHMM[SS]]"`: when a key stops working.

use std::time::SystemTime;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Parses an `expiry-time` as sshd does: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in the
/// system's time zone, or in UTC when it ends in `Z`.
pub(crate) fn parse(text: &str) -> Result<SystemTime, String> {
    let bad = || format!("bad expiry-time `{text}`: expected YYYYMMDD[HHMM[SS]][Z]");
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), str::parse::<i16>);
    let field = |r| num(r).map_err(|_| bad());
    let dt = DateTime::new(
        field(0..4)?,
        i8::try_from(field(4..6)?).map_err(|_| bad())?,
        i8::try_from(field(6..8)?).map_err(|_| bad())?,
        i8::try_from(field(8..10)?).map_err(|_| bad())?,
        i8::try_from(field(10..12)?).map_err(|_| bad())?,
        i8::try_from(field(12..14)?).map_err(|_| bad())?,
        0,
    )
    .map_err(|_| bad())?;
    let tz = if utc {
        TimeZone::UTC
    } else {
        TimeZone::system()
    };
    let ts = dt.to_zoned(tz).map_err(|_| bad())?.timestamp();
    Ok(SystemTime::from(ts))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn formats() {
        let t = parse("20200102Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_577_923_200)
        );
        let t = parse("202001020304z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_secs(1_577_923_200 + 3 * 3600 + 4 * 60)
        );
        assert!(parse("20991231235959").unwrap() > SystemTime::now());
        for bad in [
            "2020",
            "2020010",
            "20201301",
            "20200230",
            "2020010225",
            "x0200101",
            "202001021Z",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
