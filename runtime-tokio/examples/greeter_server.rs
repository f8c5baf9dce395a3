//! A plain tonic Greeter server, the kind of backend a skiff client routes to.
//!
//! ```text
//! cargo run -p skiff-tokio --example greeter_server -- 127.0.0.1:50051 a
//! ```
//!
//! Arguments: the address to listen on (default `127.0.0.1:50051`) and a name it puts in every
//! reply (default `server`), so a client can see which endpoint answered. Ctrl-C shuts it down
//! gracefully (GOAWAY; RPCs in flight finish).

#[path = "../tests/support/greeter.rs"]
mod greeter;

use greeter::greeter_server::{Greeter, GreeterServer};
use greeter::{HelloReply, HelloRequest};
use tonic::{Request, Response, Status};

struct Hello {
    name: String,
}

#[tonic::codegen::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let who = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("hello {who}, from {}", self.name),
            backend: self.name.clone(),
        }))
    }

    type SayHelloStreamStream =
        tonic::codegen::tokio_stream::Iter<std::vec::IntoIter<Result<HelloReply, Status>>>;

    async fn say_hello_stream(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHelloStreamStream>, Status> {
        let r = request.into_inner();
        let replies: Vec<_> = (0..r.count)
            .map(|i| {
                Ok(HelloReply {
                    message: format!("hello {} #{i}, from {}", r.name, self.name),
                    backend: self.name.clone(),
                })
            })
            .collect();
        Ok(Response::new(tonic::codegen::tokio_stream::iter(replies)))
    }

    async fn say_hello_client_stream(
        &self,
        request: Request<tonic::Streaming<HelloRequest>>,
    ) -> Result<Response<HelloReply>, Status> {
        let mut stream = request.into_inner();
        let mut names = Vec::new();
        while let Some(r) = stream.message().await? {
            names.push(r.name);
        }
        Ok(Response::new(HelloReply {
            message: format!("hello {}, from {}", names.join(", "), self.name),
            backend: self.name.clone(),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:50051".into())
        .parse()?;
    let name = args.next().unwrap_or_else(|| "server".into());
    println!("greeter {name} listening on {addr}");
    tonic::transport::Server::builder()
        .serve_with_shutdown(addr, GreeterServer::new(Hello { name }), async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
