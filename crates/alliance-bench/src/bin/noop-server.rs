//! The floor under the command benchmark: a gRPC server that answers
//! `alliance.v1.PlanCommands/RegisterForceElement` with an empty `CommandResult` and does
//! nothing else. It decodes each request as `allianced` does, runs on the same runtime and
//! allocator, and serves over the same tonic server, so the benchmark's own client code at the
//! same concurrency measures what gRPC, the client and the machine allow.
//!
//! `noop-server` listens on 127.0.0.1 at an ephemeral port and prints `listening on ADDR`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use alliance_proto::v1;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic_prost::ProstCodec;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `RegisterForceElement`, answered at once.
struct Register;

impl UnaryService<v1::RegisterForceElementRequest> for Register {
    type Response = v1::CommandResult;
    type Future = Ready<Result<tonic::Response<v1::CommandResult>, tonic::Status>>;

    fn call(&mut self, _: tonic::Request<v1::RegisterForceElementRequest>) -> Self::Future {
        ready(Ok(tonic::Response::new(v1::CommandResult::default())))
    }
}

/// The `PlanCommands` service with its one method; every other path is `UNIMPLEMENTED`.
#[derive(Clone)]
struct Noop;

impl NamedService for Noop {
    const NAME: &'static str = "alliance.v1.PlanCommands";
}

impl tower::Service<http::Request<Body>> for Noop {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != "/alliance.v1.PlanCommands/RegisterForceElement" {
                return Ok(tonic::Status::unimplemented("").into_http());
            }
            let mut grpc = Grpc::new(ProstCodec::default());
            Ok(grpc.unary(Register, request).await)
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("noop-server listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .add_service(Noop)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
