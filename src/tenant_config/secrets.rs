//! Integration credentials (`integrations.*.configuration`) are secrets: the
//! catalog stores them encrypted apart from the settings, and the API shows
//! each value as `REDACTED`. Sending `REDACTED` back keeps the stored value.

use serde_json::{Map, Value};

use super::TenantConfig;

/// What the API shows in place of a secret value.
pub const REDACTED: &str = "********";

/// Takes the secret values out of `config` (leaving `REDACTED` in their place)
/// and returns them as `{"crm": {...}, "telephony": {...}}`.
pub fn split_secrets(config: &mut TenantConfig) -> Value {
    let mut secrets = Map::new();
    if let Some(integrations) = config.integrations.as_mut() {
        if let Some(crm) = integrations.crm.as_mut() {
            secrets.insert("crm".into(), Value::Object(redact(&mut crm.configuration)));
        }
        if let Some(tel) = integrations.telephony.as_mut() {
            secrets.insert(
                "telephony".into(),
                Value::Object(redact(&mut tel.configuration)),
            );
        }
    }
    Value::Object(secrets)
}

fn redact(map: &mut Map<String, Value>) -> Map<String, Value> {
    let secrets = std::mem::take(map);
    for key in secrets.keys() {
        map.insert(key.clone(), Value::String(REDACTED.into()));
    }
    secrets
}

/// Where a new configuration still says `REDACTED`, puts back the stored secret.
pub fn merge_secrets(config: &mut TenantConfig, stored: &Value) {
    let Some(integrations) = config.integrations.as_mut() else {
        return;
    };
    let restore = |map: &mut Map<String, Value>, kind: &str| {
        for (key, value) in map.iter_mut() {
            if value.as_str() == Some(REDACTED) {
                if let Some(old) = stored.get(kind).and_then(|k| k.get(key)) {
                    *value = old.clone();
                }
            }
        }
    };
    if let Some(crm) = integrations.crm.as_mut() {
        restore(&mut crm.configuration, "crm");
    }
    if let Some(tel) = integrations.telephony.as_mut() {
        restore(&mut tel.configuration, "telephony");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_split_out_and_restored_when_sent_back_redacted() {
        let mut config = TenantConfig::parse(serde_json::json!({
            "integrations": {"crm": {"provider": "hubspot", "configuration": {"apiKey": "hk-123"}}}
        }))
        .unwrap();
        let secrets = split_secrets(&mut config);
        let public = serde_json::to_string(&config).unwrap();
        assert!(!public.contains("hk-123") && public.contains(REDACTED));
        let mut round_trip: TenantConfig = serde_json::from_str(&public).unwrap();
        merge_secrets(&mut round_trip, &secrets);
        assert_eq!(
            round_trip.integrations.unwrap().crm.unwrap().configuration["apiKey"],
            "hk-123"
        );
    }
}
