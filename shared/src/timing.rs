//! When a schedule fires: its expression (a five-field cron, an AWS
//! `cron(…)` or `rate(…)`) in its time zone, parsed by one parser for both
//! backends (`croner`, the time-zone database bundled by `chrono-tz`).
//!
//! Daylight saving follows EventBridge Scheduler's rule, so a schedule
//! fires at the same instants in `hookrun serve` and on AWS: a fire whose
//! wall-clock time falls in an hour the clock skips is skipped, and a fire
//! in an hour the clock repeats happens once (at its first pass).

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use crate::error::Error;

/// Fires searched at most for one answer (a pattern that matches rarely,
/// such as 29 February on a Monday, still answers within it).
const MAX_STEPS: usize = 1000;

/// A schedule's expression, parsed.
#[derive(Debug, Clone)]
enum Expression {
    Cron(Box<Cron>),
    /// Every this long, counted from the schedule's anchor.
    Rate(Duration),
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub struct When {
    expression: Expression,
    /// The expression as given (trimmed).
    source: String,
    tz: Tz,
    /// Where a `rate(…)` counts from (the schedule's creation, or the last
    /// change of its expression).
    anchor: DateTime<Utc>,
}

impl When {
    /// Parses `cron` in `timezone`; the error names the field at fault.
    pub fn parse(cron: &str, timezone: &str, anchor: DateTime<Utc>) -> Result<When, Error> {
        let tz = Tz::from_str(timezone.trim()).map_err(|_| {
            Error::invalid(
                "timezone",
                format!("timezone {timezone:?} is not an IANA time zone (Europe/Berlin, UTC, America/New_York)"),
            )
        })?;
        Ok(When {
            expression: expression(cron)?,
            source: cron.trim().to_owned(),
            tz,
            anchor,
        })
    }

    /// The time zone's canonical name.
    pub fn timezone_name(&self) -> &'static str {
        self.tz.name()
    }

    /// `t` in the zone, RFC 3339 with its offset.
    pub fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }

    /// The expression as EventBridge Scheduler takes it: `rate(…)` with
    /// its unit, an AWS `cron(…)` as given, a five-field one as an AWS
    /// `cron(…)` (weekdays from Sunday = 1, `?` for the unused day field).
    /// A five-field expression restricting both day-of-month and
    /// day-of-week (either matches, in cron) has no AWS form: the error
    /// names `cron`.
    pub fn eventbridge_expression(&self) -> Result<String, Error> {
        match &self.expression {
            Expression::Rate(every) => {
                let minutes = every.num_minutes();
                let (n, unit) = if minutes % (24 * 60) == 0 {
                    (minutes / (24 * 60), "day")
                } else if minutes % 60 == 0 {
                    (minutes / 60, "hour")
                } else {
                    (minutes, "minute")
                };
                Ok(format!("rate({n} {unit}{})", if n == 1 { "" } else { "s" }))
            }
            Expression::Cron(_) if self.source.starts_with("cron(") => Ok(self.source.clone()),
            Expression::Cron(_) => aws_form(&self.source)
                .map_err(|why| Error::invalid("cron", format!("cron {:?} {why}", self.source))),
        }
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expression {
            Expression::Rate(every) => {
                if t < self.anchor {
                    return Some(self.anchor);
                }
                let n = (t - self.anchor).num_seconds() / every.num_seconds() + 1;
                Some(self.anchor + *every * n as i32)
            }
            Expression::Cron(cron) => {
                let mut cursor = t.with_timezone(&self.tz);
                for _ in 0..MAX_STEPS {
                    let c = cron.find_next_occurrence(&cursor, false).ok()?;
                    if self.fires_at(cron, &c) {
                        return Some(c.with_timezone(&Utc));
                    }
                    cursor = c;
                }
                None
            }
        }
    }

    /// The last fire at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.expression {
            Expression::Rate(every) => {
                if t < self.anchor {
                    return None;
                }
                let n = (t - self.anchor).num_seconds() / every.num_seconds();
                Some(self.anchor + *every * n as i32)
            }
            Expression::Cron(cron) => {
                let mut cursor = t.with_timezone(&self.tz);
                let mut inclusive = true;
                for _ in 0..MAX_STEPS {
                    let c = cron.find_previous_occurrence(&cursor, inclusive).ok()?;
                    if self.fires_at(cron, &c) {
                        return Some(c.with_timezone(&Utc));
                    }
                    cursor = c;
                    inclusive = false;
                }
                None
            }
        }
    }

    /// The next `n` fires after `t`.
    pub fn next_n(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = t;
        while out.len() < n {
            match self.next_after(cursor) {
                Some(next) => {
                    out.push(next);
                    cursor = next;
                }
                None => break,
            }
        }
        out
    }

    /// Whether an occurrence croner found is a fire under the daylight
    /// saving rule: not moved out of a skipped hour (its wall time no
    /// longer matches), not the second pass of a repeated hour.
    fn fires_at(&self, cron: &Cron, c: &DateTime<Tz>) -> bool {
        if !cron.is_time_matching(c).unwrap_or(false) {
            return false;
        }
        match self.tz.from_local_datetime(&c.naive_local()) {
            LocalResult::Ambiguous(first, _) => first == *c,
            _ => true,
        }
    }
}

/// The expression of a schedule; errors name `cron`.
fn expression(raw: &str) -> Result<Expression, Error> {
    let raw = raw.trim();
    let invalid = |why: String| Error::invalid("cron", why);
    // The field's name leads every message, as the other fields' do.
    let named = |why: String| invalid(format!("cron {why}"));
    if let Some(inner) = raw.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return rate(inner).map(Expression::Rate).map_err(named);
    }
    if let Some(inner) = raw.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return aws_cron(inner).map_err(named);
    }
    if raw.split_whitespace().count() != 5 && !raw.starts_with('@') {
        return Err(invalid(format!(
            "cron {raw:?} must have five fields (minute hour day-of-month month day-of-week), \
             or be rate(5 minutes) or an AWS cron(…) with six"
        )));
    }
    parser(false)
        .parse(raw)
        .map(|c| Expression::Cron(Box::new(c)))
        .map_err(|e| invalid(format!("cron {raw:?} is not a cron expression: {e}")))
}

fn parser(aws_weekdays: bool) -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .alternative_weekdays(aws_weekdays)
        .build()
}

/// A five-field expression in EventBridge Scheduler's six-field form.
fn aws_form(source: &str) -> Result<String, String> {
    let expanded = match source.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *".to_owned(),
        "@monthly" => "0 0 1 * *".to_owned(),
        "@weekly" => "0 0 * * 0".to_owned(),
        "@daily" | "@midnight" => "0 0 * * *".to_owned(),
        "@hourly" => "0 * * * *".to_owned(),
        _ => source.to_owned(),
    };
    let f: Vec<&str> = expanded.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f.as_slice() else {
        return Err("has no EventBridge Scheduler form (five fields expected)".into());
    };
    let any = |x: &str| x == "*" || x == "?";
    let (dom, dow) = match (any(dom), any(dow)) {
        (_, true) => (dom.to_string(), "?".to_owned()),
        (true, false) => ("?".to_owned(), aws_weekdays(dow)?),
        (false, false) => {
            return Err(
                "restricts both the day of the month and the day of the week, which \
                 EventBridge Scheduler cannot express: keep one of them *"
                    .into(),
            )
        }
    };
    Ok(format!("cron({minute} {hour} {dom} {month} {dow} *)"))
}

/// A cron day-of-week field (0–7 from Sunday) counted from Sunday = 1.
fn aws_weekdays(field: &str) -> Result<String, String> {
    if field.contains('/') {
        return Err("steps in the day of the week have no EventBridge Scheduler form".into());
    }
    let shift = |token: &str| -> Result<String, String> {
        // A number leads the token (`5`, `5L`, `1#2`); names pass as they are.
        let digits: String = token.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Ok(token.to_owned());
        }
        let n: u32 = digits.parse().map_err(|_| format!("weekday {token:?}"))?;
        if n > 7 {
            return Err(format!("weekday {n} is none of 0-7"));
        }
        Ok(format!("{}{}", n % 7 + 1, &token[digits.len()..]))
    };
    field
        .split(',')
        .map(|item| {
            item.split('-')
                .map(shift)
                .collect::<Result<Vec<_>, _>>()
                .map(|parts| parts.join("-"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|items| items.join(","))
}

/// `rate(value unit)`: at least a minute.
fn rate(inner: &str) -> Result<Duration, String> {
    let mut parts = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "rate({inner}) must be rate(<number> <unit>), e.g. rate(5 minutes)"
        ));
    };
    let value: i64 = value
        .parse()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| format!("rate({inner}): the number must be a whole number from 1"))?;
    let unit = match unit.trim_end_matches('s') {
        "minute" => Duration::minutes(1),
        "hour" => Duration::hours(1),
        "day" => Duration::days(1),
        "second" => {
            return Err(format!(
                "rate({inner}) fires more often than once a minute: the shortest is rate(1 minute)"
            ))
        }
        other => {
            return Err(format!(
                "rate({inner}): unit {other:?} is none of minutes, hours, days"
            ))
        }
    };
    unit.checked_mul(value as i32)
        .filter(|d| *d <= Duration::days(3650))
        .ok_or_else(|| format!("rate({inner}) is longer than ten years"))
}

/// An AWS six-field `cron(minutes hours day-of-month month day-of-week
/// year)`: weekdays 1–7 from Sunday, `?` for "any"; the year must be `*`.
fn aws_cron(inner: &str) -> Result<Expression, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(format!(
            "cron({inner}) must have six fields (minutes hours day-of-month month day-of-week year)"
        ));
    }
    if fields[5] != "*" {
        return Err(format!(
            "cron({inner}): a year other than * is not supported (give it as *)"
        ));
    }
    let five: Vec<String> = fields[..5].iter().map(|f| f.replace('?', "*")).collect();
    parser(true)
        .parse(&five.join(" "))
        .map(|c| Expression::Cron(Box::new(c)))
        .map_err(|e| format!("cron({inner}) is not a cron expression: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn when(cron: &str, tz: &str) -> When {
        When::parse(cron, tz, at("2026-01-01T00:00:00Z")).unwrap()
    }

    #[test]
    fn weekday_mornings_in_berlin() {
        let w = when("0 9 * * MON-FRI", "Europe/Berlin");
        // Friday 2026-12-04 10:00 Berlin: next is Monday 09:00 (08:00 UTC).
        let next = w.next_after(at("2026-12-04T09:00:00Z")).unwrap();
        assert_eq!(next, at("2026-12-07T08:00:00Z"));
        // In summer Berlin is UTC+2.
        let next = w.next_after(at("2026-07-01T12:00:00Z")).unwrap();
        assert_eq!(next, at("2026-07-02T07:00:00Z"));
        assert_eq!(
            w.latest_at_or_before(at("2026-12-07T08:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(w.next_n(at("2026-12-04T09:00:00Z"), 5).len(), 5);
    }

    #[test]
    fn extended_fields_and_aws_forms_parse() {
        // Last day of the month, the last Friday, the nearest weekday.
        let last = when("0 12 L * *", "UTC");
        assert_eq!(
            last.next_after(at("2026-02-01T00:00:00Z")),
            Some(at("2026-02-28T12:00:00Z"))
        );
        let nth = when("0 12 * * FRI#2", "UTC");
        assert_eq!(
            nth.next_after(at("2026-12-01T00:00:00Z")),
            Some(at("2026-12-11T12:00:00Z"))
        );
        // AWS: weekdays count from Sunday = 1, so 2-6 is Monday-Friday.
        let aws = when("cron(0 9 ? * 2-6 *)", "UTC");
        assert_eq!(
            aws.next_after(at("2026-12-05T00:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        let rate = When::parse("rate(5 minutes)", "UTC", at("2026-12-07T10:00:00Z")).unwrap();
        assert_eq!(
            rate.next_after(at("2026-12-07T10:07:00Z")),
            Some(at("2026-12-07T10:10:00Z"))
        );
        assert_eq!(
            rate.latest_at_or_before(at("2026-12-07T10:07:00Z")),
            Some(at("2026-12-07T10:05:00Z"))
        );
    }

    #[test]
    fn expressions_have_their_eventbridge_form() {
        let form = |cron: &str| when(cron, "UTC").eventbridge_expression();
        assert_eq!(form("0 9 * * MON-FRI").unwrap(), "cron(0 9 ? * MON-FRI *)");
        assert_eq!(form("0 9 * * 1-5").unwrap(), "cron(0 9 ? * 2-6 *)");
        assert_eq!(form("0 9 * * 0,7").unwrap(), "cron(0 9 ? * 1,1 *)");
        assert_eq!(form("0 12 * * 5L").unwrap(), "cron(0 12 ? * 6L *)");
        assert_eq!(form("0 12 * * 1#2").unwrap(), "cron(0 12 ? * 2#2 *)");
        assert_eq!(form("*/15 8-18 L * *").unwrap(), "cron(*/15 8-18 L * ? *)");
        assert_eq!(form("@daily").unwrap(), "cron(0 0 * * ? *)");
        assert_eq!(form("cron(0 9 ? * 2-6 *)").unwrap(), "cron(0 9 ? * 2-6 *)");
        assert_eq!(form("rate(1 minute)").unwrap(), "rate(1 minute)");
        assert_eq!(form("rate(90 minutes)").unwrap(), "rate(90 minutes)");
        assert_eq!(form("rate(120 minutes)").unwrap(), "rate(2 hours)");
        assert_eq!(form("rate(1 day)").unwrap(), "rate(1 day)");
        let e = form("0 9 1 * MON").unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "cron")
                && e.to_string().contains("both"),
            "{e}"
        );
        // The AWS form fires at the same times (checked by parsing it back).
        for cron in ["0 9 * * 1-5", "30 6 * * 0", "0 12 * * 5L", "0 0 1 * *"] {
            let ours = when(cron, "Europe/Berlin");
            let aws = when(&ours.eventbridge_expression().unwrap(), "Europe/Berlin");
            let from = at("2026-12-01T00:00:00Z");
            assert_eq!(ours.next_n(from, 10), aws.next_n(from, 10), "{cron}");
        }
    }

    #[test]
    fn bad_expressions_and_zones_name_their_field() {
        for (cron, says) in [
            ("* * * *", "five fields"),
            ("0 0 9 * * *", "five fields"),
            ("61 * * * *", "not a cron expression"),
            ("rate(30 seconds)", "more often than once a minute"),
            ("rate(0 minutes)", "whole number"),
            ("rate(5 weeks)", "none of minutes"),
            ("cron(0 9 * * ? 2027)", "year other than *"),
            ("cron(0 9 * *)", "six fields"),
        ] {
            let e = When::parse(cron, "UTC", Utc::now()).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field, .. } if field == "cron"),
                "{cron}: {e:?}"
            );
            assert!(e.to_string().contains(says), "{cron}: {e}");
        }
        let e = When::parse("0 9 * * *", "Mars/Olympus", Utc::now()).unwrap_err();
        assert!(matches!(&e, Error::Invalid { field, .. } if field == "timezone"));
    }

    #[test]
    fn a_skipped_hour_skips_its_fire_and_a_repeated_hour_fires_once() {
        // Berlin: 2026-03-29 02:00 → 03:00 (skipped), 2026-10-25 03:00 →
        // 02:00 (02:00–03:00 twice).
        let daily = when("30 2 * * *", "Europe/Berlin");
        // 28 March 02:30 CET = 01:30 UTC; 29 March has no 02:30: the next
        // fire is 30 March 02:30 CEST = 00:30 UTC.
        assert_eq!(
            daily.next_after(at("2026-03-28T01:30:00Z")),
            Some(at("2026-03-30T00:30:00Z"))
        );
        // 25 October 02:30 happens twice: the fire is the first (CEST,
        // 00:30 UTC), and the next one is a day later.
        assert_eq!(
            daily.next_after(at("2026-10-24T12:00:00Z")),
            Some(at("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-10-25T00:30:00Z")),
            Some(at("2026-10-26T01:30:00Z"))
        );
        // Every 30 minutes: the repeated hour's :00 and :30 fire once each.
        let half = when("*/30 * * * *", "Europe/Berlin");
        let fires = half.next_n(at("2026-10-24T23:45:00Z"), 5);
        assert_eq!(
            fires,
            [
                at("2026-10-25T00:00:00Z"), // 02:00 CEST
                at("2026-10-25T00:30:00Z"), // 02:30 CEST
                at("2026-10-25T02:00:00Z"), // 03:00 CET (02:00, 02:30 CET skipped)
                at("2026-10-25T02:30:00Z"),
                at("2026-10-25T03:00:00Z"),
            ]
        );
        // Backwards the same rule holds.
        assert_eq!(
            daily.latest_at_or_before(at("2026-03-29T12:00:00Z")),
            Some(at("2026-03-28T01:30:00Z"))
        );
    }
}
