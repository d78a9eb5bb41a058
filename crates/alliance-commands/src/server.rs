//! A gRPC server hosting the command service with the standard health and reflection services.

use std::future::Future;

use alliance_eventlog::EventLog;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::grpc::PlanCommandsApi;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `api` on `listener` (with `grpc.health.v1` and server reflection) until `shutdown`.
pub async fn serve<L: EventLog>(
    listener: TcpListener,
    api: PlanCommandsApi<L>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let commands = api.into_server();
    health
        .set_serving::<alliance_proto::v1::plan_commands_server::PlanCommandsServer<PlanCommandsApi<L>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(alliance_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(commands)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
}
