//! What the end-to-end tests share: the test kit's server (`alliance_tests::server`: the
//! services composed as `allianced` composes them, on a fresh SQLite log in a temp dir and an
//! ephemeral loopback port with the development token file), and runs of the built
//! `alliancectl` binary against it. The binary runs on the blocking pool, so the server keeps
//! serving on the test runtime meanwhile.

use std::ops::Deref;
use std::process::Command;

pub use alliance_tests::server::Services;
pub use alliance_tests::server::repo;
use serde_json::Value;

/// The command service, the read models following the same log and what [`Services`] adds: the
/// test kit's server, which the binary runs against.
pub struct Server(alliance_tests::server::Server);

impl Deref for Server {
    type Target = alliance_tests::server::Server;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Server {
    /// `services` beside the command service and the read models, on a fresh SQLite log.
    pub async fn start(services: Services) -> Self {
        Server(
            alliance_tests::server::Server::start(Services {
                read_models: true,
                ..services
            })
            .await,
        )
    }

    /// Shuts the server down and checks it stopped cleanly.
    pub async fn stop(self) {
        self.0.stop().await
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

/// `pick` of each item of the JSON array `array`.
pub fn each<'a, T>(array: &'a Value, pick: impl Fn(&'a Value) -> T) -> Vec<T> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(pick)
        .collect()
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

/// The version of `plan` as `token`'s caller reads it from the write side.
pub async fn head_version(
    commands: &mut alliance_proto::v1::plan_commands_client::PlanCommandsClient<
        tonic::transport::Channel,
    >,
    token: &str,
    plan: &str,
) -> u64 {
    let request = alliance_proto::v1::GetPlanRequest {
        plan_id: plan.to_owned(),
    };
    let plan = commands
        .get_plan(alliance_tests::requests::authed(token, request))
        .await
        .unwrap()
        .into_inner();
    plan.head.unwrap().version
}
