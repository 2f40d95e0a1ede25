//! The machinery of a Server-Sent Events stream of the event feed
//! (`GET /v1/events`): the `Last-Event-ID` header, the cap on open streams,
//! and a `Follower` that turns the feed into frames.
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
use tokio::sync::{broadcast, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::api::http::wire::Sequence;
use crate::api::http::{ApiError, AppState, ErrorCode};
use crate::auth::{Action, AuthError, Principal, Resource};
use crate::events::{Batch, EventFeed, EventRecord};

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

/// The `Last-Event-ID` header, if any: digits only, as the spec's pattern
/// says (a header is text); anything else is 400 `invalid_last_event_id`.
pub fn last_event_id(req: &HttpRequest) -> Result<Option<Sequence>, ApiError> {
    req.headers()
        .get("last-event-id")
        .map(|v| {
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
        .transpose()
}

/// The response for a stream of `principal`'s request, starting after
/// event `after` (or with the next event): refused with 503 while
/// `http.max_event_streams` are open.
pub async fn open(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: &Principal,
    after: Option<Sequence>,
) -> Result<HttpResponse, ApiError> {
    let follower = Follower::start(state, req, principal, after).await?;
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
    /// A stream's start: it takes one of the open-stream permits, and
    /// subscribes to the feed before its first read, so nothing falls in
    /// between.
    async fn start(
        state: web::Data<AppState>,
        req: HttpRequest,
        principal: &Principal,
        after: Option<Sequence>,
    ) -> Result<Self, ApiError> {
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
        let batches = feed.subscribe();
        let (last, behind) = match after {
            Some(after) => (after.0, true),
            None => (state.services().event_log.latest_id().await?, false),
        };
        let now = Instant::now();
        Ok(Self {
            state,
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
        })
    }

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
