use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::TenantPath;
use crate::api::http::wire::PageLimit;
use crate::api::http::AppState;
use crate::api::http::{ApiError, ErrorCode};
use crate::auth::{Action, Principal, Resource};
use crate::domain::{TenantId, TenantStatus};
use crate::tenants::{TenantFilter, TenantView};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<TenantStatus>,
    parent_id: Option<TenantId>,
    /// Tenants whose slug or name contains this (any case), or whose id it is.
    #[param(max_length = 100)]
    q: Option<String>,
    limit: Option<PageLimit>,
    cursor: Option<TenantId>,
}

impl ListQuery {
    /// The filter it asks for; a search over 100 characters is refused.
    fn into_filter(self) -> Result<TenantFilter, ApiError> {
        // Counted as sent, as the spec's maxLength counts.
        if self.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "q: at most 100 characters",
            ));
        }
        let search = self
            .q
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        Ok(TenantFilter {
            status: self.status,
            parent_id: self.parent_id,
            after: self.cursor,
            search,
            limit: PageLimit::get(self.limit, 50),
        })
    }
}

/// Whether `principal` may list tenants under `parent_id`: a fleet reader
/// any, a tenant_admin its own tenant's subtenants only.
fn may_list(principal: &Principal, parent_id: Option<TenantId>) -> Result<(), ApiError> {
    if principal.require(Resource::Tenants, Action::Read).is_err() {
        let own = own_tenant(principal);
        if own.is_none() || parent_id != own {
            principal.require(Resource::Tenants, Action::Read)?;
        }
    }
    Ok(())
}

/// The tenant a whole tenant_admin reads (`auth::reach::own_tenant`).
pub fn own_tenant(principal: &Principal) -> Option<TenantId> {
    crate::auth::reach::own_tenant(principal)
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::Forbidden,
        "the token does not allow this request",
    )
}

/// The tenant, if `principal` may read it (`auth::reach`). To anyone but a
/// fleet reader, a tenant that does not exist is as forbidden as another's.
pub async fn readable(
    principal: &Principal,
    state: &AppState,
    id: TenantId,
) -> Result<TenantView, ApiError> {
    use crate::auth::reach::{may_reach, Reach, Target};
    match state.tenants().show(id).await {
        Ok(view) => {
            let target = Target::Tenant {
                id: view.id,
                parent: view.parent_id,
            };
            may_reach(principal, target).map_err(|_| forbidden())?;
            Ok(view)
        }
        Err(e) => match may_reach(principal, Target::Tenant { id, parent: None }) {
            Ok(Reach::Fleet) => Err(e.into()),
            _ => Err(forbidden()),
        },
    }
}

/// `GET /v1/tenants?status=&parent_id=&q=&limit=&cursor=`
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery), responses((status = 200, description = "A page of tenants. A tenant_admin may list only its own tenant's subtenants (`parent_id`).", body = crate::tenants::TenantList)))]
pub async fn list(
    principal: Principal,
    state: web::Data<AppState>,
    query: crate::api::http::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    may_list(&principal, query.parent_id)?;
    let page = state.tenants().list(query.into_filter()?).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /v1/tenants/{id}`: the tenant with its effective configuration.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = uuid::Uuid, Path, description = "Tenant id")), responses((status = 200, description = "The tenant with its effective settings. A tenant_admin may read its own tenant and its subtenants.", body = crate::tenants::TenantView)))]
pub async fn show(
    principal: Principal,
    state: web::Data<AppState>,
    id: TenantPath,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(readable(&principal, &state, id.0).await?))
}
