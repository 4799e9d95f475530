//! Human output as Docker prints it: decimal sizes ("7.8MB"), relative times ("2 weeks ago"), and
//! borderless tables.

use comfy_table::{presets, Table};

pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, as Go's units.HumanSize prints them.
    let s = if v >= 100.0 || i == 0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

pub fn ago(secs_since_epoch: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let d = (now - secs_since_epoch).max(0);
    let (n, unit) = match d {
        0..=1 => return "Less than a second ago".into(),
        2..=59 => (d, "second"),
        60..=3599 => (d / 60, "minute"),
        3600..=86399 => (d / 3600, "hour"),
        86400..=1209599 => (d / 86400, "day"),
        1209600..=5183999 => (d / 604800, "week"),
        5184000..=63071999 => (d / 2592000, "month"),
        _ => (d / 31536000, "year"),
    };
    if n == 1 {
        let article = if unit == "hour" { "An" } else { "A" };
        format!("{article} {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// Seconds since the epoch of an RFC 3339 time ("2024-01-02T03:04:05.123Z", offsets allowed).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let mut t = days * 86400 + h * 3600 + mi * 60 + se;
    let tail = &s[19..];
    let tz = tail.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = tz.strip_prefix('+').or_else(|| tz.strip_prefix('-')) {
        let sign = if tz.starts_with('+') { -1 } else { 1 };
        let oh: i64 = off.get(0..2)?.parse().ok()?;
        let om: i64 = off.get(3..5).and_then(|x| x.parse().ok()).unwrap_or(0);
        t += sign * (oh * 3600 + om * 60);
    }
    Some(t)
}

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}

/// Print a table with Docker's spacing: columns left-aligned, three spaces apart.
pub fn print_table(t: &mut Table) {
    for col in t.column_iter_mut() {
        col.set_padding((0, 3));
    }
    for line in t.lines() {
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(size(0), "0B");
        assert_eq!(size(999), "999B");
        assert_eq!(size(4_261_000), "4.26MB");
        assert_eq!(size(77_800_000), "77.8MB");
        assert_eq!(size(1_000_000), "1MB");
        assert_eq!(size(123_456_789_012), "123GB");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("2023-11-14T22:13:20.5Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-15T00:13:20+02:00"), Some(1_700_000_000));
        assert_eq!(parse_time("junk"), None);
    }
}
