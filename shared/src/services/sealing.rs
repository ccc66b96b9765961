//! Sealing and opening stored secrets under this deployment's master key
//! (read through the secret port): the services' side of [`crate::seal`],
//! which holds the cipher and knows nothing of where keys come from.

use crate::app::App;
use crate::error::Error;
use crate::seal::{open, seal, MasterKey};

/// The master key versions of this deployment, current first.
pub async fn master_keys(app: &App) -> Result<Vec<MasterKey>, Error> {
    let values = app.secrets.master_keys().await?;
    if values.is_empty() {
        return Err(Error::Internal("no master key".into()));
    }
    Ok(values.iter().map(|v| MasterKey::from_secret(v)).collect())
}

pub async fn seal_with_current(app: &App, plaintext: &str) -> Result<String, Error> {
    let keys = master_keys(app).await?;
    Ok(seal(&keys[0], plaintext))
}

pub async fn open_sealed(app: &App, sealed: &str) -> Result<String, Error> {
    let keys = master_keys(app).await?;
    open(&keys, sealed).ok_or_else(|| {
        Error::Internal("a sealed secret does not open with any master key version".into())
    })
}

/// A signing secret and the one it replaced, opened: the current first,
/// then the previous while `previous_valid_until` is ahead of `now`.
pub async fn open_current_and_previous(
    app: &App,
    current: &str,
    previous: Option<&str>,
    previous_valid_until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<String>, Error> {
    let mut out = vec![open_sealed(app, current).await?];
    if let (Some(prev), Some(until)) = (previous, previous_valid_until) {
        if app.clock.now() < until {
            out.push(open_sealed(app, prev).await?);
        }
    }
    Ok(out)
}
