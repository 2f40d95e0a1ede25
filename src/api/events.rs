//! `GET /v1/events`: a Server-Sent Events stream of tenant and operation
//! state changes (operator token only), resumable with `Last-Event-ID`;
//! and `GET /v1/webhooks/deliveries`, the webhook delivery log.

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{resource, ApiError, AppState};
use crate::api::wire::{PageLimit, Sequence};
use crate::auth::{Action, Principal, Resource};
use crate::catalog::{Catalog, DeliveryRecord, EventRecord};

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read from the catalog at once.
const BATCH: i64 = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/events").route(web::get().to(stream)))
        .service(resource("/v1/webhooks/deliveries").route(web::get().to(deliveries)));
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this event id (as `Last-Event-ID` does); without either,
    /// the stream starts with the next event.
    after: Option<Sequence>,
}

/// Where a stream stands.
struct Follower {
    catalog: Catalog,
    wake: broadcast::Receiver<i64>,
    last: i64,
    pending: VecDeque<EventRecord>,
}

fn frame(event: &EventRecord) -> Bytes {
    let data = serde_json::to_string(event).expect("events serialise");
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.id, event.kind
    ))
}

/// `GET /v1/events[?after=]`: `text/event-stream`; each event's `id` is its
/// number, its `event` its type (`tenant.created`, `operation.succeeded`, …)
/// and its `data` the event as JSON. A client that reconnects with
/// `Last-Event-ID` misses nothing still kept.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{1,15}$", description = "Resume after this event id")), responses((status = 200, description = "The event stream", content_type = "text/event-stream", body = String), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn stream(
    principal: Principal,
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let header = req
        .headers()
        .get("last-event-id")
        .map(|v| {
            // Digits only, as the spec's pattern says (a header is text).
            v.to_str()
                .ok()
                .filter(|s| (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(Sequence::parse)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be an event id (up to 15 digits)",
                    )
                })
        })
        .transpose()?;
    // Subscribed before the first read, so nothing falls in between.
    let wake = state.events().subscribe();
    let last = match header.or(query.after) {
        Some(after) => after.0,
        None => state.catalog().latest_event_id().await?,
    };
    let follower = Follower {
        catalog: state.catalog().clone(),
        wake,
        last,
        pending: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(follower, |mut f| async move {
        loop {
            if let Some(event) = f.pending.pop_front() {
                f.last = event.id;
                return Some((Ok::<_, actix_web::Error>(frame(&event)), f));
            }
            match f.catalog.events_after(f.last, BATCH).await {
                Ok(events) if !events.is_empty() => {
                    f.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream cannot read the catalog; it waits")
                }
            }
            tokio::select! {
                woke = f.wake.recv() => match woke {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), f));
                }
            }
        }
    });
    let hello = futures_util::stream::once(async { Ok(Bytes::from_static(b"retry: 2000\n\n")) });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::StreamExt::chain(hello, events)))
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryRecord>,
    pub next_cursor: Option<i64>,
}

/// `GET /v1/webhooks/deliveries?state=&limit=&cursor=`: every attempt's
/// outcome, newest first.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "events", params(DeliveriesQuery), responses((status = 200, description = "The webhook delivery log", body = DeliveryList), (status = "4XX", description = "Refused; the error envelope names why", body = crate::api::ErrorEnvelope), (status = "5XX", description = "Unavailable or failed; the envelope tells nothing internal", body = crate::api::ErrorEnvelope)), security(("bearer" = [])))]
pub async fn deliveries(
    principal: Principal,
    state: web::Data<AppState>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Resource::Tenants, Action::Read)?;
    let query = query.into_inner();
    let limit = PageLimit::get(query.limit, 50);
    let wanted = query.state.map(|s| match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Failed => "failed",
    });
    let before = query.cursor.map(|c| c.0);
    let mut rows = state
        .catalog()
        .list_deliveries(wanted, before, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|d| d.id)).flatten();
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: rows,
        next_cursor,
    }))
}
