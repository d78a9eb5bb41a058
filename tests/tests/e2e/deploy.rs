//! The shipped deployments start. Each server of `deploy/compose.yaml` runs as a plain process
//! with exactly what its container would have: the image's environment, working directory and
//! files (`deploy/Containerfile`'s runtime stage), then the service's own `command`,
//! `environment` and bind mounts. Only what a machine without containers cannot have is mapped:
//! each container's file system is a directory of its own, each service's port a free port on
//! this machine (the address it binds keeps its host, `0.0.0.0` stays `0.0.0.0`), the other
//! services' names their loopback ports, `kafka` the project's broker, and the topic a fresh
//! one (through compose's own `ALLIANCE_TOPIC` variable). Every server must then report SERVING
//! (`grpc.health.v1`) for the service its health check names, and overall.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{Server, repo};

/// What a container of the image starts with (`deploy/Containerfile`, its last stage).
struct Image {
    workdir: String,
    env: Vec<(String, String)>,
    /// (source in the repository, destination in the container) of each `COPY` from the
    /// build context.
    files: Vec<(PathBuf, String)>,
}

/// The Containerfile's instructions, continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                all.push(std::mem::take(&mut current));
            }
        }
    }
    all
}

fn image() -> Image {
    let text = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    let all = instructions(&text);
    let last_from = all.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    let mut image = Image {
        workdir: "/".into(),
        env: Vec::new(),
        files: Vec::new(),
    };
    for instruction in &all[last_from..] {
        let (keyword, rest) = instruction.split_once(' ').unwrap_or((instruction, ""));
        match keyword {
            "WORKDIR" => image.workdir = rest.trim().to_owned(),
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (key, value) = pair.split_once('=').expect("ENV KEY=VALUE");
                    image
                        .env
                        .push((key.to_owned(), value.trim_matches('"').to_owned()));
                }
            }
            "COPY" if !rest.starts_with("--") => {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let (dest, sources) = words.split_last().unwrap();
                let dest = if dest.starts_with('/') {
                    (*dest).to_owned()
                } else {
                    format!("{}/{dest}", image.workdir)
                };
                for source in sources {
                    let name = Path::new(source).file_name().unwrap().to_str().unwrap();
                    let target = if dest.ends_with('/') {
                        format!("{dest}{name}")
                    } else {
                        dest.clone()
                    };
                    image.files.push((repo().join(source), target));
                }
            }
            _ => {}
        }
    }
    image
}

/// Compose's interpolation: `${NAME:-default}`, `${NAME-default}` and `${NAME}`, from `vars`.
fn interpolate(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.split_once(":-").or_else(|| inner.split_once('-')) {
            Some((name, default)) => (name, default),
            None => (inner, ""),
        };
        out.push_str(vars.get(name).map_or(default, String::as_str));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The compose model with merge keys applied and variables interpolated.
fn compose(vars: &BTreeMap<&str, String>) -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/compose.yaml")).unwrap();
    let mut model: Value = serde_norway::from_str(&interpolate(&text, vars)).unwrap();
    model.apply_merge().unwrap();
    model
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A port nothing listens on, on every interface (bound once by the OS, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server of the compose file, mapped onto this machine.
struct Service {
    name: String,
    binary: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The container's file system.
    root: PathBuf,
    workdir: PathBuf,
    port: u16,
    /// The `alliance.v1` service its health check asks for.
    health: String,
}

/// The container port of a service's first published port (`HOST:PUBLISHED:CONTAINER`).
fn container_port(service: &Value) -> Option<u16> {
    let ports = service.get("ports")?.as_sequence()?;
    let spec = text(ports.first()?);
    spec.rsplit(':').next()?.split('/').next()?.parse().ok()
}

/// The `-service=` of a `grpc_health_probe` health check.
fn health_service(service: &Value) -> String {
    let test = service["healthcheck"]["test"]
        .as_sequence()
        .expect("a health check");
    test.iter()
        .map(text)
        .find_map(|word| word.strip_prefix("-service=").map(str::to_owned))
        .expect("the health check names a service")
}

fn services(model: &Value, image: &Image, bootstrap: &str, dir: &Path) -> Vec<Service> {
    let all = model["services"].as_mapping().unwrap();
    // Which compose services are this project's servers (built from the Containerfile).
    let ours: Vec<(String, &Value)> = all
        .iter()
        .filter(|(_, s)| s.get("build").is_some() && s.get("profiles").is_none())
        .map(|(name, s)| (text(name), s))
        .collect();
    let ports: BTreeMap<String, u16> = ours
        .iter()
        .map(|(name, _)| (name.clone(), free_port()))
        .collect();
    // Every other service's `host:port` as reached from here.
    let mut hosts: Vec<(String, String)> = vec![("kafka:9092".into(), bootstrap.into())];
    let nowhere = free_port();
    for (name, service) in all {
        let name = text(name);
        if let Some(port) = ports.get(&name) {
            let inside = container_port(&all[name.as_str()]).expect("a published port");
            hosts.push((format!("{name}:{inside}"), format!("127.0.0.1:{port}")));
        } else if name != "kafka" {
            // Not started here (the collector): an address where nothing answers.
            for port in service
                .get("ports")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let inside = text(port).rsplit(':').next().unwrap().to_owned();
                hosts.push((format!("{name}:{inside}"), format!("127.0.0.1:{nowhere}")));
            }
        }
    }
    ours.into_iter()
        .map(|(name, service)| {
            let port = ports[&name];
            let inside = container_port(service).unwrap();
            let root = dir.join(&name);
            // The container's own address and the others' names; then paths into its root.
            let map = |value: &str| -> String {
                let mut value = value
                    .replace(&format!("0.0.0.0:{inside}"), &format!("0.0.0.0:{port}"))
                    .replace(&format!("127.0.0.1:{inside}"), &format!("127.0.0.1:{port}"));
                for (from, to) in &hosts {
                    value = value.replace(from.as_str(), to);
                }
                match value.strip_prefix('/') {
                    Some(path) => root.join(path).display().to_string(),
                    None => value,
                }
            };
            for (source, target) in &image.files {
                let target = root.join(target.trim_start_matches('/'));
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(source, &target)
                    .unwrap_or_else(|e| panic!("COPY {}: {e}", source.display()));
            }
            for volume in service
                .get("volumes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let spec = text(volume);
                let mut parts = spec.split(':');
                let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
                let target = root.join(target.trim_start_matches('/'));
                if source.starts_with('.') || source.starts_with('/') {
                    let source = repo().join("deploy").join(source);
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    std::fs::copy(&source, &target)
                        .unwrap_or_else(|e| panic!("{name}: volume {spec}: {e}"));
                } else {
                    std::fs::create_dir_all(&target).unwrap();
                }
            }
            let mut command = service["command"]
                .as_sequence()
                .expect("a command")
                .iter()
                .map(text);
            let binary = command.next().unwrap();
            let args = command.map(|a| map(&a)).collect();
            let mut env: BTreeMap<String, String> =
                image.env.iter().map(|(k, v)| (k.clone(), map(v))).collect();
            if let Some(vars) = service.get("environment").and_then(Value::as_mapping) {
                for (key, value) in vars {
                    env.insert(text(key), map(&text(value)));
                }
            }
            Service {
                workdir: root.join(image.workdir.trim_start_matches('/')),
                binary,
                args,
                env: env.into_iter().collect(),
                root,
                port,
                health: health_service(service),
                name,
            }
        })
        .collect()
}

/// Waits (up to 2 minutes) until the server at `port` reports `service` SERVING.
async fn serving(port: u16, service: &str) -> Result<(), String> {
    let wait = async {
        let channel = alliance_auth::endpoint(&format!("http://127.0.0.1:{port}"), None)
            .unwrap()
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut stream = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|e| format!("watch: {e}"))?
            .into_inner();
        while let Some(reply) = stream.message().await.map_err(|e| e.to_string())? {
            if reply.status == ServingStatus::Serving as i32 {
                return Ok(());
            }
        }
        Err("the health stream ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .map_err(|_| "not SERVING within 2 minutes".to_owned())?
}

fn fresh_topic() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("alliance-compose-{}-{nanos}", std::process::id())
}

#[test]
fn every_compose_server_starts_and_serves() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vars = BTreeMap::from([("ALLIANCE_TOPIC", fresh_topic())]);
    let model = compose(&vars);
    let image = image();
    let services = services(&model, &image, &bootstrap, dir.path());
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "allianced-1",
            "allianced-2",
            "alliance-projection",
            "alliance-simulation"
        ]
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut running = Vec::new();
    // In the file's order, each after the ones before it serve (their `depends_on`).
    for service in &services {
        let env: Vec<String> = service
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let started = Server::start_as_configured(
            &service.binary,
            &service.args,
            &service.env,
            &service.workdir,
        )
        .unwrap_or_else(|printed| {
            let tail = &printed[printed.len().saturating_sub(12)..];
            panic!(
                "compose service {} ({} {:?}, environment {env:?}, files in {}) does \
                         not start:\n{}",
                service.name,
                service.binary,
                service.args,
                service.root.display(),
                tail.join("\n")
            )
        });
        for health in ["", service.health.as_str()] {
            if let Err(why) = runtime.block_on(serving(service.port, health)) {
                panic!(
                    "compose service {}: health of {health:?} on port {}: {why}",
                    service.name, service.port
                );
            }
        }
        running.push(started);
    }
}
