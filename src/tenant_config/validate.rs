//! Field checks that serde cannot express, and the narrowing rule for subtenants.

use super::{
    effective::Resolved, Branding, TenantConfig, MAX_CONFIGURATION_KEY, MAX_CONFIGURATION_KEYS,
    MAX_CONFIGURATION_VALUE, MAX_FEATURE_LIMIT, MAX_REQUESTS_PER_MONTH, MAX_STORAGE_MB,
};

/// A settings field that is wrong, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

const MAX_URL: usize = 2048;
const MAX_CSS: usize = 20_000;

impl TenantConfig {
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(b) = &self.branding {
            validate_branding(b)?;
        }
        if let Some(f) = &self.features {
            for (field, limit) in [
                ("features.maxAgents", f.max_agents),
                ("features.maxConcurrentCalls", f.max_concurrent_calls),
            ] {
                if limit.is_some_and(|n| n > MAX_FEATURE_LIMIT) {
                    return Err(err(field, "at most 1000000"));
                }
            }
            if f.max_storage_mb.is_some_and(|n| n > MAX_STORAGE_MB) {
                return Err(err("features.maxStorageMb", "at most 16777216"));
            }
            if f.max_requests_per_month
                .is_some_and(|n| n > MAX_REQUESTS_PER_MONTH)
            {
                return Err(err("features.maxRequestsPerMonth", "at most 4000000000"));
            }
            if let Some(list) = &f.integrations {
                if list.len() > 32 || list.iter().any(|s| s.is_empty() || s.chars().count() > 64) {
                    return Err(err(
                        "features.integrations",
                        "at most 32 names of 1 to 64 characters",
                    ));
                }
            }
        }
        if let Some(i) = &self.integrations {
            for (field, config) in [
                (
                    "integrations.crm.configuration",
                    i.crm.as_ref().map(|c| &c.configuration),
                ),
                (
                    "integrations.telephony.configuration",
                    i.telephony.as_ref().map(|c| &c.configuration),
                ),
            ] {
                if let Some(config) = config {
                    let fits = |(k, v): (&String, &serde_json::Value)| {
                        (1..=MAX_CONFIGURATION_KEY).contains(&k.chars().count())
                            && v.as_str()
                                .is_some_and(|s| s.chars().count() <= MAX_CONFIGURATION_VALUE)
                    };
                    if config.len() > MAX_CONFIGURATION_KEYS || !config.iter().all(fits) {
                        return Err(err(
                            field,
                            "at most 50 keys of 1 to 64 characters, each a string of at most 256",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn validate_branding(b: &Branding) -> Result<(), FieldError> {
    for (field, url) in [("branding.logo", &b.logo), ("branding.favicon", &b.favicon)] {
        if let Some(url) = url {
            if url.chars().count() > MAX_URL
                || !(url.starts_with("https://") || url.starts_with("http://"))
                || url.chars().any(char::is_control)
            {
                return Err(err(
                    field,
                    "must be an http(s) URL of at most 2048 characters",
                ));
            }
        }
    }
    for (field, color) in [
        ("branding.primaryColor", &b.primary_color),
        ("branding.secondaryColor", &b.secondary_color),
    ] {
        if let Some(c) = color {
            let ok =
                c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|x| x.is_ascii_hexdigit());
            if !ok {
                return Err(err(field, "must be a #rrggbb colour"));
            }
        }
    }
    if let Some(css) = &b.custom_css {
        if css.chars().count() > MAX_CSS || css.contains('\0') {
            return Err(err("branding.customCSS", "at most 20000 characters"));
        }
    }
    if let Some(domain) = &b.custom_domain {
        if !crate::domain::is_host_name(domain) {
            return Err(err(
                "branding.customDomain",
                "must be a lowercase host name",
            ));
        }
    }
    Ok(())
}

/// A subtenant's own settings may only narrow its parent's effective ones:
/// no feature the parent lacks, no limit above the parent's.
pub fn check_narrowing(child: &TenantConfig, parent: &Resolved) -> Result<(), FieldError> {
    let Some(f) = &child.features else {
        return Ok(());
    };
    // A subtenant lives in its root's database: usage, and so its quotas,
    // are the root's.
    for (field, set) in [
        ("features.maxStorageMb", f.max_storage_mb.is_some()),
        (
            "features.maxRequestsPerMonth",
            f.max_requests_per_month.is_some(),
        ),
    ] {
        if set {
            return Err(err(
                field,
                "a quota is the root tenant's: its database holds every subtenant's data",
            ));
        }
    }
    let flags = [
        ("features.voiceAgents", f.voice_agents, parent.voice_agents),
        ("features.chatAgents", f.chat_agents, parent.chat_agents),
        (
            "features.callRecording",
            f.call_recording,
            parent.call_recording,
        ),
        ("features.analytics", f.analytics, parent.analytics),
        (
            "features.customWorkflows",
            f.custom_workflows,
            parent.custom_workflows,
        ),
    ];
    for (field, child_value, parent_value) in flags {
        if child_value == Some(true) && !parent_value {
            return Err(err(field, "the parent tenant does not have this feature"));
        }
    }
    let limits = [
        ("features.maxAgents", f.max_agents, parent.max_agents),
        (
            "features.maxConcurrentCalls",
            f.max_concurrent_calls,
            parent.max_concurrent_calls,
        ),
    ];
    for (field, child_value, parent_value) in limits {
        if let Some(v) = child_value {
            if v > parent_value {
                return Err(err(
                    field,
                    format!("cannot exceed the parent's limit of {parent_value}"),
                ));
            }
        }
    }
    if let (Some(wanted), Some(allowed)) = (&f.integrations, &parent.integrations) {
        if let Some(extra) = wanted.iter().find(|w| !allowed.contains(w)) {
            return Err(err(
                "features.integrations",
                format!("the parent tenant does not allow `{extra}`"),
            ));
        }
    }
    Ok(())
}
