//! Times for people: every duration a person reads (the CLI's deadlines and clocks, a
//! daemon's health report, its log lines) is written the same way.

use std::time::Duration;

/// A number of seconds for people: `42 s`, `9 min 58 s`, `2 h 5 min`, `3 d 4 h`.
pub fn secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// A duration for people, to the second (see [`secs`]).
pub fn duration(d: Duration) -> String {
    secs(d.as_secs())
}

/// A moment (Unix seconds) for people, relative to `now` and in UTC:
/// `in 6 d 23 h (2026-12-09 13:00 UTC)`, `3 min 5 s ago (2026-12-02 12:57 UTC)`.
pub fn at(unix: u64, now: u64) -> String {
    let when = match unix.checked_sub(now) {
        Some(0) => "now".to_string(),
        Some(left) => format!("in {}", secs(left)),
        None => format!("{} ago", secs(now - unix)),
    };
    format!("{when} ({})", utc(unix))
}

/// A moment (Unix seconds) as a UTC date and time to the minute: `2026-12-09 13:00 UTC`.
pub fn utc(unix: u64) -> String {
    let days = unix / 86_400;
    let minutes = unix % 86_400 / 60;
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), counted in
    // 400-year eras that start on 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn moments_are_dated_in_utc_and_relative_to_now() {
        assert_eq!(super::utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc(1_798_761_599), "2026-12-31 23:59 UTC");
        assert_eq!(super::utc(1_798_761_600), "2027-01-01 00:00 UTC");
        assert_eq!(
            super::at(1_000_600, 1_000_000),
            format!("in 10 min 0 s ({})", super::utc(1_000_600))
        );
        assert_eq!(
            super::at(1_000_000, 1_000_065),
            format!("1 min 5 s ago ({})", super::utc(1_000_000))
        );
    }

    #[test]
    fn each_range_reads_naturally() {
        assert_eq!(super::secs(0), "0 s");
        assert_eq!(super::secs(59), "59 s");
        assert_eq!(super::secs(598), "9 min 58 s");
        assert_eq!(super::secs(7_500), "2 h 5 min");
        assert_eq!(super::secs(273_600), "3 d 4 h");
    }
}

/// An amount that is not one: the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmountError(String);

macro_rules! ensure_amount {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(AmountError(format!($($msg)+)));
        }
    };
}

/// Reads an amount of ETH as people write it: digits with at most one point and at most 18
/// decimals (one wei). Refuses signs, exponents, spaces, extra decimals and amounts over
/// 2^256 wei, each with what to write instead, so that nothing is rounded or wraps around.
pub fn parse_eth(text: &str) -> Result<alloy::primitives::U256, AmountError> {
    const HOW: &str = "write it like 0.05: digits, at most one point, at most 18 decimals";
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    ensure_amount!(
        !(whole.is_empty() && frac.is_empty()) && digits(whole) && digits(frac),
        "{text:?} is not an amount of ETH: {HOW}"
    );
    ensure_amount!(
        frac.len() <= 18,
        "{text:?} is not an amount of ETH: it has {} decimals and ETH has 18 (1 wei is \
         0.000000000000000001 ETH)",
        frac.len()
    );
    let wei = format!("{whole}{frac:0<18}");
    let wei = wei.trim_start_matches('0');
    alloy::primitives::U256::from_str_radix(if wei.is_empty() { "0" } else { wei }, 10)
        .map_err(|_| AmountError(format!("{text:?} is not an amount of ETH: it is too large")))
}
