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

/// A tenant's settings. Every field is optional; what the server checks
/// beyond this schema is only a subtenant staying within its parent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<Branding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Integrations>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Branding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    pub secondary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub favicon: Option<String>,
    #[serde(default, rename = "customCSS", skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub custom_css: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 253,
        pattern = "^([a-z0-9][a-z0-9-]{0,62}[.])+[a-z][a-z0-9-]{0,62}$"
    )]
    pub custom_domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Option<Vec<IntegrationName>>, max_items = 32)]
    pub integrations: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::whole::opt_u32"
    )]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_agents: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::whole::opt_u32"
    )]
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_concurrent_calls: Option<u32>,
    /// Storage quota of the root tenant's database, in MiB: over it, writes
    /// get 429 `quota_exceeded` (a root tenant's setting only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::whole::opt_u32"
    )]
    #[schema(minimum = 0, maximum = 16_777_216)]
    pub max_storage_mb: Option<u32>,
    /// Requests (data and control plane) a calendar month (UTC): over it,
    /// writes get 429 `quota_exceeded` until the month ends (a root
    /// tenant's setting only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::domain::whole::opt_u32"
    )]
    #[schema(minimum = 0, maximum = 4_000_000_000_u64)]
    pub max_requests_per_month: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_workflows: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Integration<P> {
    pub provider: P,
    /// Up to 50 credentials; the server keeps any JSON value, the schema
    /// names the common case: short strings.
    #[serde(default)]
    #[schema(schema_with = configuration_schema)]
    pub configuration: Map<String, Value>,
}

/// An integration's credentials, as the schema states them: up to 50 keys
/// of at most 64 characters, each a string of at most 256. (The server
/// keeps any JSON value within 50 keys and 16 KiB, a superset.)
/// An integration's `configuration`: at most this many keys, of 1 to 64
/// characters, each naming a string of at most 256 characters.
pub const MAX_CONFIGURATION_KEYS: usize = 50;
pub const MAX_CONFIGURATION_KEY: usize = 64;
pub const MAX_CONFIGURATION_VALUE: usize = 256;
/// The most `features.maxAgents` and `features.maxConcurrentCalls` can be.
pub const MAX_FEATURE_LIMIT: u32 = 1_000_000;
/// The largest storage quota, in MiB (16 TiB).
pub const MAX_STORAGE_MB: u32 = 16_777_216;
/// The largest monthly request quota.
pub const MAX_REQUESTS_PER_MONTH: u32 = 4_000_000_000;

fn configuration_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_CONFIGURATION_KEYS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_CONFIGURATION_KEY)),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_CONFIGURATION_VALUE))
                .into(),
        )))
        .build()
}

/// An integration provider's name in `features.integrations`: 1 to 64
/// characters. Only the schema uses this type; the field holds strings.
pub struct IntegrationName;

impl utoipa::PartialSchema for IntegrationName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .into()
    }
}

impl utoipa::ToSchema for IntegrationName {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrmProvider {
    Salesforce,
    Hubspot,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TelephonyProvider {
    Twilio,
    Vonage,
    Custom,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
