//! One RPC through the mesh: ask the core for a pick, send attempts on subchannels, report
//! what happened, and follow the core's answers (queued picks, retries, its end).
//!
//! The RPC's task talks to the core directly under the mesh lock (no hop through the driver
//! task). What the core decides later about this call (a queued pick resolved, a retry after
//! backoff, the deadline) arrives as [`Signal`]s in the call's [`CallCell`].

use std::collections::VecDeque;
use std::error::Error as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use http::header::{HeaderName, HeaderValue, TE};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, Version};
use http_body::Body;
use hyper::client::conn::http2::SendRequest;
use skiff_core::ids::{CallId, SubchannelId};
use skiff_core::mesh::CallRequest;
use skiff_core::plane::{CallError, CallOutcome, FailureSource, Route};
use skiff_core::time::Instant;

use super::body::{AttemptBody, RequestBody, ResponseBody};
use super::channel::{ChannelInner, ReportServedBy, WaitForReady};
use super::headers::HeaderMapSource;
use super::{BoxError, Shared};
use crate::grpc::{self, code};

pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// A connection the RPC can use: the subchannel's HTTP/2 sender, and which connection it is.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub(crate) send: SendRequest<AttemptBody>,
    pub(crate) subchannel: SubchannelId,
    pub(crate) epoch: u64,
    pub(crate) tls: bool,
}

/// What to do next, with the connection resolved.
#[derive(Debug)]
pub(crate) enum Next {
    Send(Route, Option<Conn>),
    Queue,
    Fail(CallError),
}

impl Next {
    fn kind(&self) -> &'static str {
        match self {
            Next::Send(_, Some(_)) => "send",
            Next::Send(_, None) => "send-without-connection",
            Next::Queue => "queue",
            Next::Fail(_) => "fail",
        }
    }
}

/// What the core said about a call after the fact.
#[derive(Debug)]
pub(crate) enum Signal {
    Picked(Next),
    Ended(Result<(), CallError>),
}

/// The mailbox of one call.
#[derive(Debug, Default)]
pub(crate) struct CallCell {
    pending: AtomicBool,
    inner: Mutex<CellInner>,
}

#[derive(Debug, Default)]
struct CellInner {
    signals: VecDeque<Signal>,
    waker: Option<Waker>,
    ended: bool,
}

impl CallCell {
    fn lock(&self) -> std::sync::MutexGuard<'_, CellInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, s: Signal) {
        let waker = {
            let mut i = self.lock();
            if matches!(s, Signal::Ended(_)) {
                i.ended = true;
            }
            i.signals.push_back(s);
            self.pending.store(true, Ordering::Release);
            i.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut i = self.lock();
        match i.signals.pop_front() {
            Some(s) => {
                if i.signals.is_empty() {
                    self.pending.store(false, Ordering::Release);
                }
                Poll::Ready(s)
            }
            None => {
                if !i.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    i.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    async fn next(&self) -> Signal {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The call's end, if the core already ended it.
    pub(crate) fn take_end(&self) -> Option<Result<(), CallError>> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut i = self.lock();
        let mut end = None;
        while let Some(s) = i.signals.pop_front() {
            if let Signal::Ended(r) = s {
                end = Some(r);
            }
        }
        self.pending.store(false, Ordering::Release);
        end
    }

    /// Forgets the registered waker: the task about to report is that task, running now, and
    /// looks at the mailbox itself afterwards (a self-wake would cost it a scheduler round).
    fn clear_waker(&self) {
        self.lock().waker = None;
    }

    /// Registers `waker` for the next signal; `true` if one is already there.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut i = self.lock();
        if !i.signals.is_empty() {
            return true;
        }
        if !i.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            i.waker = Some(waker.clone());
        }
        false
    }

    fn is_ended(&self) -> bool {
        self.lock().ended
    }
}

/// Owns a started call: reports to the core, and cancels the call if dropped before its end.
#[derive(Debug)]
pub(crate) struct CallGuard {
    shared: Arc<Shared>,
    id: CallId,
    cell: Arc<CallCell>,
    live: bool,
}

impl CallGuard {
    pub(crate) fn cell(&self) -> &CallCell {
        &self.cell
    }

    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    /// The call is over as far as this task is concerned: nothing to cancel on drop.
    pub(crate) fn finished(&mut self) {
        self.live = false;
    }

    /// Reports the current attempt's outcome; `broken` is the connection it failed on, when
    /// the failure says that connection is unusable (GOAWAY, closed).
    pub(crate) fn report(&self, outcome: &CallOutcome<'_>, broken: Option<&Conn>) {
        self.cell.clear_waker();
        let mut st = self.shared.lock();
        let now = self.shared.timeline.now();
        if let Some(c) = broken {
            self.shared
                .connection_lost(&mut st, c.subchannel, c.epoch, "connection going away");
        }
        st.core.handle_call_outcome(now, self.id, outcome);
        self.shared.flush(&mut st, false);
    }

    /// Response headers arrived: no more retries.
    fn commit(&self) {
        let mut st = self.shared.lock();
        let now = self.shared.timeline.now();
        st.core.handle_call_committed(now, self.id);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.live && !self.cell.is_ended() {
            let mut st = self.shared.lock();
            let now = self.shared.timeline.now();
            st.core.cancel_call(now, self.id);
            st.forget_call(self.id);
            self.shared.flush(&mut st, false);
        }
    }
}

/// A trailers-only response carrying `code` and `message`: tonic turns it into that `Status`.
pub(crate) fn status_response(code: u32, message: &str) -> Response<ResponseBody> {
    let mut r = Response::new(ResponseBody::empty());
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.extend(grpc::status_trailers(code, message));
    r
}

fn error_response(e: &CallError) -> Response<ResponseBody> {
    status_response(e.code, &e.message)
}

/// Runs one RPC on an xDS channel.
pub(crate) async fn run<B>(
    channel: Arc<ChannelInner>,
    req: Request<B>,
) -> Result<Response<ResponseBody>, BoxError>
where
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let shared = Arc::clone(&channel.shared);
    let (mut parts, body) = req.into_parts();
    let mut body = RequestBody::prepare(body, shared.options.retry_buffer_limit).await?;
    let timeout = parts
        .headers
        .get(GRPC_TIMEOUT)
        .and_then(|v| grpc::parse_timeout(v.as_bytes()));
    let wait_for_ready = parts.extensions.get::<WaitForReady>().is_some();
    let report_served_by = parts.extensions.get::<ReportServedBy>().is_some();
    let cell = Arc::new(CallCell::default());
    let (id, mut next) = {
        let mut st = shared.lock();
        if st.closed {
            return Ok(status_response(code::UNAVAILABLE, "the mesh was shut down"));
        }
        let now = shared.timeline.now();
        let headers = HeaderMapSource(&parts.headers);
        let request = CallRequest {
            path: parts.uri.path(),
            headers: &headers,
            timeout,
            wait_for_ready,
        };
        let (id, pick) = match st.core.start_call(now, channel.id, &request) {
            Ok(x) => x,
            Err(e) => return Ok(status_response(code::UNAVAILABLE, &e.to_string())),
        };
        st.calls.insert(id, Arc::clone(&cell));
        let next = st.resolve(pick);
        shared.flush(&mut st, false);
        tracing::trace!(call = %id, pick = next.kind(), "call started");
        (id, next)
    };
    let mut guard = CallGuard {
        shared: Arc::clone(&shared),
        id,
        cell: Arc::clone(&cell),
        live: true,
    };
    if !body.is_replayable() {
        // A streaming request cannot be sent twice: commit now, so the core does not retry.
        guard.commit();
    }
    parts.headers.remove(GRPC_TIMEOUT);
    parts
        .headers
        .insert(TE, HeaderValue::from_static("trailers"));
    // The trailers-only answer of the last failed attempt: returned as is if the call ends
    // with it, so the server's metadata reaches the application.
    let mut last: Option<(u32, http::response::Parts)> = None;
    loop {
        match next {
            Next::Fail(e) => {
                guard.finished();
                return Ok(final_response(last, &e));
            }
            Next::Queue => match cell.next().await {
                Signal::Picked(n) => next = n,
                Signal::Ended(r) => {
                    guard.finished();
                    return Ok(match r {
                        Err(e) => final_response(last, &e),
                        Ok(()) => status_response(code::OK, ""),
                    });
                }
            },
            Next::Send(route, conn) => {
                let Some(attempt_body) = body.for_attempt() else {
                    guard.report(
                        &CallOutcome::status(
                            code::UNAVAILABLE,
                            "a streaming request cannot be sent again",
                        ),
                        None,
                    );
                    next = Next::Queue;
                    continue;
                };
                let Some(conn) = conn else {
                    guard.report(&CallOutcome::refused(), None);
                    next = Next::Queue;
                    continue;
                };
                let now = shared.timeline.now();
                let request =
                    attempt_request(&parts, &channel.authority, &route, &conn, now, attempt_body)?;
                let mut sender = conn.send.clone();
                let response = sender.send_request(request);
                match race(response, &cell).await {
                    Raced::Ended(r) => {
                        // The core ended the call (deadline, channel closed) while the attempt
                        // ran: dropping the response future resets the stream.
                        guard.finished();
                        return Ok(match r {
                            Err(e) => error_response(&e),
                            Ok(()) => status_response(code::OK, ""),
                        });
                    }
                    Raced::Response(Err(e)) => {
                        let f = classify_send_error(&e);
                        tracing::debug!(call = %id, address = %route.address, error = %e, refused = f.refused, "attempt failed");
                        let outcome = if f.refused {
                            CallOutcome::refused()
                        } else {
                            CallOutcome::status(f.code, &f.message)
                        };
                        guard.report(&outcome, f.connection_broken.then_some(&conn));
                        last = None;
                        next = Next::Queue;
                    }
                    Raced::Response(Ok(resp)) => {
                        if resp.status() != http::StatusCode::OK {
                            let code = grpc::code_for_http_status(resp.status());
                            let message = format!("the server answered HTTP {}", resp.status());
                            guard.report(&CallOutcome::status(code, &message), None);
                            last = None;
                            next = Next::Queue;
                            continue;
                        }
                        if let Some((code, message)) = grpc::status_of(resp.headers()) {
                            // Trailers-only: the attempt ended before any response message;
                            // not committed, so the retry policy may try again.
                            let pushback = resp
                                .headers()
                                .get("grpc-retry-pushback-ms")
                                .and_then(|v| v.to_str().ok());
                            guard.report(
                                &CallOutcome {
                                    code,
                                    message: &message,
                                    pushback,
                                    refused: false,
                                },
                                None,
                            );
                            let (mut parts, _) = resp.into_parts();
                            if report_served_by {
                                parts.extensions.insert(ServedBy(route.address));
                            }
                            if code == code::OK {
                                guard.finished();
                                return Ok(Response::from_parts(parts, ResponseBody::empty()));
                            }
                            last = Some((code, parts));
                            next = Next::Queue;
                            continue;
                        }
                        if body.is_replayable() {
                            guard.commit();
                        }
                        let (mut parts, incoming) = resp.into_parts();
                        if report_served_by {
                            parts.extensions.insert(ServedBy(route.address));
                        }
                        return Ok(Response::from_parts(
                            parts,
                            ResponseBody::call(incoming, guard),
                        ));
                    }
                }
            }
        }
    }
}

/// The endpoint whose answer a response carries, in the response's extensions (tonic keeps
/// them: `response.extensions().get::<ServedBy>()`) when the request asked for it with
/// [`ReportServedBy`]. Absent when the mesh itself answered (no route, deadline, shutdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedBy(pub std::net::SocketAddr);

/// The response for a call that ended with `e`: the last attempt's own trailers-only answer
/// when that is what ended it, otherwise a synthesized one.
fn final_response(
    last: Option<(u32, http::response::Parts)>,
    e: &CallError,
) -> Response<ResponseBody> {
    match last {
        Some((code, parts)) if code == e.code && e.source == FailureSource::Application => {
            Response::from_parts(parts, ResponseBody::empty())
        }
        _ => error_response(e),
    }
}

/// The HTTP/2 request of one attempt: the application's method, path and metadata, skiff's
/// scheme and authority, `grpc-timeout` from the call's deadline.
fn attempt_request(
    parts: &http::request::Parts,
    authority: &Authority,
    route: &Route,
    conn: &Conn,
    now: Instant,
    body: AttemptBody,
) -> Result<Request<AttemptBody>, BoxError> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(if conn.tls {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    });
    uri.authority = Some(authority.clone());
    uri.path_and_query = parts.uri.path_and_query().cloned();
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = Uri::from_parts(uri)?;
    *req.version_mut() = Version::HTTP_2;
    let headers = req.headers_mut();
    *headers = parts.headers.clone();
    if let Some(deadline) = route.deadline {
        headers.insert(
            GRPC_TIMEOUT,
            grpc::encode_timeout(deadline.saturating_duration_since(now)),
        );
    }
    Ok(req)
}

enum Raced<T> {
    Response(T),
    Ended(Result<(), CallError>),
}

/// Waits for `fut` unless the core ends the call first.
async fn race<F: Future>(fut: F, cell: &CallCell) -> Raced<F::Output> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Raced::Response(r));
        }
        loop {
            match cell.poll_next(cx) {
                Poll::Ready(Signal::Ended(r)) => return Poll::Ready(Raced::Ended(r)),
                // No pick can arrive while an attempt is in flight; ignore one defensively.
                Poll::Ready(Signal::Picked(_)) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// How a failed send is reported.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SendFailure {
    /// The server never saw the request (refused stream, GOAWAY, connection gone before the
    /// request left): retried transparently.
    pub(crate) refused: bool,
    /// The connection cannot take new requests any more.
    pub(crate) connection_broken: bool,
    pub(crate) code: u32,
    pub(crate) message: String,
}

fn h2_source(e: &hyper::Error) -> Option<&h2::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<h2::Error>() {
            return Some(h);
        }
        cur = c.source();
    }
    None
}

/// The gRPC code for an HTTP/2 stream reset (gRPC's HTTP/2 error code mapping).
fn code_for_reason(r: h2::Reason) -> u32 {
    match r {
        h2::Reason::REFUSED_STREAM => code::UNAVAILABLE,
        h2::Reason::CANCEL => code::CANCELLED,
        h2::Reason::ENHANCE_YOUR_CALM => code::RESOURCE_EXHAUSTED,
        h2::Reason::INADEQUATE_SECURITY => code::PERMISSION_DENIED,
        _ => code::INTERNAL,
    }
}

pub(crate) fn classify_send_error(e: &hyper::Error) -> SendFailure {
    let message = format!("sending the request: {e}");
    if let Some(h) = h2_source(e) {
        if h.is_go_away() && h.is_remote() {
            // New streams after a GOAWAY, or above its last stream id: never processed.
            return SendFailure {
                refused: true,
                connection_broken: true,
                code: code::UNAVAILABLE,
                message,
            };
        }
        if h.is_reset() && h.reason() == Some(h2::Reason::REFUSED_STREAM) {
            return SendFailure {
                refused: true,
                connection_broken: false,
                code: code::UNAVAILABLE,
                message,
            };
        }
        if h.is_io() || h.is_go_away() {
            return SendFailure {
                refused: false,
                connection_broken: true,
                code: code::UNAVAILABLE,
                message,
            };
        }
        if let Some(r) = h.reason() {
            return SendFailure {
                refused: false,
                connection_broken: false,
                code: code_for_reason(r),
                message,
            };
        }
    }
    if e.is_canceled() {
        // The connection was gone before the request was handed to it.
        return SendFailure {
            refused: true,
            connection_broken: true,
            code: code::UNAVAILABLE,
            message,
        };
    }
    SendFailure {
        refused: false,
        connection_broken: e.is_closed(),
        code: code::UNAVAILABLE,
        message,
    }
}

/// The status of a response stream that failed after its headers.
pub(crate) fn classify_body_error(e: &hyper::Error) -> (u32, String) {
    let message = format!("receiving the response: {e}");
    match h2_source(e) {
        Some(h) if h.is_io() || h.is_go_away() => (code::UNAVAILABLE, message),
        Some(h) => (h.reason().map_or(code::INTERNAL, code_for_reason), message),
        None => (code::UNAVAILABLE, message),
    }
}
