//! The shipped deployments start. Each server of `deploy/compose.yaml` runs as a plain process
//! with exactly what its container would have: the image's environment, working directory and
//! files (`deploy/Containerfile`'s runtime stage), then the service's own `command`,
//! `environment` and bind mounts. Only what a machine without containers cannot have is mapped:
//! each container's file system is a directory of its own, each service's port a free port on
//! this machine (the address it binds keeps its host, `0.0.0.0` stays `0.0.0.0`), the other
//! services' names their loopback ports, `kafka` the project's broker, and the topic a fresh
//! one (through compose's own `ALLIANCE_TOPIC` variable). Every server must then report SERVING
//! (`grpc.health.v1`) for the service its health check names, and overall.
//!
//! The Kubernetes example overlay the same way, as kustomize renders it: each Deployment's
//! container with its `command`, `env` and volumes (ConfigMaps and Secrets written out as
//! files; the TLS Secrets made outside kustomize made here by a test CA, the writers' signing key
//! by the test, the Strimzi operators' Secrets from the project's broker), each Service's names
//! its pods' loopback ports, the Strimzi bootstrap the project's broker's SASL_SSL listener, and
//! every server must report SERVING over TLS to the requests its own probes make.

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

impl Image {
    /// The image's files (its `COPY`s) under `root`, a container's file system.
    fn lay_out(&self, root: &Path) {
        for (source, target) in &self.files {
            let target = root.join(target.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(source, &target)
                .unwrap_or_else(|e| panic!("COPY {}: {e}", source.display()));
        }
    }
}

/// A value of a container's command or environment as seen from this machine: the container's
/// own `IP:inside` port its `IP:port` here (`ports`), each of `hosts` what it stands for, and an
/// absolute path the same path under `root`, the container's file system.
fn relocate(
    value: &str,
    (inside, port): (u16, u16),
    hosts: &[(String, String)],
    root: &Path,
) -> String {
    let mut value = value
        .replace(&format!("0.0.0.0:{inside}"), &format!("0.0.0.0:{port}"))
        .replace(&format!("127.0.0.1:{inside}"), &format!("127.0.0.1:{port}"));
    for (from, to) in hosts {
        value = value.replace(from.as_str(), to);
    }
    match value.strip_prefix('/') {
        Some(path) => root.join(path).display().to_string(),
        None => value,
    }
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
    /// The `alliance.v1` services its health checks ask for (`""`: the server overall).
    health: Vec<String>,
    /// How its health checks reach it over TLS; plaintext without.
    tls: Option<ProbeTls>,
}

/// What a `grpc_health_probe -tls …` presents and expects: the CA its server's certificate
/// must be signed by, the name it must carry, and the client certificate shown to the server.
struct ProbeTls {
    ca: PathBuf,
    server_name: String,
    client: Option<(PathBuf, PathBuf)>,
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
            let map = |value: &str| relocate(value, (inside, port), &hosts, &root);
            image.lay_out(&root);
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
                health: vec![String::new(), health_service(service)],
                tls: None,
                name,
            }
        })
        .collect()
}

/// Waits (up to 2 minutes) until the server at `port` reports `service` SERVING, asked over
/// `tls` when given.
async fn serving(port: u16, service: &str, tls: Option<&ProbeTls>) -> Result<(), String> {
    let tls = tls
        .map(|tls| {
            alliance_auth::ClientTlsPaths {
                ca: tls.ca.clone(),
                identity: tls.client.clone().map(|(cert_chain, private_key)| {
                    alliance_auth::CertKeyPaths {
                        cert_chain,
                        private_key,
                    }
                }),
                domain_name: Some(tls.server_name.clone()),
            }
            .load()
        })
        .transpose()
        .map_err(|e| format!("the probe's TLS files: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let wait = async {
        let channel =
            alliance_auth::endpoint(&format!("{scheme}://127.0.0.1:{port}"), tls.as_ref())
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

fn fresh_topic(deployment: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("alliance-{deployment}-{}-{nanos}", std::process::id())
}

#[test]
fn every_compose_server_starts_and_serves() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vars = BTreeMap::from([("ALLIANCE_TOPIC", fresh_topic("compose"))]);
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
        running.push(start(service, "compose service"));
        require_serving(&runtime, service, "compose service");
    }
}

/// Starts `service` (a `what`, for the messages) as configured; fails with what it printed
/// when it exits before listening.
fn start(service: &Service, what: &str) -> Server {
    Server::start_as_configured(
        &service.binary,
        &service.args,
        &service.env,
        &service.workdir,
    )
    .unwrap_or_else(|printed| {
        let env: Vec<String> = service
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let tail = &printed[printed.len().saturating_sub(12)..];
        panic!(
            "{what} {} ({} {:?}, environment {env:?}, files in {}) does not start:\n{}",
            service.name,
            service.binary,
            service.args,
            service.root.display(),
            tail.join("\n")
        )
    })
}

/// Fails unless `service` reports SERVING for each service its health checks ask for.
fn require_serving(runtime: &tokio::runtime::Runtime, service: &Service, what: &str) {
    for health in &service.health {
        if let Err(why) = runtime.block_on(serving(service.port, health, service.tls.as_ref())) {
            panic!(
                "{what} {}: health of {health:?} on port {}{}: {why}",
                service.name,
                service.port,
                if service.tls.is_some() {
                    " over TLS"
                } else {
                    ""
                },
            );
        }
    }
}

// ---- Kubernetes ------------------------------------------------------------------------------

/// The kustomize version `scripts/deploy-check.sh` pins (`KUSTOMIZE_VERSION=`).
fn pinned_kustomize() -> String {
    let script = std::fs::read_to_string(repo().join("scripts/deploy-check.sh")).unwrap();
    script
        .lines()
        .find_map(|line| line.strip_prefix("KUSTOMIZE_VERSION="))
        .expect("scripts/deploy-check.sh pins KUSTOMIZE_VERSION")
        .trim()
        .to_owned()
}

/// The objects `kustomize build` makes of `dir`, files outside it allowed (as deploy/README.md
/// builds it): by `kubectl kustomize`, else `kustomize`, else the pinned kustomize through
/// `go run` (the Go module proxy), whichever this machine has first.
fn kustomize_build(dir: &Path) -> Vec<Value> {
    let dir = dir.display().to_string();
    let pinned = format!("sigs.k8s.io/kustomize/kustomize/v5@{}", pinned_kustomize());
    let restrictor = ["--load-restrictor", "LoadRestrictionsNone"];
    let ways: [(&str, Vec<&str>); 3] = [
        ("kubectl", vec!["kustomize", &dir]),
        ("kustomize", vec!["build", &dir]),
        ("go", vec!["run", &pinned, "build", &dir]),
    ];
    for (program, args) in ways {
        let out = match std::process::Command::new(program)
            .args(&args)
            .args(restrictor)
            .env("GOTOOLCHAIN", "local")
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            out => out.unwrap(),
        };
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        return text
            .split("\n---\n")
            .map(|doc| serde_norway::from_str::<Value>(doc).unwrap())
            .filter(|doc| !doc.is_null())
            .collect();
    }
    panic!("neither kubectl, kustomize nor go is on PATH to render {dir}");
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
}

/// The rendered objects.
struct Manifests(Vec<Value>);

impl Manifests {
    fn of_kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Value> {
        let kind = kind.to_owned();
        self.0.iter().filter(move |doc| str_of(doc, "kind") == kind)
    }

    fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind)
            .find(|doc| str_of(&doc["metadata"], "name") == name)
    }

    /// A ConfigMap's or Secret's files: key and contents.
    fn files(&self, kind: &str, name: &str) -> Option<Vec<(String, Vec<u8>)>> {
        use base64::Engine as _;
        let object = self.get(kind, name)?;
        let mut files = Vec::new();
        for (field, encoded) in [("data", kind == "Secret"), ("stringData", false)] {
            for (key, value) in object
                .get(field)
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                let value = text(value);
                let bytes = if encoded {
                    base64::engine::general_purpose::STANDARD
                        .decode(value.split_whitespace().collect::<String>())
                        .unwrap_or_else(|e| panic!("{kind} {name}/{}: {e}", text(key)))
                } else {
                    value.into_bytes()
                };
                files.push((text(key), bytes));
            }
        }
        Some(files)
    }

    /// The rendered identity configuration: the Secret holding `identity.toml`, and its contents.
    fn identity(&self) -> (String, toml::Table) {
        self.of_kind("Secret")
            .find_map(|secret| {
                let name = str_of(&secret["metadata"], "name");
                let (_, toml) = self
                    .files("Secret", name)?
                    .into_iter()
                    .find(|(key, _)| key == "identity.toml")?;
                let toml = toml::from_str(&String::from_utf8(toml).unwrap()).unwrap();
                Some((name.to_owned(), toml))
            })
            .expect("the overlay renders the identity configuration")
    }

    /// One key of a ConfigMap or Secret.
    fn value(&self, kind: &str, name: &str, key: &str) -> String {
        let files = self
            .files(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name}"));
        let (_, bytes) = files
            .into_iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no key {key} in {kind} {name}"));
        String::from_utf8(bytes).unwrap()
    }
}

/// Kubernetes' `$(NAME)` references to the variables defined before, in `value`.
fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = value.to_owned();
    for (name, defined) in defined {
        out = out.replace(&format!("$({name})"), defined);
    }
    out
}

/// A probe's health service and TLS: a `grpc` probe (plaintext: the kubelet's gRPC probes
/// have no TLS), or an `exec` of `grpc_health_probe` (its `-tls…` flags' files under `root`).
fn probe(probe: &Value, root: &Path) -> (String, Option<ProbeTls>) {
    if let Some(grpc) = probe.get("grpc") {
        return (str_of(grpc, "service").to_owned(), None);
    }
    let words: Vec<String> = list(&probe["exec"], "command").map(text).collect();
    assert!(
        words
            .first()
            .is_some_and(|w| w.ends_with("grpc_health_probe")),
        "a probe that is neither gRPC nor grpc_health_probe: {words:?}"
    );
    let flag = |name: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("-{name}=")))
            .map(str::to_owned)
    };
    let file = |name: &str| flag(name).map(|path| root.join(path.trim_start_matches('/')));
    let service = flag("service").unwrap_or_default();
    if !words.iter().any(|w| w == "-tls") {
        return (service, None);
    }
    let tls = ProbeTls {
        ca: file("tls-ca-cert").expect("-tls with -tls-ca-cert (no system CA signs the servers)"),
        server_name: flag("tls-server-name").expect("-tls with -tls-server-name"),
        client: file("tls-client-cert").zip(file("tls-client-key")),
    };
    (service, Some(tls))
}

/// What the rendering names and a cluster would hold, made here: the deployment's CA and the
/// identity provider's key set, the project's broker's SASL_SSL client settings (for Strimzi's
/// Secrets: the cluster CA's, each KafkaUser's password), and the writers' signing key.
struct Outside<'a> {
    ca: &'a crate::identity::keys::Ca,
    jwks: &'a str,
    kafka: &'a BTreeMap<String, String>,
    /// The private key (PKCS#8 PEM), for the Secret `ALLIANCED_SIGNING_KEY` is a file of.
    signing_key: Vec<u8>,
    /// Its public key (PEM), in place of the identity configuration's placeholder.
    signing_public: String,
}

/// Kafka client settings (`KEY=VALUE,…`) as reached from here: the files they name under `root`,
/// and the broker's SASL mechanism and user (PLAIN, its super user `alliance`) for the
/// deployment's (a KafkaUser's SCRAM-SHA-512); every other setting, `security.protocol` first
/// of all, as it is.
fn kafka_client(value: &str, broker: &BTreeMap<String, String>, root: &Path) -> String {
    value
        .split(',')
        .map(|setting| {
            let (key, value) = setting.split_once('=').expect("KEY=VALUE");
            let value = match key {
                "sasl.mechanism" | "sasl.username" => broker[key].clone(),
                _ if value.starts_with('/') => root
                    .join(value.trim_start_matches('/'))
                    .display()
                    .to_string(),
                _ => value.to_owned(),
            };
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Each server of the rendered `manifests` (every container of a Deployment or StatefulSet, in
/// as many pods as it has replicas, two at most), mapped onto this machine under `dir`: its container's file system a directory
/// of its own with the image's files and its volumes (ConfigMaps and Secrets of the rendering
/// written out, the identity configuration's `[[signing_key]]` placeholder replaced by
/// `outside`'s public key; a Secret the rendering only names: the Kafka cluster's CA, the signing
/// key `ALLIANCED_SIGNING_KEY` names, or else its TLS certificate, made by `outside`'s CA for the
/// name its probes ask for), its port a free port, the Services their pods' ports, the Strimzi
/// bootstrap the project's broker at `bootstrap` (its SASL_SSL listener), a KafkaUser's password
/// the broker's, the KafkaTopic's topic `topic`, the identity provider's key set the file
/// `outside.jwks`.
fn workloads(
    manifests: &Manifests,
    image: &Image,
    (bootstrap, topic): (&str, &str),
    outside: &Outside<'_>,
    dir: &Path,
) -> Vec<Service> {
    let (ca, jwks) = (outside.ca, outside.jwks);
    // (pod, its workload's metadata, its template), the pods of a workload one after another.
    let pods: Vec<(String, &Value, &Value)> = manifests
        .0
        .iter()
        .filter(|doc| matches!(str_of(doc, "kind"), "Deployment" | "StatefulSet"))
        .flat_map(|doc| {
            let name = str_of(&doc["metadata"], "name");
            let replicas = doc["spec"]
                .get("replicas")
                .map_or(1, |r| text(r).parse().unwrap());
            (0..replicas.min(2)).map(move |i: u32| {
                (
                    format!("{name}-{i}"),
                    &doc["metadata"],
                    &doc["spec"]["template"],
                )
            })
        })
        .collect();
    let ports: BTreeMap<String, u16> = pods
        .iter()
        .map(|(pod, _, _)| (pod.clone(), free_port()))
        .collect();
    // Each Service's names, with its port, as reached from here: its pods' port.
    let mut hosts: Vec<(String, String)> = Vec::new();
    for service in manifests.of_kind("Service") {
        let name = str_of(&service["metadata"], "name");
        let namespace = str_of(&service["metadata"], "namespace");
        let selector = &service["spec"]["selector"];
        // Its first pod (the Service's other endpoints are the same server).
        let Some((pod, _, _)) = pods.iter().find(|(_, _, template)| {
            selector.as_mapping().is_some_and(|wanted| {
                wanted
                    .iter()
                    .all(|(k, v)| template["metadata"]["labels"].get(k) == Some(v))
            })
        }) else {
            continue;
        };
        for port in list(&service["spec"], "ports") {
            let port = text(&port["port"]);
            let to = format!("127.0.0.1:{}", ports[pod]);
            for host in [
                format!("{name}.{namespace}.svc.cluster.local"),
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}"),
                name.to_owned(),
            ] {
                hosts.push((format!("{host}:{port}"), to.clone()));
            }
        }
    }
    let clusters: Vec<String> = manifests
        .of_kind("KafkaTopic")
        .map(|topic| str_of(&topic["metadata"]["labels"], "strimzi.io/cluster").to_owned())
        .collect();
    let topics: Vec<String> = manifests
        .of_kind("KafkaTopic")
        .map(|topic| str_of(&topic["spec"], "topicName").to_owned())
        .collect();
    // The Secrets Strimzi's operators make: the cluster CA's, and each KafkaUser's.
    let kafka_ca_secrets: Vec<String> = clusters
        .iter()
        .map(|cluster| format!("{cluster}-cluster-ca-cert"))
        .collect();
    let kafka_users: Vec<String> = manifests
        .of_kind("KafkaUser")
        .map(|user| str_of(&user["metadata"], "name").to_owned())
        .collect();
    // The writers' public keys the identity configuration lists: files of its Secret.
    let (identity_secret, identity) = manifests.identity();
    let signing_files: Vec<String> = identity
        .get("signing_key")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .map(|key| key["public_key"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !signing_files.is_empty(),
        "the identity configuration lists no [[signing_key]]"
    );
    // A Strimzi cluster's bootstrap Service, by any of its names: `<cluster>-kafka-bootstrap`.
    let is_bootstrap = |value: &str| {
        value.split(',').all(|address| {
            clusters.iter().any(|cluster| {
                let service = format!("{cluster}-kafka-bootstrap");
                address.starts_with(&format!("{service}:"))
                    || address.starts_with(&format!("{service}."))
            })
        })
    };

    let mut all = Vec::new();
    for (name, metadata, template) in &pods {
        let spec = &template["spec"];
        let volumes: BTreeMap<&str, &Value> = list(spec, "volumes")
            .map(|v| (str_of(v, "name"), v))
            .collect();
        for container in list(spec, "containers") {
            let root = dir.join(name).join(str_of(container, "name"));
            image.lay_out(&root);
            let inside: u16 = text(&container["ports"][0]["containerPort"])
                .parse()
                .unwrap();
            let port = ports[name];
            let health_checks: Vec<(String, Option<ProbeTls>)> =
                ["startupProbe", "readinessProbe", "livenessProbe"]
                    .iter()
                    .filter_map(|p| container.get(*p))
                    .map(|p| probe(p, &root))
                    .collect();
            let server_name = health_checks
                .iter()
                .find_map(|(_, tls)| tls.as_ref().map(|t| t.server_name.clone()));
            let mounts: Vec<(String, &str)> = list(container, "volumeMounts")
                .map(|m| (str_of(m, "mountPath").to_owned(), str_of(m, "name")))
                .collect();
            // Where the container's signing key is: (its directory, its file name).
            let signing_key = list(container, "env")
                .find(|e| str_of(e, "name") == "ALLIANCED_SIGNING_KEY")
                .map(|e| {
                    let path = text(&e["value"]);
                    let (dir, file) = path.rsplit_once('/').unwrap();
                    (dir.to_owned(), file.to_owned())
                });
            // A mounted file's own paths (an identity configuration names its TLS files) and
            // the identity provider's key set, as the container sees them.
            let in_file = |contents: Vec<u8>| -> Vec<u8> {
                let Ok(mut text) = String::from_utf8(contents.clone()) else {
                    return contents;
                };
                for (path, _) in &mounts {
                    text = text.replace(
                        &format!("\"{path}/"),
                        &format!("\"{}/", root.join(path.trim_start_matches('/')).display()),
                    );
                }
                let jwks_file = root.join("jwks.json");
                std::fs::write(&jwks_file, jwks).unwrap();
                text.lines()
                    .map(|line| match line.trim_start().starts_with("jwks_url") {
                        true => format!("jwks_file = \"{}\"\n", jwks_file.display()),
                        false => format!("{line}\n"),
                    })
                    .collect::<String>()
                    .into_bytes()
            };
            for (path, volume) in &mounts {
                let target = root.join(path.trim_start_matches('/'));
                std::fs::create_dir_all(&target).unwrap();
                let volume = volumes
                    .get(volume)
                    .unwrap_or_else(|| panic!("{name}: no volume {volume}"));
                let files = if let Some(map) = volume.get("configMap") {
                    let map = str_of(map, "name");
                    manifests
                        .files("ConfigMap", map)
                        .unwrap_or_else(|| panic!("{name}: no ConfigMap {map}"))
                } else if let Some(secret) = volume.get("secret") {
                    let secret = str_of(secret, "secretName");
                    if let Some(mut files) = manifests.files("Secret", secret) {
                        if secret == identity_secret {
                            for file in &signing_files {
                                let (_, contents) = files
                                    .iter_mut()
                                    .find(|(key, _)| key == file)
                                    .unwrap_or_else(|| {
                                        panic!("[[signing_key]] {file} is not in Secret {secret}")
                                    });
                                assert!(
                                    String::from_utf8_lossy(contents).contains("PLACEHOLDER"),
                                    "{secret}/{file}: the example's public key should be a \
                                     placeholder for the operator's own"
                                );
                                *contents = outside.signing_public.clone().into_bytes();
                            }
                        }
                        files
                    } else if kafka_ca_secrets.iter().any(|s| s == secret) {
                        // Strimzi's cluster CA: the broker's.
                        let ca = std::fs::read(&outside.kafka["ssl.ca.location"]).unwrap();
                        vec![("ca.crt".to_owned(), ca)]
                    } else if let Some((_, file)) =
                        signing_key.as_ref().filter(|(dir, _)| dir == path)
                    {
                        vec![(file.clone(), outside.signing_key.clone())]
                    } else {
                        // Named but not rendered: made outside kustomize (cert-manager, kubectl).
                        let server_name = server_name.clone().unwrap_or_else(|| {
                            panic!(
                                "{name}: Secret {secret} is neither rendered nor the TLS \
                                 certificate of a server probed over TLS"
                            )
                        });
                        let leaf = ca.service(&server_name);
                        vec![
                            ("tls.crt".to_owned(), leaf.cert_pem.into_bytes()),
                            ("tls.key".to_owned(), leaf.key_pem.into_bytes()),
                            ("ca.crt".to_owned(), ca.pem.clone().into_bytes()),
                        ]
                    }
                } else {
                    Vec::new()
                };
                for (key, contents) in files {
                    std::fs::write(target.join(key), in_file(contents)).unwrap();
                }
            }
            let command: Vec<String> = list(container, "command")
                .chain(list(container, "args"))
                .map(text)
                .collect();
            let (binary, args) = command.split_first().expect("a command");
            let binary = Path::new(binary)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            // The container's environment: the image's, then its own, in order (a `$(NAME)`
            // sees the ones before it), each value then mapped.
            let mut defined: BTreeMap<String, String> = image.env.iter().cloned().collect();
            for entry in list(container, "env") {
                let key = str_of(entry, "name").to_owned();
                let value = if let Some(value) = entry.get("value") {
                    expand(&text(value), &defined)
                } else {
                    let from = &entry["valueFrom"];
                    if let Some(field) = from.get("fieldRef") {
                        match str_of(field, "fieldPath") {
                            "status.podIP" => "127.0.0.1".to_owned(),
                            "metadata.name" => name.clone(),
                            "metadata.namespace" => str_of(metadata, "namespace").to_owned(),
                            other => panic!("{name}: fieldRef {other}"),
                        }
                    } else if let Some(r) = from.get("configMapKeyRef") {
                        manifests.value("ConfigMap", str_of(r, "name"), str_of(r, "key"))
                    } else if let Some(r) = from.get("secretKeyRef") {
                        let (secret, field) = (str_of(r, "name"), str_of(r, "key"));
                        if manifests.get("Secret", secret).is_some() {
                            manifests.value("Secret", secret, field)
                        } else if kafka_users.iter().any(|u| u == secret) && field == "password" {
                            // The User Operator's Secret of a KafkaUser: the broker's password.
                            outside.kafka["sasl.password"].clone()
                        } else {
                            panic!("{name}: {key} from Secret {secret}/{field}, not rendered")
                        }
                    } else {
                        panic!("{name}: {key} from {from:?}")
                    }
                };
                defined.insert(key, value);
            }
            let map = |value: &str| {
                if is_bootstrap(value) {
                    bootstrap.to_owned()
                } else if topics.iter().any(|t| t == value) {
                    topic.to_owned()
                } else if value.contains("security.protocol=") {
                    kafka_client(value, outside.kafka, &root)
                } else {
                    relocate(value, (inside, port), &hosts, &root)
                }
            };
            let mut health: Vec<String> = vec![String::new()];
            for (service, _) in &health_checks {
                if !health.contains(service) {
                    health.push(service.clone());
                }
            }
            all.push(Service {
                name: format!("{name}/{}", str_of(container, "name")),
                workdir: root.join(image.workdir.trim_start_matches('/')),
                binary,
                args: args.iter().map(|a| map(&expand(a, &defined))).collect(),
                env: defined.iter().map(|(k, v)| (k.clone(), map(v))).collect(),
                root,
                port,
                health,
                tls: health_checks.into_iter().find_map(|(_, tls)| tls),
            });
        }
    }
    all
}

/// The example overlay of `deploy/k8s` (what deploy/README.md deploys), rendered by kustomize:
/// every server starts as Kubernetes would start its pods (all at once) and reports SERVING to
/// its own probes' requests: over TLS, with the probes' CA, server name and client certificate.
/// Then a command sent to one `allianced` pod for a plan the other writes is forwarded to that
/// pod's IP over the peer TLS of the identity configuration: the certificates name no address,
/// so the forward succeeds only if that configuration makes the instances prove the name their
/// certificates carry, and the name is a `[[peer]]`.
#[test]
fn every_kubernetes_server_starts_and_serves_over_tls() {
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    // The broker's SASL_SSL listener: where the servers' Kafka settings lead.
    let secure = alliance_eventlog_kafka::local_secure_client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifests = Manifests(kustomize_build(&repo().join("deploy/k8s/overlays/example")));
    let ca = crate::identity::keys::Ca::new("alliance deploy test CA");
    let keys = crate::identity::keys::keys();
    let jwks = crate::identity::keys::jwks(&[&keys.ec]);
    // The writers' signing key, made as deploy/README.md makes it for the Secret.
    let writer_key = alliance_record::signing::Signer::generate().unwrap();
    let writer_key_file = dir.path().join("writer-signing-key.pem");
    writer_key.write(&writer_key_file).unwrap();
    let outside = Outside {
        ca: &ca,
        jwks: &jwks,
        kafka: &secure,
        signing_key: std::fs::read(&writer_key_file).unwrap(),
        signing_public: writer_key.public_pem(),
    };
    // The KafkaTopic's topic, a fresh one, made before the servers as its operator would.
    let kafka_topic = manifests
        .of_kind("KafkaTopic")
        .next()
        .expect("a KafkaTopic");
    let partitions: u32 = text(&kafka_topic["spec"]["partitions"]).parse().unwrap();
    let topic = fresh_topic("k8s");
    let config = alliance_eventlog_kafka::KafkaLogConfig {
        partitions,
        ..alliance_eventlog_kafka::KafkaLogConfig::new(bootstrap.clone(), topic.clone())
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(alliance_eventlog_kafka::create_topic(&config))
        .unwrap();
    let services = workloads(
        &manifests,
        &image(),
        (&secure["bootstrap.servers"], &topic),
        &outside,
        dir.path(),
    );
    let mut names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "alliance-projection-0/alliance-projection",
            "alliance-projection-1/alliance-projection",
            "alliance-simulation-0/alliance-simulation",
            "alliance-simulation-1/alliance-simulation",
            "allianced-0/allianced",
            "allianced-1/allianced",
        ]
    );
    let running: Vec<Server> = std::thread::scope(|scope| {
        let started: Vec<_> = services
            .iter()
            .map(|service| scope.spawn(|| start(service, "Kubernetes server")))
            .collect();
        started
            .into_iter()
            .map(|s| s.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    for service in &services {
        assert!(
            service.tls.is_some(),
            "Kubernetes server {}: its probes do not use TLS",
            service.name
        );
        require_serving(&runtime, service, "Kubernetes server");
    }

    // The two allianced pods, once each writes half the partitions.
    let instances: Vec<(&Service, &Server)> = services
        .iter()
        .zip(&running)
        .filter(|(service, _)| service.binary == "allianced")
        .collect();
    let [(via, via_server), (writer, owner)] = instances[..] else {
        panic!("two allianced pods, found {}", instances.len())
    };
    let half = usize::try_from(partitions / 2).unwrap();
    let writes = |server: &Server| -> Vec<i32> {
        let line = server.wait_for_line(|l| {
            l.contains("writing partitions")
                && l.rsplit('[').next().unwrap().matches(',').count() + 1 == half
        });
        let list = line.rsplit('[').next().unwrap();
        list.trim_end_matches([']', ')'])
            .split(',')
            .map(|p| p.trim().parse().unwrap())
            .collect()
    };
    let owner_writes = writes(owner);
    writes(via_server);
    // JWTs of the identity configuration's issuer and audience, as a team that creates plans
    // and as one that audits them.
    let (_, identity) = manifests.identity();
    let jwt = &identity["jwt"];
    let audience = match &jwt["audience"] {
        toml::Value::Array(all) => all[0].as_str().unwrap().to_owned(),
        one => one.as_str().unwrap().to_owned(),
    };
    let team_with = |role: &str| {
        identity["team"]
            .as_array()
            .unwrap()
            .iter()
            .find(|team| {
                team.get("roles")
                    .and_then(toml::Value::as_array)
                    .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(role)))
            })
            .unwrap_or_else(|| panic!("a team with the {role} role"))["team"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let now = crate::identity::keys::now();
    let token_of = |team: &str| {
        keys.ec.sign(&serde_json::json!({
            "iss": jwt["issuer"].as_str().unwrap(),
            "aud": audience,
            "sub": "deploy.check",
            "team": team,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 600,
        }))
    };
    let token = token_of(&team_with("admin"));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let url = format!("https://localhost:{}", via.port);
    let forwarded = (0..20).find_map(|n| {
        let out = crate::identity::ctl(
            &url,
            &ca_file,
            &[
                "--token",
                &token,
                "plan",
                "create",
                "--name",
                &format!("deploy check {n}"),
                "--horizon-start",
                "2020-01-01",
                "--horizon-end",
                "2035-12-31",
            ],
        );
        assert!(
            out.status.success(),
            "plan create through {}: {}",
            via.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let plan = created["plan_id"].as_str().unwrap().to_owned();
        let version = created["plan_version"].as_u64().unwrap();
        let partition = alliance_eventlog_kafka::partition_of(plan.parse().unwrap(), partitions);
        owner_writes.contains(&partition).then_some((plan, version))
    });
    let Some((plan, version)) = forwarded else {
        panic!(
            "twenty plans created through {}, none written by the other pod",
            via.name
        )
    };

    // What the other pod wrote is signed by the key of the Secret allianced-signing and trusted:
    // a read-model replica, whose read models take only records signed by a key the identity
    // configuration lists ([[signing_key]]), knows the plan at its version and verifies its whole
    // history as signed; so does the export, offline, under the keys of the identity
    // configuration the pods read (the one the test put in place of the placeholder).
    let auditor = token_of(&team_with("audit"));
    let replica = services
        .iter()
        .find(|s| s.binary == "alliance-projection")
        .expect("a read-model replica");
    let replica_url = format!("https://localhost:{}", replica.port);
    let ctl = |args: &[&str]| {
        let with_token = [&["--token", auditor.as_str()][..], args].concat();
        let out = crate::identity::ctl(&replica_url, &ca_file, &with_token);
        assert!(
            out.status.success(),
            "alliancectl {args:?} at {}: {}",
            replica.name,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let version_text = version.to_string();
    ctl(&[
        "posture",
        "--plan",
        &plan,
        "--on",
        "2030-01-01",
        "--min-version",
        &version_text,
    ]);
    let verified: serde_json::Value =
        serde_json::from_slice(&ctl(&["audit", "verify", "--plan", &plan])).unwrap();
    assert_eq!(
        (
            &verified["ok"],
            &verified["events"],
            &verified["unsigned_through"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(version),
            &serde_json::json!(0)
        ),
        "the replica's verification of a plan written by {}: {verified}",
        writer.name
    );
    let export = dir.path().join("plan.jsonl");
    ctl(&[
        "audit",
        "export",
        "--plan",
        &plan,
        "--out",
        export.to_str().unwrap(),
    ]);
    let identity_file = via.root.join("etc/alliance/identity/identity.toml");
    let offline: serde_json::Value = serde_json::from_slice(&ctl(&[
        "audit",
        "verify",
        "--file",
        export.to_str().unwrap(),
        "--keys",
        identity_file.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        (
            &offline["ok"],
            &offline["signatures_checked"],
            &offline["events"],
            &offline["unsigned_through"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(version),
            &serde_json::json!(0)
        ),
        "{offline}"
    );
    // Trusted there means signed by that key: the identity configuration lists it alone.
    let listed: Vec<String> = identity["signing_key"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            let file = identity_file
                .parent()
                .unwrap()
                .join(key["public_key"].as_str().unwrap());
            std::fs::read_to_string(file).unwrap().trim().to_owned()
        })
        .collect();
    assert_eq!(listed, [writer_key.public_pem().trim()]);
}
