//! What the end-to-end tests share: the services composed as `allianced` composes them, on a
//! fresh `SqliteLog` in a temp dir and an ephemeral loopback port with the development token
//! file (`deploy/dev-tokens.toml`), and runs of the built `alliancectl` binary against them.
//! The binary runs on the blocking pool, so the server keeps serving on the test runtime
//! meanwhile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use alliance_commands::reference::{self, ReferencePlan};
use alliance_commands::{CommandService, PlanCommandsApi};
use alliance_eventlog::{SqliteLog, SqliteLogConfig};
use alliance_projection::Projection;
use alliance_server::security::{DenialLayer, SecurityLog};
use alliance_server::{Authenticator, TokenFile};
use alliance_simulation::Recorder;
use serde_json::Value;
use tokio::sync::oneshot;

/// The root of the workspace.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What a [`Server`] serves beside the command service and the read models.
pub struct Services {
    /// A plan loaded before serving, through the same path as the reference plan.
    pub plan: Option<ReferencePlan>,
    /// `alliance.v1.Simulation` with the shipped model data, its run store in the data dir,
    /// recording completed runs through the command service.
    pub simulation: bool,
    /// A security log in the data dir with refused requests recorded in it.
    pub security: bool,
    /// The token file (default: the development one, `deploy/dev-tokens.toml`).
    pub tokens: Option<PathBuf>,
}

/// The command service, the read models following the same log and what [`Services`] adds.
pub struct Server {
    pub url: String,
    #[allow(dead_code)]
    pub log: SqliteLog,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    /// The data dir, removed when the server is dropped.
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(services: Services) -> Self {
        Self::start_with_witnesses(services, None).await
    }

    /// [`Server::start`], checking witnesses against `witnesses` (the identity configuration's
    /// `[[witness_key]]`).
    pub async fn start_with_witnesses(
        services: Services,
        witnesses: Option<alliance_record::witness::WitnessKeys>,
    ) -> Self {
        let witnesses = witnesses.map(Arc::new);
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("alliance.db"))).unwrap();
        let tokens = services
            .tokens
            .clone()
            .unwrap_or_else(|| repo().join("deploy/dev-tokens.toml"));
        let auth = Authenticator::from_token_file(&TokenFile::load(&tokens).unwrap()).unwrap();
        // A writer key in the data dir, trusted alone, as allianced does without an identity
        // configuration.
        let signer = alliance_server::signing::writer_key(None, dir.path()).unwrap();
        let keys = alliance_projection::AuditKeys {
            trusted: Some(Arc::new(alliance_server::signing::trusted_for_writer(
                None, &signer,
            ))),
            signer: Some(signer.clone()),
            witnesses: witnesses.clone(),
        };
        let service = Arc::new(
            CommandService::open(log.clone())
                .await
                .unwrap()
                .with_default_grants(auth.default_grants())
                .with_signer(signer)
                .with_witness_keys(witnesses),
        );
        if let Some(plan) = &services.plan {
            let report = reference::load(&service, &auth, plan).await.unwrap();
            assert_eq!(report.applied, plan.entries.len());
        }
        // Bound before the server task starts: the binary can connect right away.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // The read model, as allianced builds it: what the log holds before serving, then each
        // event as it is committed.
        let projection = Projection::new();
        projection.catch_up(&log).await.unwrap();
        tokio::spawn(projection.clone().follow(log.clone()));
        let auth = Arc::new(auth);
        let api = PlanCommandsApi::new(service.clone(), auth.clone(), &address);
        let (mut routes, health) = alliance_commands::server::routes(api).await.unwrap();
        if services.simulation {
            let recorder = Recorder::Local(Arc::new(PlanCommandsApi::new(
                service,
                auth.clone(),
                &address,
            )));
            let model = alliance_simulation::load_model(Path::new("")).unwrap();
            (routes, _) = alliance_simulation::add_routes(
                routes,
                &health,
                projection.clone(),
                auth.clone(),
                model,
                dir.path(),
                recorder,
            )
            .await
            .unwrap();
        }
        let security = services
            .security
            .then(|| SecurityLog::open(&dir.path().join("security.db")).unwrap());
        let denials = security
            .as_ref()
            .map(|security| DenialLayer::new(security.clone(), auth.clone()));
        let routes = alliance_projection::add_routes(
            routes,
            &health,
            projection,
            log.clone(),
            auth,
            security,
            keys,
        )
        .await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            alliance_server::serve::serve_routes(listener, routes, denials, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            url: format!("http://{address}"),
            log,
            stop,
            task,
            _dir: dir,
        }
    }

    /// Shuts the server down and checks it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }

    /// A file in the server's data dir.
    #[allow(dead_code)]
    pub fn path(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }

    /// Runs the binary with `args` as the holder of `token`.
    pub async fn ctl(&self, token: &str, args: &[&str]) -> Run {
        ctl_with_plan(&self.url, Some(token), None, args).await
    }

    /// The plan's current version, as `plan show --output json` prints it.
    #[allow(dead_code)]
    pub async fn version(&self, plan: &str) -> u64 {
        let shown = self
            .ctl(
                "dev-auditors",
                &["plan", "show", "--plan", plan, "--output", "json"],
            )
            .await
            .json();
        shown["version"].as_u64().unwrap()
    }
}

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` against `server`, as the holder of `token` (none: no token),
/// with `ALLIANCE_PLAN` set to `plan` if given.
pub async fn ctl_with_plan(
    server: &str,
    token: Option<&str>,
    plan: Option<&str>,
    args: &[&str],
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alliancectl"));
    command
        .args(args)
        .env("ALLIANCE_SERVER", server)
        .env_remove("ALLIANCE_TOKEN")
        .env_remove("ALLIANCE_PLAN");
    if let Some(token) = token {
        command.env("ALLIANCE_TOKEN", token);
    }
    if let Some(plan) = plan {
        command.env("ALLIANCE_PLAN", plan);
    }
    let out = tokio::task::spawn_blocking(move || command.output().expect("run alliancectl"))
        .await
        .expect("join");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

impl Run {
    /// The stdout of a run that exited 0, without its final newline; stderr may hold progress.
    pub fn succeeded(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self.stdout.strip_suffix('\n').expect("a final newline")
    }

    /// The stdout of a successful run (exit 0, nothing on stderr), without its final newline.
    pub fn ok(&self) -> &str {
        let stdout = self.succeeded();
        assert!(self.stderr.is_empty(), "stderr: {}", self.stderr);
        stdout
    }

    /// The stdout of a successful run, parsed as one JSON object.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok()).expect("stdout is one JSON object")
    }

    /// The one line on stderr of a run that exited with `code` and printed nothing on stdout.
    pub fn refused(&self, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        let line = self.stderr.strip_suffix('\n').expect("a final newline");
        assert!(!line.contains('\n'), "more than one line: {}", self.stderr);
        line
    }

    /// The one JSON object on stderr of a run (with `--output json`) that exited with `code`.
    #[allow(dead_code)]
    pub fn refused_json(&self, code: i32) -> Value {
        let error: Value = serde_json::from_str(self.refused(code)).expect("one JSON object");
        assert_eq!(error["error"]["exit_code"], code, "{error}");
        error
    }
}

/// The PNG's width and height read from its IHDR chunk, after checking the signature; then
/// the whole image decoded as 8-bit RGB pixels.
#[allow(dead_code)]
pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!((frame.width, frame.height), (width, height));
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..frame.buffer_size()]
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (width, height, pixels)
}

/// Asserts that `status` is `code` and that its message names `naming`.
#[allow(dead_code)]
pub fn assert_refused(status: &tonic::Status, code: tonic::Code, naming: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(naming),
        "the refusal does not name {naming}: {}",
        status.message()
    );
}
