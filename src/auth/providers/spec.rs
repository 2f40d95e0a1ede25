//! A tenant's identity provider as an operator sets it, and as it is shown.
//!
//! Rules:
//! - a mapping names one of the tenant roles; `super_admin` is not among
//!   the roles a provider can grant, so no body can ask for it.
//! - claim names, audiences and client ids are printable ASCII without
//!   spaces; a group is any text without control characters.

use serde::{Deserialize, Serialize};

use crate::auth::{Permission, Role};
use crate::domain::TenantId;

/// The roles a provider's mapping may grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MappedRole {
    TenantAdmin,
    SubtenantAdmin,
    Agent,
    Viewer,
}

impl From<MappedRole> for Role {
    fn from(role: MappedRole) -> Self {
        match role {
            MappedRole::TenantAdmin => Role::TenantAdmin,
            MappedRole::SubtenantAdmin => Role::SubtenantAdmin,
            MappedRole::Agent => Role::Agent,
            MappedRole::Viewer => Role::Viewer,
        }
    }
}

/// One rule: a user whose groups claim holds `group` gets `role` (and, when
/// set, is held to `subtenant_id` and narrowed to `permissions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A value of the provider's groups (or roles) claim.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub group: String,
    pub role: MappedRole,
    /// A subtenant of the tenant: the user is held to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub subtenant_id: Option<TenantId>,
    /// Narrows the role (never widens it), as an API key's do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 32)]
    pub permissions: Vec<Permission>,
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// `PUT /v1/tenants/{id}/identity-provider`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// The OpenID issuer (`iss` of its tokens). Its discovery document
    /// (`/.well-known/openid-configuration`) names its keys, unless
    /// `jwks_uri` is given.
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://[!-~]+$")]
    pub issuer: String,
    /// The provider's keys, when discovery is not to be used.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://[!-~]+$")]
    pub jwks_uri: Option<String>,
    /// The `aud` a token must name (the console's `client_id` is also accepted).
    #[schema(min_length = 1, max_length = 512, pattern = "^[!-~]+$")]
    pub audience: String,
    /// The claim that names the user; default `sub`.
    #[serde(default = "default_user_claim")]
    #[schema(
        min_length = 1,
        max_length = 256,
        default = "sub",
        pattern = "^[!-~]+$"
    )]
    pub user_claim: String,
    /// The claim that holds the user's groups or roles (a list or one
    /// string). A dotted path reaches into objects: `realm_access.roles`.
    /// Default `groups`.
    #[serde(default = "default_groups_claim")]
    #[schema(
        min_length = 1,
        max_length = 256,
        default = "groups",
        pattern = "^[!-~]+$"
    )]
    pub groups_claim: String,
    /// The first rule whose group the user has decides; a user matching
    /// none is refused (`no_role_mapped`).
    #[schema(max_items = 100)]
    pub mappings: Vec<Mapping>,
    /// A root's: whether its subtenants may set providers of their own.
    #[serde(default)]
    pub subtenants_may_override: bool,
    /// The console's client at the provider (authorization code flow with PKCE).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = "^[!-~]+$")]
    pub client_id: Option<String>,
    /// Its secret, for a confidential client. Never shown again; left out,
    /// the secret already set for the same `client_id` stays.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1024)]
    pub client_secret: Option<String>,
}

/// A tenant's provider, as `GET` shows it (the client secret never).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    /// The tenant whose provider this is.
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    /// Set when the tenant asked for has no provider of its own and uses
    /// its root's, this one.
    pub inherited: bool,
    pub issuer: String,
    pub jwks_uri: String,
    /// Whether `jwks_uri` came from the issuer's discovery document.
    pub discovered: bool,
    pub audience: String,
    pub user_claim: String,
    pub groups_claim: String,
    pub mappings: Vec<Mapping>,
    pub subtenants_may_override: bool,
    pub client_id: Option<String>,
    pub client_secret_set: bool,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Printable ASCII without spaces, 1 to `max` characters.
pub fn is_token_text(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len()) && value.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

impl ProviderInput {
    /// What serde and the spec cannot say; the first problem found.
    pub fn check(&self) -> Result<(), String> {
        for (name, value, max) in [
            ("audience", Some(&self.audience), 512),
            ("user_claim", Some(&self.user_claim), 256),
            ("groups_claim", Some(&self.groups_claim), 256),
            ("client_id", self.client_id.as_ref(), 256),
        ] {
            if let Some(value) = value {
                if !is_token_text(value, max) {
                    return Err(format!(
                        "{name} must be 1 to {max} printable ASCII characters without spaces"
                    ));
                }
            }
        }
        if self.client_secret.is_some() && self.client_id.is_none() {
            return Err("client_secret needs client_id".into());
        }
        if self.mappings.len() > 100 {
            return Err("at most 100 mappings".into());
        }
        for (i, m) in self.mappings.iter().enumerate() {
            if m.group.is_empty()
                || m.group.chars().count() > 256
                || m.group.chars().any(char::is_control)
            {
                return Err(format!(
                    "mappings[{i}].group must be 1 to 256 characters without control characters"
                ));
            }
        }
        Ok(())
    }
}
