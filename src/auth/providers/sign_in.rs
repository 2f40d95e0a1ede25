//! The console's sign-in through a tenant's provider: the OpenID Connect
//! authorization code flow with PKCE, `state` and `nonce`, by the
//! `openidconnect` crate, over `Outbound`.
//!
//! Rules:
//! - what the callback must match (state, nonce, the PKCE verifier, the
//!   tenant, the redirect) is sealed into a short-lived cookie by the HTTP
//!   layer (`PendingSignIn`), so any replica can finish the flow.
//! - the ID token the provider answers is checked by `openidconnect`
//!   (signature, issuer, audience, expiry, nonce), then verified again as
//!   every request's token is (`IdentityProviders::verify`), and becomes
//!   the session's credential.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::IdentityProviders;
use crate::catalog::{client_secret_purpose, CatalogError, ProviderRow};
use crate::domain::TenantId;
use crate::error_code::ErrorCode;

/// How long a sign-in may take at the provider.
pub const PENDING_SECS: i64 = 600;

#[derive(Debug, thiserror::Error)]
// The error table test (`api/error/tests/identity.rs`) counts the variants.
#[cfg_attr(test, derive(strum::EnumCount))]
pub enum SignInError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("the tenant has no identity provider with a console client (client_id)")]
    NoClient,
    #[error("the sign-in does not match the one this browser started, or it expired")]
    Mismatch,
    #[error("the identity provider refused the sign-in: {0}")]
    Denied(String),
    #[error("the provider failed the sign-in: {0}")]
    Provider(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl SignInError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TenantNotFound => ErrorCode::TenantNotFound,
            Self::NoClient => ErrorCode::IdentityProviderNotFound,
            Self::Mismatch | Self::Denied(_) | Self::Provider(_) => ErrorCode::SignInFailed,
            Self::Catalog(_) => ErrorCode::CatalogUnavailable,
        }
    }
}

/// A sign-in begun: what its callback must match.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingSignIn {
    tenant: TenantId,
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
    expires_at: i64,
}

impl IdentityProviders {
    /// The service's address for browsers (`identity.public_url`), if set.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// Begins a sign-in to the tenant whose slug is `slug`: the provider's
    /// authorization URL to send the browser to, and what to keep.
    pub async fn start_sign_in(
        &self,
        slug: &str,
        redirect_uri: &str,
    ) -> Result<(String, PendingSignIn), SignInError> {
        let (tenant, row) = self.console_provider(slug).await?;
        let client = self.client(&row, redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingSignIn {
            tenant,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_string(),
            expires_at: chrono::Utc::now().timestamp() + PENDING_SECS,
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes `pending` with the callback's `state`, `code` and `iss`
    /// (when the provider sends it): the ID token, checked, for the session.
    pub async fn finish_sign_in(
        &self,
        pending: PendingSignIn,
        state: &str,
        code: &str,
        iss: Option<&str>,
    ) -> Result<String, SignInError> {
        let matches: bool = pending.state.as_bytes().ct_eq(state.as_bytes()).into();
        if !matches || pending.expires_at < chrono::Utc::now().timestamp() {
            return Err(SignInError::Mismatch);
        }
        let row = self
            .provider_for(pending.tenant)
            .await?
            .ok_or(SignInError::NoClient)?;
        // RFC 9207: an answer naming another issuer is not this provider's.
        if iss.is_some_and(|iss| iss != row.issuer) {
            return Err(SignInError::Mismatch);
        }
        let client = self.client(&row, &pending.redirect_uri).await?;
        let http = |request| self.outbound.send(request);
        let provider = |e: &dyn std::fmt::Display| SignInError::Provider(e.to_string());
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| provider(&e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&http)
            .await
            .map_err(|e| provider(&e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::Provider("the provider answered no ID token".into()))?;
        id_token
            .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
            .map_err(|e| provider(&e))?;
        Ok(id_token.to_string())
    }

    /// The provider a console sign-in to `slug` uses: the tenant's own, or
    /// its root's; it must have a console client.
    async fn console_provider(&self, slug: &str) -> Result<(TenantId, ProviderRow), SignInError> {
        let (tenant, _) = self
            .catalog
            .tenant_by_slug(slug)
            .await?
            .ok_or(SignInError::TenantNotFound)?;
        let row = self
            .provider_for(tenant)
            .await?
            .ok_or(SignInError::NoClient)?;
        Ok((tenant, row))
    }

    async fn provider_for(&self, tenant: TenantId) -> Result<Option<ProviderRow>, SignInError> {
        let own = self.catalog.identity_provider(tenant).await?;
        let row = match own {
            Some(own) => Some(own),
            None => match self
                .catalog
                .get_tenant(tenant)
                .await?
                .and_then(|t| t.parent_id)
            {
                Some(root) => self.catalog.identity_provider(root).await?,
                None => None,
            },
        };
        Ok(row.filter(|r| r.client_id.is_some()))
    }

    async fn client(
        &self,
        row: &ProviderRow,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SignInError,
    > {
        let provider = |e: &dyn std::fmt::Display| SignInError::Provider(e.to_string());
        let issuer = IssuerUrl::new(row.issuer.clone()).map_err(|e| provider(&e))?;
        let http = |request| self.outbound.send(request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| provider(&e))?;
        let secret = match &row.client_secret_enc {
            Some(sealed) => Some(ClientSecret::new(
                String::from_utf8(
                    self.master_key
                        .open(&client_secret_purpose(row.tenant_id), sealed)
                        .map_err(|e| provider(&e))?,
                )
                .map_err(|e| provider(&e))?,
            )),
            None => None,
        };
        let client_id = ClientId::new(row.client_id.clone().ok_or(SignInError::NoClient)?);
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| provider(&e))?;
        Ok(
            CoreClient::from_provider_metadata(metadata, client_id, secret)
                .set_redirect_uri(redirect),
        )
    }
}
