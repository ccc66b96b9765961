//! Which environment runs and subscriptions belong to.

use serde::{Deserialize, Serialize};

/// A run's environment decides which subscriptions hear of it; triggers
/// set it for the runs they make.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Environment {
    #[default]
    Production,
    Staging,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Staging => "staging",
        }
    }
}

impl TryFrom<String> for Environment {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "production" => Ok(Environment::Production),
            "staging" => Ok(Environment::Staging),
            _ => Err("environment must be production or staging".into()),
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_others() {
        let e: Environment = serde_json::from_str("\"staging\"").unwrap();
        assert_eq!(e, Environment::Staging);
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"staging\"");
        let err = serde_json::from_str::<Environment>("\"prod\"").unwrap_err();
        assert!(err.to_string().contains("production or staging"), "{err}");
    }
}
