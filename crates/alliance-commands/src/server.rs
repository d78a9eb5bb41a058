//! A gRPC server hosting the command service alone, with health and reflection
//! ([`alliance_server::serve`]).

use std::future::Future;

use alliance_eventlog::EventLog;
use alliance_server::serve::{ServeError, base_routes, serve_routes};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

use crate::grpc::PlanCommandsApi;

/// [`base_routes`] with `api` added.
pub async fn routes<L: EventLog>(
    api: PlanCommandsApi<L>,
) -> Result<(Routes, HealthReporter), ServeError> {
    let (routes, health) = base_routes()?;
    health
        .set_serving::<alliance_proto::v1::plan_commands_server::PlanCommandsServer<PlanCommandsApi<L>>>()
        .await;
    Ok((routes.add_service(api.into_server()), health))
}

/// Serves `api` alone (with health and reflection) on `listener` until `shutdown`.
pub async fn serve<L: EventLog>(
    listener: TcpListener,
    api: PlanCommandsApi<L>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (routes, _health) = routes(api).await?;
    serve_routes(listener, routes, None, shutdown).await
}
