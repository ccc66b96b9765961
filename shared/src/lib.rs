//! hookrun core: the domain, the services, the ports with their embedded
//! adapters, and the HTTP router shared by `hookrun serve` and the Lambda
//! functions. See DESIGN.md for the architecture.

pub mod app;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod config;
pub mod contract;
pub mod error;
pub mod http;
pub mod ids;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod message;
pub mod model;
pub mod outbound;
pub mod ports;
pub mod providers;
pub mod runners;
pub mod seal;
pub mod services;
pub mod signature;
pub mod sqlite;
pub mod worker;

pub use app::App;
pub use config::Settings;
pub use error::{ApiError, StoreError};
