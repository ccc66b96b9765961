//! What an agent's models used: the token counts its runs recorded
//! (`Run::usage`), summed per day (UTC) and model.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::app::App;
use crate::error::Error;
use crate::ids::AgentId;
use crate::model::Agent;

/// How far back a report looks unless told.
pub const DEFAULT_DAYS: i64 = 30;
/// Runs read for one report at most (the newest first); a report that
/// stopped there says so (`truncated`).
pub const MAX_RUNS: usize = 10_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub agent_id: AgentId,
    /// Runs created at or after this time are counted.
    #[serde(with = "crate::clock::ts")]
    pub since: DateTime<Utc>,
    /// Per day (UTC) and model, oldest day first.
    pub days: Vec<DayUsage>,
    /// Runs read (with usage or not).
    pub runs_read: usize,
    /// True when more than `MAX_RUNS` (10,000) runs were created since:
    /// the days before the oldest run read are not counted.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayUsage {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub model: Option<String>,
    /// Runs that reported usage.
    pub runs: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// `since` as a time: RFC 3339 or a date (`YYYY-MM-DD`, midnight UTC);
/// absent, [`DEFAULT_DAYS`] before now.
pub fn parse_since(raw: Option<&str>, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let Some(raw) = raw.map(str::trim) else {
        return Ok(now - chrono::Duration::days(DEFAULT_DAYS));
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(Error::invalid(
        "since",
        "since must be an RFC 3339 time (2026-12-01T00:00:00Z) or a date (2026-12-01)",
    ))
}

/// The agent's usage since `since`.
pub async fn of_agent(
    app: &App,
    agent: &Agent,
    since: DateTime<Utc>,
) -> Result<UsageReport, Error> {
    let mut sums: BTreeMap<(String, Option<String>), DayUsage> = BTreeMap::new();
    let (mut runs_read, mut truncated) = (0, false);
    let mut cursor = None;
    'pages: loop {
        // Newest first: the first run older than `since` ends the report.
        let page = app
            .repo
            .runs_of_agent(&agent.id, None, 100, cursor, |_| true)
            .await?;
        for run in &page.data {
            if run.created_at < since {
                break 'pages;
            }
            if runs_read == MAX_RUNS {
                truncated = true;
                break 'pages;
            }
            runs_read += 1;
            let Some(usage) = &run.usage else { continue };
            let date = run.created_at.format("%Y-%m-%d").to_string();
            let day = sums
                .entry((date.clone(), usage.model.clone()))
                .or_insert_with(|| DayUsage {
                    date,
                    model: usage.model.clone(),
                    runs: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                });
            day.runs += 1;
            day.input_tokens += usage.input_tokens.unwrap_or(0);
            day.output_tokens += usage.output_tokens.unwrap_or(0);
        }
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    Ok(UsageReport {
        agent_id: agent.id.clone(),
        since,
        days: sums.into_values().collect(),
        runs_read,
        truncated,
    })
}
