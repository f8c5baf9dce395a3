//! Bodies: the request body of one attempt (buffered for retries, or streamed once), and the
//! response body handed to the application, which reports the RPC's end to the core.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use skiff_core::plane::{CallError, CallOutcome};

use super::BoxError;
use super::call::CallGuard;
use crate::grpc::{self, code};
use crate::runtime::BoxSleep;

/// The request body as the application gave it, prepared for (possibly several) attempts.
pub(crate) enum RequestBody {
    /// Complete and small enough to keep: every attempt sends a copy (cheap `Bytes` clones).
    Buffered {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    /// A stream (or too large to keep): sent once, by the first attempt.
    Streaming(Option<AttemptBody>),
}

impl RequestBody {
    /// Reads what the body has ready without waiting: a body that ends before it would block
    /// and within `limit` bytes is buffered (a unary request always is); anything else streams.
    pub(crate) async fn prepare<B>(body: B, limit: usize) -> Result<RequestBody, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut body: UnsyncBoxBody<Bytes, BoxError> = body.map_err(Into::into).boxed_unsync();
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        let mut trailers = None;
        loop {
            if body.is_end_stream() {
                break;
            }
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
            match polled {
                Poll::Ready(None) => break,
                Poll::Ready(Some(Err(e))) => return Err(e),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(d) => {
                        total += d.len();
                        if !d.is_empty() {
                            chunks.push(d);
                        }
                        if total > limit {
                            return Ok(Self::streaming(chunks, body));
                        }
                    }
                    Err(frame) => {
                        if let Ok(t) = frame.into_trailers() {
                            trailers = Some(t);
                        }
                    }
                },
                Poll::Pending => return Ok(Self::streaming(chunks, body)),
            }
        }
        let data = match chunks.len() {
            0 => None,
            1 => chunks.pop(),
            _ => {
                let mut all = BytesMut::with_capacity(total);
                for c in &chunks {
                    all.extend_from_slice(c);
                }
                Some(all.freeze())
            }
        };
        Ok(RequestBody::Buffered { data, trailers })
    }

    fn streaming(prefix: Vec<Bytes>, rest: UnsyncBoxBody<Bytes, BoxError>) -> RequestBody {
        RequestBody::Streaming(Some(AttemptBody(Attempt::Stream {
            prefix: prefix.into(),
            rest,
        })))
    }

    /// Whether attempts after the first can resend the body.
    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, RequestBody::Buffered { .. })
    }

    /// The body of the next attempt; `None` once a streaming body has been sent.
    pub(crate) fn for_attempt(&mut self) -> Option<AttemptBody> {
        match self {
            RequestBody::Buffered { data, trailers } => Some(AttemptBody(Attempt::Full {
                data: data.clone(),
                trailers: trailers.clone(),
            })),
            RequestBody::Streaming(b) => b.take(),
        }
    }
}

/// The request body of one attempt, as sent on a subchannel's HTTP/2 connection (opaque;
/// public so a [`Runtime`](crate::Runtime) can open subchannel connections itself).
pub struct AttemptBody(Attempt);

pub(crate) enum Attempt {
    /// A buffered body.
    Full {
        /// The message bytes.
        data: Option<Bytes>,
        /// Request trailers (gRPC clients do not send any; kept if present).
        trailers: Option<HeaderMap>,
    },
    /// The application's stream, after what was read ahead.
    Stream {
        /// Frames read ahead while deciding.
        prefix: VecDeque<Bytes>,
        /// The rest.
        rest: UnsyncBoxBody<Bytes, BoxError>,
    },
}

impl fmt::Debug for AttemptBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Attempt::Full { data, .. } => f
                .debug_struct("AttemptBody::Full")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            Attempt::Stream { .. } => f.write_str("AttemptBody::Stream"),
        }
    }
}

impl Body for AttemptBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().0 {
            Attempt::Full { data, trailers } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            Attempt::Stream { prefix, rest } => {
                if let Some(d) = prefix.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Pin::new(rest).poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Attempt::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Attempt::Stream { prefix, rest } => prefix.is_empty() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Like tonic's own request bodies: no exact size, so no `content-length`.
        SizeHint::default()
    }
}

/// The response body of an RPC made through a [`Channel`](super::Channel).
///
/// It streams the server's response and, when the trailers arrive (or the stream fails), tells
/// the mesh how the RPC ended (status, `grpc-retry-pushback-ms`) so load balancing, circuit
/// breaking and outlier detection see it. Dropping it early cancels the RPC. If the mesh ends
/// the RPC first (its deadline passed, the channel closed), the stream is reset and the body
/// ends with that status in its trailers.
pub struct ResponseBody {
    inner: Inner,
}

enum Inner {
    /// Nothing (trailers-only responses carry their status in the headers).
    Empty,
    /// A status to deliver as trailers, then the end.
    Status(Option<HeaderMap>),
    /// A routed RPC's response.
    Call {
        incoming: Incoming,
        guard: CallGuard,
    },
    /// A plain (non-xDS) RPC's response, with its client-side deadline.
    Direct {
        incoming: Incoming,
        deadline: Option<BoxSleep>,
    },
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            Inner::Empty => "empty",
            Inner::Status(_) => "status",
            Inner::Call { .. } => "call",
            Inner::Direct { .. } => "direct",
        };
        f.debug_struct("ResponseBody").field("kind", &kind).finish()
    }
}

impl ResponseBody {
    pub(crate) fn empty() -> Self {
        ResponseBody {
            inner: Inner::Empty,
        }
    }

    pub(crate) fn call(incoming: Incoming, guard: CallGuard) -> Self {
        ResponseBody {
            inner: Inner::Call { incoming, guard },
        }
    }

    pub(crate) fn direct(incoming: Incoming, deadline: Option<BoxSleep>) -> Self {
        ResponseBody {
            inner: Inner::Direct { incoming, deadline },
        }
    }

    fn end_with(&mut self, code: u32, message: &str) {
        self.inner = Inner::Status(Some(grpc::status_trailers(code, message)));
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.inner {
                Inner::Empty => return Poll::Ready(None),
                Inner::Status(t) => {
                    return Poll::Ready(t.take().map(|t| Ok(Frame::trailers(t))));
                }
                Inner::Direct { incoming, deadline } => {
                    match Pin::new(incoming).poll_frame(cx) {
                        Poll::Ready(r) => return Poll::Ready(r.map(|r| r.map_err(Into::into))),
                        Poll::Pending => {}
                    }
                    if let Some(d) = deadline
                        && d.as_mut().poll(cx).is_ready()
                    {
                        this.end_with(code::DEADLINE_EXCEEDED, "deadline exceeded");
                        continue;
                    }
                    return Poll::Pending;
                }
                Inner::Call { incoming, guard } => {
                    if let Some(end) = guard.cell().take_end() {
                        // The mesh ended the RPC (deadline, channel closed): reset the stream
                        // (dropping `incoming` sends RST_STREAM) and surface its status.
                        guard.finished();
                        let e = end.err().unwrap_or_else(|| {
                            CallError::new(
                                code::UNKNOWN,
                                skiff_core::plane::FailureSource::Application,
                                "call ended",
                            )
                        });
                        this.end_with(e.code, &e.message);
                        continue;
                    }
                    match Pin::new(&mut *incoming).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Some(t) = frame.trailers_ref() {
                                let (code, message) = grpc::status_of(t).unwrap_or((
                                    code::UNKNOWN,
                                    "trailers without grpc-status".to_string(),
                                ));
                                let pushback = t
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
                                guard.finished();
                                // Trailers end the stream: polling on (`BodyExt::collect`
                                // does) must not turn the mesh's note that the call ended
                                // into a second, wrong status.
                                this.inner = Inner::Empty;
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Poll::Ready(Some(Err(e))) => {
                            let (code, message) = super::call::classify_body_error(&e);
                            guard.report(&CallOutcome::status(code, &message), None);
                            guard.finished();
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        Poll::Ready(None) => {
                            if guard.is_live() {
                                guard.report(
                                    &CallOutcome::status(
                                        code::INTERNAL,
                                        "the server ended the stream without trailers",
                                    ),
                                    None,
                                );
                                guard.finished();
                            }
                            return Poll::Ready(None);
                        }
                        Poll::Pending => {
                            if guard.cell().register(cx.waker()) {
                                continue; // the call ended meanwhile
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Empty => true,
            Inner::Status(t) => t.is_none(),
            Inner::Call { .. } | Inner::Direct { .. } => false,
        }
    }
}
