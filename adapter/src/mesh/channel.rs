//! [`Channel`]: the tonic-compatible client side of the mesh.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response};
use http_body::Body;
use skiff_core::ids::ChannelId;

use super::body::ResponseBody;
use super::direct::DirectPool;
use super::{BoxError, Shared, call};

/// Put this in a request's extensions (`request.extensions_mut().insert(WaitForReady)`, also
/// through tonic's `Request::extensions_mut`) to make the RPC wait for a reachable endpoint
/// instead of failing with UNAVAILABLE while none is (gRPC's wait-for-ready).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitForReady;

/// Put this in a request's extensions to have its response carry the endpoint that answered
/// ([`ServedBy`](super::ServedBy)), e.g. to show which backend served a call (`skiff call`
/// does). Off by default: recording it costs an allocation per RPC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportServedBy;

/// The state shared by the clones of one xDS channel; closing the core's channel when the last
/// clone (and the last RPC using it) is gone.
pub(crate) struct ChannelInner {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ChannelId,
    pub(crate) target: String,
    pub(crate) authority: Authority,
}

impl fmt::Debug for ChannelInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelInner")
            .field("id", &self.id)
            .field("target", &self.target)
            .finish()
    }
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let now = self.shared.timeline.now();
        if st
            .channels
            .get(&self.target)
            .is_some_and(|w| w.strong_count() == 0)
        {
            st.channels.remove(&self.target);
        }
        st.core.close_channel(now, self.id);
        self.shared.flush(&mut st, false);
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Xds(Arc<ChannelInner>),
    Direct(Arc<DirectPool>),
}

/// A client channel: `mesh.channel("xds:///echo.default.svc.cluster.local:7000")`,
/// `mesh.channel("xds:///helloworld.Greeter")`, or a plain `dns:///host:port` / `host:port`.
///
/// It is a [`tower_service::Service`] over `http::Request<B>` for any request body (tonic's
/// `tonic::body::Body` included), so tonic-generated clients take it unchanged:
/// `GreeterClient::new(mesh.channel("xds:///helloworld.Greeter")?)`. Unary and streaming RPCs
/// both work. Cheap to clone; clones share one xDS channel.
///
/// On an `xds:` channel every RPC is routed by the mesh (route, cluster, endpoint, deadline,
/// fault injection, circuit breaking) and sent straight to the chosen endpoint; failed attempts
/// are retried per the route's retry policy (unary requests up to
/// [`MeshOptions::retry_buffer_limit`](super::MeshOptions::retry_buffer_limit) bytes; streaming
/// requests are never retried). A plain target round-robins over the addresses the name resolves
/// to, without a control plane.
#[derive(Clone, Debug)]
pub struct Channel {
    kind: Kind,
}

impl Channel {
    pub(crate) fn xds(inner: Arc<ChannelInner>) -> Self {
        Channel {
            kind: Kind::Xds(inner),
        }
    }

    pub(crate) fn direct(pool: Arc<DirectPool>) -> Self {
        Channel {
            kind: Kind::Direct(pool),
        }
    }

    /// The target this channel was opened with (the xDS listener name for `xds:` targets).
    pub fn target(&self) -> &str {
        match &self.kind {
            Kind::Xds(c) => &c.target,
            Kind::Direct(p) => p.target(),
        }
    }
}

/// The future of one RPC through a [`Channel`].
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B> tower_service::Service<Request<B>> for Channel
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Admission is decided per RPC by the mesh (queueing, circuit breaking).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let inner: Pin<Box<dyn Future<Output = _> + Send>> = match &self.kind {
            Kind::Xds(c) => Box::pin(call::run(Arc::clone(c), req)),
            Kind::Direct(p) => Box::pin(Arc::clone(p).call(req)),
        };
        ResponseFuture { inner }
    }
}
