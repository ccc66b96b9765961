//! A build without the `schedules` feature (the Lambda functions that
//! never parse a schedule: ingress, delivery, relay, realtime, executor):
//! the same interface, answering that schedules are left out.

use chrono::{DateTime, Utc};

use crate::error::Error;

/// When a schedule fires: never known in this build.
#[derive(Debug, Clone)]
pub struct When {
    _never: std::convert::Infallible,
}

impl When {
    pub fn parse(_cron: &str, _timezone: &str, _anchor: DateTime<Utc>) -> Result<When, Error> {
        Err(Error::Unavailable(
            "this build of hookrun leaves out schedules (cargo feature schedules)".into(),
        ))
    }

    pub fn timezone_name(&self) -> &'static str {
        match self._never {}
    }

    pub fn local(&self, _t: DateTime<Utc>) -> String {
        match self._never {}
    }

    pub fn eventbridge_expression(&self) -> Result<String, Error> {
        match self._never {}
    }

    pub fn next_after(&self, _t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self._never {}
    }

    pub fn latest_at_or_before(&self, _t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self._never {}
    }

    pub fn next_n(&self, _t: DateTime<Utc>, _n: usize) -> Vec<DateTime<Utc>> {
        match self._never {}
    }
}
