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

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::api::http::wire::{PageLimit, Sequence};
use crate::api::{ApiError, AppState, ErrorCode};
use crate::auth::{Action, AuthError, Principal, Resource};
use crate::events::{Batch, DeliveryRecord, EventFeed, EventRecord};

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream's credential is checked again.
const RECHECK: Duration = Duration::from_secs(5);
/// How long a stream goes on while its credential cannot be checked.
const UNCHECKED_AT_MOST: Duration = Duration::from_secs(30);
/// What a client refused for too many streams is told to wait, in seconds.
const STREAMS_RETRY_AFTER_SECS: u64 = 5;
/// The longest a stream's end is put off (a credential without expiry).
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

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
    state: web::Data<AppState>,
    feed: EventFeed,
    batches: broadcast::Receiver<std::sync::Arc<Batch>>,
    last: i64,
    pending: VecDeque<EventRecord>,
    /// It missed events (or just started) and reads them from the catalog.
    behind: bool,
    /// The request, to check its credential again as it was first checked.
    req: HttpRequest,
    ends_at: Instant,
    recheck_at: Instant,
    /// Since when the credential could not be checked (the catalog busy or
    /// down); past `UNCHECKED_AT_MOST` the stream ends rather than trust it.
    unchecked_since: Option<Instant>,
    keep_alive_at: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Follower {
    /// The next frame, or None when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            let now = Instant::now();
            if now >= self.ends_at {
                return None;
            }
            if now >= self.recheck_at {
                if !self.still_allowed().await {
                    return None;
                }
                self.recheck_at = now + RECHECK;
            }
            if let Some(event) = self.pending.pop_front() {
                self.last = event.id;
                self.keep_alive_at = Instant::now() + KEEP_ALIVE;
                return Some(frame(&event));
            }
            if self.behind {
                let log = &self.state.services().event_log;
                match log.read_after(&self.feed, self.last).await {
                    Ok(events) if events.is_empty() => self.behind = false,
                    Ok(events) => {
                        self.pending.extend(events);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "an event stream cannot read the catalog; it waits")
                    }
                }
            }
            let wait_until = self.ends_at.min(self.recheck_at);
            tokio::select! {
                batch = self.batches.recv() => match batch {
                    Ok(batch) if batch.after > self.last => self.behind = true,
                    Ok(batch) => self
                        .pending
                        .extend(batch.events.iter().filter(|e| e.id > self.last).cloned()),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.behind = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(wait_until) => {}
                _ = tokio::time::sleep_until(self.keep_alive_at) => {
                    self.keep_alive_at = Instant::now() + KEEP_ALIVE;
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }

    /// Whether the stream's credential still verifies and still reads
    /// tenants. A catalog that cannot answer right now does not end it at
    /// once, but it does after `UNCHECKED_AT_MOST` of not answering.
    async fn still_allowed(&mut self) -> bool {
        match crate::api::http::principal::authenticate(&self.req).await {
            Ok(principal) => {
                self.unchecked_since = None;
                principal.require(Resource::Tenants, Action::Read).is_ok()
            }
            Err(AuthError::Lookup(_) | AuthError::Busy) => {
                let since = *self.unchecked_since.get_or_insert_with(Instant::now);
                since.elapsed() < UNCHECKED_AT_MOST
            }
            Err(_) => false,
        }
    }
}

fn frame(event: &EventRecord) -> Bytes {
    let data = serde_json::to_string(event).expect("events serialise");
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.id, event.kind
    ))
}

/// When a credential that expires at `exp` (seconds since the epoch) ends a stream.
fn ends_at(exp: i64) -> Instant {
    let left = exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
    Instant::now() + Duration::from_secs(left as u64).min(FOREVER)
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
                        ErrorCode::InvalidLastEventId,
                        "Last-Event-ID must be an event id (up to 15 digits)",
                    )
                })
        })
        .transpose()?;
    let permit = state
        .event_streams()
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyStreams,
                "too many event streams are open; retry later",
            )
            .with_retry_after(STREAMS_RETRY_AFTER_SECS)
        })?;
    let feed = state.events().feed().clone();
    // Subscribed before the first read, so nothing falls in between.
    let batches = feed.subscribe();
    let (last, behind) = match header.or(query.after) {
        Some(after) => (after.0, true),
        None => (state.services().event_log.latest_id().await?, false),
    };
    let now = Instant::now();
    let follower = Follower {
        state: state.clone(),
        feed,
        batches,
        last,
        pending: VecDeque::new(),
        behind,
        req,
        ends_at: ends_at(principal.expires_at()),
        recheck_at: now + RECHECK,
        unchecked_since: None,
        keep_alive_at: now + KEEP_ALIVE,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(follower, |mut f| async move {
        let frame = f.next().await?;
        Some((Ok::<_, actix_web::Error>(frame), f))
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
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "events", params(DeliveriesQuery), responses((status = 200, description = "The webhook delivery log", body = DeliveryList)))]
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
    let log = &state.services().event_log;
    let mut rows = log.deliveries(wanted, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|d| d.id)).flatten();
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: rows,
        next_cursor,
    }))
}
