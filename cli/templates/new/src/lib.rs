//! {{name}}: the generated gRPC code and the binding of its client to the mesh.

pub mod pb {
    tonic::include_proto!("helloworld");
}

pub use pb::greeter_client::GreeterClient;
pub use pb::greeter_server::{Greeter, GreeterServer};
pub use pb::{HelloReply, HelloRequest};

// `mesh.client::<GreeterClient<skiff_tokio::Channel>>()` finds the service by interface name.
skiff_tokio::mesh_client!(GreeterClient => "helloworld.Greeter");
