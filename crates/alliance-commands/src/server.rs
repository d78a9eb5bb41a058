//! A gRPC server hosting the command service, and the services beside it, with the standard
//! health and reflection services.

use std::future::Future;

use alliance_eventlog::EventLog;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::grpc::PlanCommandsApi;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("grpc server task: {0}")]
    Task(String),
}

/// The routes of `grpc.health.v1` and server reflection of the whole `alliance.v1` contract;
/// services are added to them (and reported serving through the returned health reporter).
pub fn base_routes() -> Result<(Routes, HealthReporter), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(alliance_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    Ok((Routes::new(health_service).add_service(reflection), health))
}

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

/// Runs `attempt` until it succeeds, waiting 1 s, 2 s, 4 s … (at most 30 s) between attempts
/// and reporting each failure as `what`. Gives up only on Ctrl-C or SIGTERM, with the last
/// error.
pub async fn retry_until_stopped<T, E, F, Fut>(what: &str, mut attempt: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(error) => {
                tracing::error!(%error, retry_in = ?delay, "{what}");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown_signal() => return Err(format!("stopped while retrying ({what}): {error}")),
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: a server's clean stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Serves `routes` on `listener` until `shutdown`, with the telemetry of every request
/// ([`alliance_telemetry::RpcLayer`]); with `denials`, every refused request is recorded in the
/// security log.
pub async fn serve_routes(
    listener: TcpListener,
    routes: Routes,
    denials: Option<crate::security::DenialLayer>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    tonic::transport::Server::builder()
        .layer(alliance_telemetry::RpcLayer::new())
        .layer(tower::util::option_layer(denials))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    Ok(())
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

/// The callers of the development token file, with a warning when a server using it listens
/// beyond loopback.
pub fn dev_tokens(
    token_file: &std::path::Path,
    listen: std::net::SocketAddr,
) -> Result<crate::Authenticator, crate::auth::AuthConfigError> {
    let auth = crate::Authenticator::from_token_file(&crate::TokenFile::load(token_file)?)?;
    if !listen.ip().is_loopback() {
        tracing::warn!(
            %listen,
            "the static development token file is in use on a non-loopback address: anyone holding a development token can edit plans"
        );
    }
    Ok(auth)
}
