//! The demo's greeter backends: a minimal gRPC server over HTTP/2 (h2c) that answers
//! `/helloworld.Greeter/SayHello` with "Hello NAME from BACKEND". Real gRPC on the wire, so any
//! gRPC client can call it; skiff's client reaches it through the mesh.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use prost::Message;
use skiff_core::grpc::codec::{FrameDecoder, encode_frame};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `helloworld.HelloRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct HelloRequest {
    /// Who to greet.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `helloworld.HelloReply`.
#[derive(Clone, PartialEq, Message)]
pub struct HelloReply {
    /// The greeting.
    #[prost(string, tag = "1")]
    pub message: String,
}

/// The gRPC method the backends serve.
pub const SAY_HELLO: &str = "/helloworld.Greeter/SayHello";

/// A running backend.
pub struct Backend {
    /// Its name (shown in the demo).
    pub name: &'static str,
    /// Its version label (the subset it belongs to).
    pub version: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a backend on 127.0.0.1 with an OS-assigned port.
pub async fn start(name: &'static str, version: &'static str) -> std::io::Result<Backend> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(tcp).await else {
                    return;
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    tokio::spawn(answer(name, req, respond));
                }
            });
        }
    });
    Ok(Backend {
        name,
        version,
        addr,
        task,
    })
}

async fn answer(
    name: &'static str,
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let ok_path = req.uri().path() == SAY_HELLO;
    let mut body = req.into_body();
    let mut decoder = FrameDecoder::new(4 * 1024 * 1024);
    let mut request = None;
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        decoder.push(&chunk);
        while let Ok(Some(f)) = decoder.decode_next() {
            request = HelloRequest::decode(f.data).ok();
        }
    }
    let mut head = http::Response::new(());
    head.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/grpc"),
    );
    let mut trailers = http::HeaderMap::new();
    let (Some(request), true) = (request, ok_path) else {
        head.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("12"));
        let _ = respond.send_response(head, true);
        return;
    };
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    let reply = HelloReply {
        message: format!("Hello {} from {name}", request.name),
    };
    let mut buf = BytesMut::new();
    encode_frame(&reply, &mut buf);
    if send.send_data(buf.freeze(), false).is_ok() {
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let _ = send.send_trailers(trailers);
    }
}
