//! The echo service every variant calls: one unary method, hand-written in the shape
//! `tonic-build` generates (no build script, no protoc).
//!
//! Wire: `/skiff.bench.Echo/Echo`, request and response are `message EchoMsg { bytes payload = 1; }`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;

use bytes::Bytes;
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The gRPC path of the echo method.
pub const ECHO_PATH: &str = "/skiff.bench.Echo/Echo";

/// `message EchoMsg { bytes payload = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoMsg {
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// A client over any gRPC transport: a tonic `Channel` for D and S2, skiff's channel for P.
#[derive(Debug, Clone)]
pub struct EchoClient<T> {
    inner: tonic::client::Grpc<T>,
}

impl<T> EchoClient<T>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    pub fn new(inner: T) -> Self {
        EchoClient {
            inner: tonic::client::Grpc::new(inner),
        }
    }

    /// One unary call; returns the echoed payload.
    pub async fn echo(&mut self, payload: Bytes) -> Result<Bytes, Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("service not ready: {}", e.into())))?;
        let path = http::uri::PathAndQuery::from_static(ECHO_PATH);
        let reply: Response<EchoMsg> = self
            .inner
            .unary(
                Request::new(EchoMsg { payload }),
                path,
                ProstCodec::default(),
            )
            .await?;
        Ok(reply.into_inner().payload)
    }
}

/// The server side: echoes the payload back.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoServer;

impl NamedService for EchoServer {
    const NAME: &'static str = "skiff.bench.Echo";
}

struct EchoMethod;

impl UnaryService<EchoMsg> for EchoMethod {
    type Response = EchoMsg;
    type Future = Ready<Result<Response<EchoMsg>, Status>>;

    fn call(&mut self, request: Request<EchoMsg>) -> Self::Future {
        ready(Ok(Response::new(request.into_inner())))
    }
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == ECHO_PATH {
            Box::pin(async move {
                let mut grpc = Grpc::new(ProstCodec::<EchoMsg, EchoMsg>::default());
                Ok(grpc.unary(EchoMethod, req).await)
            })
        } else {
            Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// Serves the echo service on an already-bound listener until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(EchoServer)
        .serve_with_incoming(incoming)
        .await
}

/// A plain tonic channel to `addr` (one HTTP/2 connection, `TCP_NODELAY`).
pub async fn tonic_channel(
    addr: SocketAddr,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await
}
