//! Findings over 120 months of the reference plan (what-if: its proposals included), in-process
//! and over gRPC on loopback (one client).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use alliance_commands::CommandService;
use alliance_commands::reference::{self, ReferencePlan};
use alliance_domain::Date;
use alliance_eventlog::{SqliteLog, SqliteLogConfig};
use alliance_projection::Projection;
use alliance_server::{Authenticator, TokenFile};
use hdrhistogram::Histogram;

pub struct Figures {
    pub queries: usize,
    pub found: usize,
    /// (p50, p99) in microseconds.
    pub in_process: (f64, f64),
    pub grpc: (f64, f64),
}

fn window() -> (Date, Date) {
    (
        Date::from_ymd_opt(2027, 1, 1).expect("a date"),
        Date::from_ymd_opt(2036, 12, 31).expect("a date"),
    )
}

fn pair(h: &Histogram<u64>) -> (f64, f64) {
    (
        h.value_at_quantile(0.5) as f64,
        h.value_at_quantile(0.99) as f64,
    )
}

pub async fn measure(queries: usize) -> anyhow::Result<Figures> {
    let auth =
        Authenticator::from_token_file(&TokenFile::load(Path::new("deploy/dev-tokens.toml"))?)?;
    let reference = ReferencePlan::read(Path::new("deploy/reference-plan.json"))?;
    let plan = reference.fold(&auth)?;
    let (from, to) = window();

    let mut in_process = Histogram::<u64>::new(3)?;
    let mut found = 0;
    for _ in 0..queries {
        let t = Instant::now();
        let findings = alliance_domain::findings(&plan, from, to, true);
        in_process.record(t.elapsed().as_micros() as u64)?;
        found = findings.len();
        std::hint::black_box(findings);
    }

    // The same plan written through the command service to a SQLite log, read by a read model.
    let dir = tempfile::tempdir()?;
    let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db")))?;
    let service = CommandService::open(log.clone())
        .await?
        .with_default_grants(auth.default_grants());
    reference::load(&service, &auth, &reference).await?;
    let projection = Projection::new();
    projection.catch_up(&log).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let api = alliance_projection::PostureQueriesApi::new(projection, Arc::new(auth));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(api.into_server())
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            ),
    );
    let channel = alliance_auth::endpoint(&format!("http://{addr}"), None)?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = alliance_proto::v1::posture_queries_client::PostureQueriesClient::new(channel);
    let mut grpc = Histogram::<u64>::new(3)?;
    for _ in 0..queries {
        let mut request = tonic::Request::new(alliance_proto::v1::GetFindingsRequest {
            plan_id: reference.plan_id.to_string(),
            from: Some(alliance_proto::convert::date_to_proto(from)),
            to: Some(alliance_proto::convert::date_to_proto(to)),
            include_proposed: true,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", "Bearer dev-auditors".parse()?);
        let t = Instant::now();
        let reply = client.get_findings(request).await?;
        grpc.record(t.elapsed().as_micros() as u64)?;
        std::hint::black_box(reply);
    }
    server.abort();
    Ok(Figures {
        queries,
        found,
        in_process: pair(&in_process),
        grpc: pair(&grpc),
    })
}
