//! A tenant's configuration: the seed's TenantBranding, TenantFeatures and
//! TenantIntegrations, typed and validated. Every field is optional, so a
//! subtenant stores only what it overrides; `effective` overlays the layers
//! (tier defaults, root tenant, subtenant) and `narrowing` checks that a
//! subtenant stays within its parent's limits.

mod effective;
mod secrets;
mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use effective::{effective, resolved, tier_defaults, Resolved};
pub use secrets::{merge_secrets, split_secrets, REDACTED};
pub use validate::{check_narrowing, FieldError};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Integrations>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Branding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub favicon: Option<String>,
    #[serde(default, rename = "customCSS", skip_serializing_if = "Option::is_none")]
    pub custom_css: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Features {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_agents: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_agents: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_recording: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analytics: Option<bool>,
    /// Integration providers the tenant may use; unset means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_agents: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_calls: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_workflows: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Integrations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<Integration<CrmProvider>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephony: Option<Integration<TelephonyProvider>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// A provider and its credentials. `configuration` values are secrets: the
/// catalog keeps them encrypted and the API returns them as `REDACTED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Integration<P> {
    pub provider: P,
    #[serde(default)]
    pub configuration: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrmProvider {
    Salesforce,
    Hubspot,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelephonyProvider {
    Twilio,
    Vonage,
    Custom,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Notifications {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<bool>,
}

impl TenantConfig {
    /// Parses and validates a settings document.
    pub fn parse(value: Value) -> Result<Self, FieldError> {
        let config: TenantConfig = serde_json::from_value(value).map_err(|e| FieldError {
            field: "settings".into(),
            reason: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Applies an RFC 7396 merge patch to this configuration.
    pub fn merge_patch(&self, patch: &Value) -> Result<Self, FieldError> {
        let mut doc = serde_json::to_value(self).expect("settings serialise");
        json_merge(&mut doc, patch);
        Self::parse(doc)
    }
}

/// RFC 7396 JSON merge patch: objects merge, `null` deletes, anything else replaces.
fn json_merge(target: &mut Value, patch: &Value) {
    if let Value::Object(patch) = patch {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let target = target.as_object_mut().expect("made an object above");
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                json_merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    } else {
        *target = patch.clone();
    }
}
