//! hookrun core: the domain, the services, the ports with their adapters,
//! and the HTTP router shared by `hookrun serve` and the Lambda functions.
//! docs/ARCHITECTURE.md describes the layers and what each may import.
//!
//! Features: `sqlite` (the embedded store), `aws` (DynamoDB, SQS, Secrets
//! Manager), `lambda` (API Gateway and SQS glue), `schedules` (the cron
//! parser and the time-zone database: `hookrun` and the api function),
//! `test-support` (the port contract suites and the manual clock, for
//! tests only).

pub mod app;
#[cfg(feature = "aws")]
pub mod aws;
pub mod cache;
pub mod clock;
pub mod config;
#[cfg(feature = "test-support")]
pub mod contract;
pub mod error;
pub mod http;
pub mod ids;
pub mod json;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod live;
pub mod message;
pub mod model;
pub mod outbound;
pub mod ports;
pub mod providers;
pub mod repo;
pub mod runners;
pub mod scheduler;
pub mod seal;
pub mod services;
pub mod signature;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod state;
#[cfg(feature = "schedules")]
pub mod timing;
#[cfg(not(feature = "schedules"))]
#[path = "timing_unavailable.rs"]
pub mod timing;
pub mod work;
pub mod worker;

pub use app::App;
pub use config::Settings;
pub use error::{Error, StoreError};
