//! `GET /v1/events`: a Server-Sent Events stream of tenant and operation
//! state changes (operator token only), resumable with `Last-Event-ID`;
//! and `GET /v1/webhooks/deliveries`, the webhook delivery log.
//!
//! Rules:
//! - a stream lives no longer than its credential: it ends at the
//!   credential's `exp`, and its credential is checked again every
//!   `RECHECK` the way a request's is, so a revoked API key, a key gone from
//!   the JWKS or a signed-out console session ends it too.
//! - at most `http.max_event_streams` streams are open in a process; past
//!   that a new one gets 503 `too_many_streams` with `Retry-After`.
//! - streams take new events from the process's one feed (`events::feed`):
//!   one catalog read per wake-up, whatever the number of streams. A stream
//!   reads the catalog itself only for its start and for what it missed.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::api::http::event_stream::{self, last_event_id};
use crate::api::http::wire::{page, PageLimit, Sequence};
use crate::api::http::{ApiError, AppState};
use crate::auth::{Action, Principal, Resource};
use crate::events::{DeliveryRecord, EventRecord};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this event id (as `Last-Event-ID` does); without either,
    /// the stream starts with the next event.
    after: Option<Sequence>,
}

/// `GET /v1/events[?after=]`: `text/event-stream`; each event's `id` is its
/// number, its `event` its type (`tenant.created`, `operation.succeeded`, …)
/// and its `data` the event as JSON. A client that reconnects with
/// `Last-Event-ID` misses nothing still kept. The stream ends when its
/// credential expires or stops verifying.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,15}$", description = "Resume after this event id")), responses((status = 200, description = "Server-Sent Events. Each event is one frame: `id:` its number (resume after it with Last-Event-ID), `event:` its type, and `data:` one line of JSON, the EventRecord this schema describes. Lines that begin with `:` keep the stream alive; the first frame is `retry: 2000`.", content_type = "text/event-stream", body = EventRecord)))]
pub async fn stream(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: crate::api::http::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let after = last_event_id(&req)?.or(query.after);
    event_stream::open(state, req, &principal, after).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    state: Option<DeliveryState>,
    limit: Option<PageLimit>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Sequence>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    /// As the delivery log names it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryRecord>,
    pub next_cursor: Option<i64>,
}

/// `GET /v1/webhooks/deliveries?state=&limit=&cursor=`: every attempt's
/// outcome, newest first.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "events", params(DeliveriesQuery), responses((status = 200, description = "The webhook delivery log", body = DeliveryList)))]
pub async fn deliveries(
    principal: Principal,
    state: web::Data<AppState>,
    query: crate::api::http::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let limit = PageLimit::get(query.limit, 50);
    let wanted = query.state.map(DeliveryState::as_str);
    let before = query.cursor.map(|c| c.0);
    let log = &state.services().event_log;
    let rows = log.deliveries(wanted, before, limit + 1).await?;
    let (deliveries, next_cursor) = page(rows, limit, |d| d.id);
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries,
        next_cursor,
    }))
}
