//! Layering: tier defaults, then the root tenant's settings, then the
//! subtenant's. Limits take the minimum and flags the conjunction, so a
//! subtenant can never end up wider than its parent even if the parent
//! narrows later.

use super::{Branding, Features, Integrations, TenantConfig};
use crate::domain::Tier;

/// Fully resolved features: every limit and flag has a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub voice_agents: bool,
    pub chat_agents: bool,
    pub call_recording: bool,
    pub analytics: bool,
    pub integrations: Option<Vec<String>>,
    pub max_agents: u32,
    pub max_concurrent_calls: u32,
    pub custom_workflows: bool,
    /// Quotas of a root tenant's database (`usage`).
    pub max_storage_mb: u32,
    pub max_requests_per_month: u32,
}

impl Resolved {
    fn to_features(&self) -> Features {
        Features {
            voice_agents: Some(self.voice_agents),
            chat_agents: Some(self.chat_agents),
            call_recording: Some(self.call_recording),
            analytics: Some(self.analytics),
            integrations: self.integrations.clone(),
            max_agents: Some(self.max_agents),
            max_concurrent_calls: Some(self.max_concurrent_calls),
            custom_workflows: Some(self.custom_workflows),
            max_storage_mb: Some(self.max_storage_mb),
            max_requests_per_month: Some(self.max_requests_per_month),
        }
    }

    /// Narrows `self` by a layer's features.
    fn narrow(&self, f: Option<&Features>) -> Resolved {
        let Some(f) = f else { return self.clone() };
        let flag = |base: bool, over: Option<bool>| base && over.unwrap_or(true);
        let limit = |base: u32, over: Option<u32>| over.map_or(base, |v| v.min(base));
        Resolved {
            voice_agents: flag(self.voice_agents, f.voice_agents),
            chat_agents: flag(self.chat_agents, f.chat_agents),
            call_recording: flag(self.call_recording, f.call_recording),
            analytics: flag(self.analytics, f.analytics),
            integrations: match (&self.integrations, &f.integrations) {
                (None, over) => over.clone(),
                (Some(base), None) => Some(base.clone()),
                (Some(base), Some(over)) => {
                    Some(over.iter().filter(|o| base.contains(o)).cloned().collect())
                }
            },
            max_agents: limit(self.max_agents, f.max_agents),
            max_concurrent_calls: limit(self.max_concurrent_calls, f.max_concurrent_calls),
            custom_workflows: flag(self.custom_workflows, f.custom_workflows),
            max_storage_mb: limit(self.max_storage_mb, f.max_storage_mb),
            max_requests_per_month: limit(self.max_requests_per_month, f.max_requests_per_month),
        }
    }
}

/// What a tier allows before any tenant setting narrows it.
pub fn tier_defaults(tier: Tier) -> Resolved {
    match tier {
        Tier::Free => Resolved {
            voice_agents: false,
            chat_agents: true,
            call_recording: false,
            analytics: false,
            integrations: None,
            max_agents: 2,
            max_concurrent_calls: 1,
            custom_workflows: false,
            max_storage_mb: 512,
            max_requests_per_month: 100_000,
        },
        Tier::Standard => Resolved {
            voice_agents: true,
            chat_agents: true,
            call_recording: true,
            analytics: true,
            integrations: None,
            max_agents: 25,
            max_concurrent_calls: 10,
            custom_workflows: false,
            max_storage_mb: 20 * 1024,
            max_requests_per_month: 10_000_000,
        },
        Tier::Enterprise => Resolved {
            voice_agents: true,
            chat_agents: true,
            call_recording: true,
            analytics: true,
            integrations: None,
            max_agents: 1000,
            max_concurrent_calls: 500,
            custom_workflows: true,
            max_storage_mb: 1024 * 1024,
            max_requests_per_month: 4_000_000_000,
        },
    }
}

/// The resolved features of a root tenant (`child` = None) or a subtenant.
pub fn resolved(tier: Tier, root: &TenantConfig, child: Option<&TenantConfig>) -> Resolved {
    let base = tier_defaults(tier).narrow(root.features.as_ref());
    match child {
        Some(c) => base.narrow(c.features.as_ref()),
        None => base,
    }
}

/// The configuration a tenant runs with: every feature resolved, branding and
/// integrations taken field by field from the nearest layer that sets them.
pub fn effective(tier: Tier, root: &TenantConfig, child: Option<&TenantConfig>) -> TenantConfig {
    let features = resolved(tier, root, child).to_features();
    let (branding, integrations) = match child {
        None => (root.branding.clone(), root.integrations.clone()),
        Some(c) => (
            overlay_branding(root.branding.as_ref(), c.branding.as_ref()),
            overlay_integrations(root.integrations.as_ref(), c.integrations.as_ref()),
        ),
    };
    TenantConfig {
        branding,
        features: Some(features),
        integrations,
    }
}

fn overlay_branding(base: Option<&Branding>, over: Option<&Branding>) -> Option<Branding> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(Branding {
            logo: o.logo.clone().or_else(|| b.logo.clone()),
            primary_color: o.primary_color.clone().or_else(|| b.primary_color.clone()),
            secondary_color: o
                .secondary_color
                .clone()
                .or_else(|| b.secondary_color.clone()),
            favicon: o.favicon.clone().or_else(|| b.favicon.clone()),
            custom_css: o.custom_css.clone().or_else(|| b.custom_css.clone()),
            custom_domain: o.custom_domain.clone().or_else(|| b.custom_domain.clone()),
        }),
    }
}

fn overlay_integrations(
    base: Option<&Integrations>,
    over: Option<&Integrations>,
) -> Option<Integrations> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(Integrations {
            crm: o.crm.clone().or_else(|| b.crm.clone()),
            telephony: o.telephony.clone().or_else(|| b.telephony.clone()),
            notifications: o.notifications.clone().or_else(|| b.notifications.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant_config::check_narrowing;

    fn config(json: serde_json::Value) -> TenantConfig {
        TenantConfig::parse(json).unwrap()
    }

    #[test]
    fn a_subtenant_inherits_its_parents_branding_and_overrides_what_it_sets() {
        let root = config(
            serde_json::json!({"branding": {"primaryColor": "#112233", "logo": "https://x/l.png"}}),
        );
        let child = config(serde_json::json!({"branding": {"primaryColor": "#445566"}}));
        let eff = effective(Tier::Standard, &root, Some(&child));
        let b = eff.branding.unwrap();
        assert_eq!(b.primary_color.as_deref(), Some("#445566"));
        assert_eq!(b.logo.as_deref(), Some("https://x/l.png"));
    }

    #[test]
    fn limits_narrow_and_never_widen() {
        let root = config(serde_json::json!({"features": {"maxAgents": 10, "voiceAgents": false}}));
        let parent = resolved(Tier::Standard, &root, None);
        assert_eq!(parent.max_agents, 10);
        let narrower = config(serde_json::json!({"features": {"maxAgents": 4}}));
        assert!(check_narrowing(&narrower, &parent).is_ok());
        let wider = config(serde_json::json!({"features": {"maxAgents": 11}}));
        assert_eq!(
            check_narrowing(&wider, &parent).unwrap_err().field,
            "features.maxAgents"
        );
        let voice = config(serde_json::json!({"features": {"voiceAgents": true}}));
        assert_eq!(
            check_narrowing(&voice, &parent).unwrap_err().field,
            "features.voiceAgents"
        );
        // Even a stored wider value resolves to the parent's limit.
        assert_eq!(resolved(Tier::Standard, &root, Some(&wider)).max_agents, 10);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_by_name() {
        for bad in [
            serde_json::json!({"colour": 1}),
            serde_json::json!({"features": {"maxAgents": "ten"}}),
            serde_json::json!({"features": {"maxAgents": -1}}),
            serde_json::json!({"branding": {"primaryColor": "red"}}),
            serde_json::json!({"integrations": {"crm": {"provider": "oracle"}}}),
        ] {
            assert!(TenantConfig::parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
