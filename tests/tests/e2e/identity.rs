//! Who may call the real `allianced` when it is given an identity configuration: bearer JWTs
//! verified against a JWKS file, client certificates verified by mutual TLS and mapped to teams,
//! over TLS only, driven with the real `alliancectl`.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

use crate::support::{REFERENCE_PLAN, Server, command};

// Keys, JWKS and certificates generated at test time (shared with alliance-auth's own tests).
#[allow(dead_code)]
#[path = "../../../crates/alliance-auth/tests/it/support.rs"]
pub(crate) mod keys;

use keys::{AUDIENCE, Ca, ISSUER, claims, jwks, now, write};

const TEAMS: &str = r#"
[[team]]
team = "us-force-planning"
side = "us"
[[team]]
team = "rok-jcs"
side = "rok"
[[team]]
team = "nuclear-policy"
side = "us"
[[team]]
team = "alliance-approvers"
roles = ["edit", "adopt", "admin"]
[[team]]
team = "auditors"
roles = ["audit"]
"#;

/// The gateway's client certificate, mapped to the ROK JCS.
const ROK_GATEWAY: &str =
    "[[client_cert]]\nsubject = \"CN=rok.gateway\"\nteam = \"rok-jcs\"\nuser = \"rok.gateway\"\n";

/// The deployment's other instance, a peer.
const PEER: &str = "[[peer]]\nsubject = \"DNS:allianced.alliance.internal\"\n";

/// An identity configuration: bearer JWTs verified against a JWKS file of `jwt_keys`, then
/// `entries`, the teams and `more`.
struct Identity<'a> {
    jwt_keys: &'a [&'a keys::SigningKey],
    entries: &'a str,
    more: &'a str,
}

impl Identity<'_> {
    /// Writes the configuration, its JWKS, the certificate and key `leaf` serves with (as
    /// `name`.pem and `name`.key) and the certificate of `ca` in `d`: the paths of the
    /// configuration, the certificate, the key and the CA's certificate.
    fn write(
        &self,
        d: &Path,
        ca: &Ca,
        (name, leaf): (&str, &keys::Leaf),
    ) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
        let jwks_file = write(d, "jwks.json", jwks(self.jwt_keys));
        let config = format!(
            "[jwt]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks_file = \"{}\"\n{}{TEAMS}\n{}",
            jwks_file.display(),
            self.entries,
            self.more
        );
        (
            write(d, "identity.toml", config),
            write(d, &format!("{name}.pem"), &leaf.cert_pem),
            write(d, &format!("{name}.key"), &leaf.key_pem),
            write(d, "ca.pem", &ca.pem),
        )
    }
}

/// A CA, and the files of the instance `allianced.alliance.internal` it certifies, under an
/// identity configuration of `entries` over JWTs of the EC key (as [`Identity::write`] answers).
fn instance_files(d: &Path, entries: &str) -> (Ca, (PathBuf, PathBuf, PathBuf, PathBuf)) {
    let ca = Ca::new("alliance test CA");
    let instance = ca.instance("allianced.alliance.internal");
    let identity = Identity {
        jwt_keys: &[&keys::keys().ec],
        entries,
        more: "",
    };
    let files = identity.write(d, &ca, ("instance", &instance));
    (ca, files)
}

struct Setup {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    wrong_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server: Server,
    url: String,
}

fn setup() -> Setup {
    setup_with(tempfile::tempdir().unwrap(), "", &[])
}

/// [`setup`] in `dir`, with `more` appended to the identity configuration (paths in it relative
/// to `dir`) and `args` given to `allianced`.
fn setup_with(dir: tempfile::TempDir, more: &str, args: &[String]) -> Setup {
    let d = dir.path();
    let ca = Ca::new("alliance test CA");
    let server_leaf = ca.server();
    let client = ca.client("rok.gateway", "urn:alliance:rok-jcs");
    let stranger = Ca::new("another CA");
    let keys = keys::keys();
    let identity = Identity {
        jwt_keys: &[&keys.ec, &keys.rsa],
        entries: ROK_GATEWAY,
        more,
    };
    let (config, cert, key, ca_file) = identity.write(d, &ca, ("server", &server_leaf));
    let data = d.join("data");
    let mut server_args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--auth-config".into(),
        config.display().to_string(),
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
        "--tls-client-ca".into(),
        ca_file.display().to_string(),
    ];
    server_args.extend_from_slice(args);
    let server = Server::start_with_env("allianced", &data, &server_args, "info", &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    Setup {
        ca: ca_file,
        wrong_ca: write(d, "wrong-ca.pem", &stranger.pem),
        client_cert: write(d, "client.pem", &client.cert_pem),
        client_key: write(d, "client.key", &client.key_pem),
        server,
        url: format!("https://localhost:{port}"),
        _dir: dir,
    }
}

pub(crate) fn ctl(url: &str, ca: &Path, extra: &[&str]) -> Output {
    ctl_on(url, ca, REFERENCE_PLAN, extra)
}

/// [`ctl`] on `plan`.
fn ctl_on(url: &str, ca: &Path, plan: &str, extra: &[&str]) -> Output {
    command("alliancectl")
        .args(["--server", url, "--ca-cert"])
        .arg(ca)
        .args(["--output", "json"])
        .args(extra)
        .env("ALLIANCE_PLAN", plan)
        .env_remove("ALLIANCE_TOKEN")
        .output()
        .unwrap()
}

/// The ROK gateway, by its client certificate and key, proposes decision `id` on `plan` through
/// `url`; returns the plan's version after it.
fn propose_by_certificate(
    url: &str,
    ca: &Path,
    plan: &str,
    [cert, key]: [&Path; 2],
    id: &str,
) -> String {
    let out = ctl_on(
        url,
        ca,
        plan,
        &[
            "--client-cert",
            cert.to_str().unwrap(),
            "--client-key",
            key.to_str().unwrap(),
            "decision",
            "propose",
            "--id",
            id,
            "--title",
            "Proposed by a certificate caller",
            "--rationale",
            "mutual TLS",
            "--effective",
            "2029-01-01",
            "--sides",
            "rok",
        ],
    );
    succeeded(&out)["plan_version"]
        .as_u64()
        .unwrap()
        .to_string()
}

/// Asserts that a decision's `history` names the ROK gateway as the actor.
#[track_caller]
fn assert_gateway_recorded(history: &str) {
    assert!(
        history.contains("rok-jcs") && history.contains("rok.gateway"),
        "{history}"
    );
}

/// The audit history of decision `id` of `plan`, read through `url` as `auditor` once the read
/// model holds `version` (read your writes).
fn decision_history(
    url: &str,
    ca: &Path,
    plan: &str,
    auditor: &str,
    id: &str,
    version: &str,
) -> String {
    let history = ctl_on(
        url,
        ca,
        plan,
        &[
            "--token",
            auditor,
            "audit",
            "history",
            "--decision",
            id,
            "--min-version",
            version,
        ],
    );
    assert!(history.status.success(), "{}", stderr(&history));
    String::from_utf8_lossy(&history.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON that a successful `alliancectl` call printed.
#[track_caller]
fn succeeded(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn jwts_and_client_certificates_over_tls_and_nothing_else() {
    let s = setup();
    let keys = keys::keys();
    let approver = keys.ec.sign(&claims("a.approver", "alliance-approvers"));

    // A valid token: the caller is who its claims say.
    let listed = ctl(&s.url, &s.ca, &["--token", &approver, "plan", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains(REFERENCE_PLAN));
    let rsa = keys.rsa.sign(&claims("us.planner", "us-force-planning"));
    let shown = ctl(&s.url, &s.ca, &["--token", &rsa, "plan", "show"]);
    assert!(shown.status.success(), "{}", stderr(&shown));

    // Expired, signed by a key the JWKS does not hold, for another audience, a development
    // token, no credentials at all: UNAUTHENTICATED (exit 4), saying why.
    let mut expired = claims("a.approver", "alliance-approvers");
    expired["exp"] = json!(now() - 3600);
    let mut other_audience = claims("a.approver", "alliance-approvers");
    other_audience["aud"] = json!("another-system");
    let refusals = [
        (keys.ec.sign(&expired), "expired"),
        (
            keys.other_rsa
                .sign_as(keys.rsa.kid(), &claims("x", "alliance-approvers")),
            "signature",
        ),
        (keys.ec.sign(&other_audience), "audience"),
        ("dev-alliance-approvers".to_owned(), "token"),
    ];
    for (token, why) in &refusals {
        let out = ctl(&s.url, &s.ca, &["--token", token, "plan", "list"]);
        assert_eq!(out.status.code(), Some(4), "{why}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(
            message.contains("UNAUTHENTICATED") || message.contains("not authenticated"),
            "{message}"
        );
        assert!(message.contains(why), "{why}: {message}");
    }
    let anonymous = ctl(&s.url, &s.ca, &["plan", "list"]);
    assert_eq!(anonymous.status.code(), Some(4), "{}", stderr(&anonymous));

    // A client certificate signed by the client CA acts for its mapped team, with no token.
    let version = propose_by_certificate(
        &s.url,
        &s.ca,
        REFERENCE_PLAN,
        [&s.client_cert, &s.client_key],
        "rok-cert-decision",
    );
    let auditor = keys.ec.sign(&claims("i.general", "auditors"));
    let history = decision_history(
        &s.url,
        &s.ca,
        REFERENCE_PLAN,
        &auditor,
        "rok-cert-decision",
        &version,
    );
    assert_gateway_recorded(&history);

    // A simulation run is recorded in the plan's history as its caller, through the command
    // service of the same process.
    let run = ctl(
        &s.url,
        &s.ca,
        &[
            "--token", &approver, "simulate", "--trials", "50", "--seed", "3",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let run: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(run["recorded_version"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(run["actor"]["team"], "alliance-approvers", "{run}");

    // A client that does not trust the server's CA never gets through the handshake; nor does
    // plaintext.
    let wrong_ca = ctl(&s.url, &s.wrong_ca, &["--token", &approver, "plan", "list"]);
    assert_eq!(wrong_ca.status.code(), Some(5), "{}", stderr(&wrong_ca));
    let plaintext = ctl(
        &s.url.replace("https://", "http://"),
        &s.ca,
        &["--token", &approver, "plan", "list"],
    );
    assert!(!plaintext.status.success());

    // Every refusal is in the security log; no token is in the server's output.
    let denials = ctl(&s.url, &s.ca, &["--token", &auditor, "audit", "denials"]);
    assert!(denials.status.success(), "{}", stderr(&denials));
    let denials = String::from_utf8_lossy(&denials.stdout);
    assert!(
        denials.matches("unauthenticated").count() >= refusals.len(),
        "{denials}"
    );
    for (token, _) in &refusals {
        s.server.assert_never_printed(token);
    }
    s.server.assert_never_printed(&approver);
}

#[test]
fn allianced_refuses_plaintext_beyond_loopback_unless_told() {
    let data = tempfile::tempdir().unwrap();
    let out = command("allianced")
        .args([
            "--listen",
            "0.0.0.0:0",
            "--dev-tokens-beyond-loopback",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("refusing to serve without TLS"),
        "{message}"
    );
}

/// The development token file's tokens are public: beyond loopback it is refused at start, unless
/// a flag says so by name; then the server serves.
#[test]
fn allianced_refuses_the_development_tokens_beyond_loopback_unless_told() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    let mut child = command("allianced")
        .args(["--listen", "0.0.0.0:0", "--plaintext", "--data-dir"])
        .arg(data.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It either says where it listens (and is stopped) or exits.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains(" listening on ") {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("it served the development tokens beyond loopback: {line}");
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("refusing the development token file")
            && message.contains("--dev-tokens-beyond-loopback"),
        "{message}"
    );
    let server = Server::start_binary(
        "allianced",
        data.path(),
        &[
            "--listen".into(),
            "0.0.0.0:0".into(),
            "--plaintext".into(),
            "--dev-tokens-beyond-loopback".into(),
        ],
        "warn",
    );
    server.wait_for_line(|line| line.contains("development token file is in use"));
}

/// Two instances on one Kafka topic, TLS everywhere: each forwards a command for a plan the
/// other writes over TLS, presenting its own certificate. A JWT caller's token travels on; a
/// caller known by its client certificate is passed on by name, which the other instance
/// believes only because the forwarding instance's certificate is a `[[peer]]`.
#[test]
fn instances_forward_over_tls_and_pass_on_a_certificate_caller() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, (config, cert, key, ca_file)) = instance_files(d, &format!("{ROK_GATEWAY}{PEER}"));
    let gateway = ca.client("rok.gateway", "urn:alliance:rok-jcs");
    let keys = keys::keys();
    let topic = format!("alliance-peers-{}-{}", std::process::id(), now());
    let mut args = peer_instance_args(
        &alliance_eventlog_kafka::local_broker().unwrap(),
        &topic,
        &config,
        (&cert, &key, &ca_file),
    );
    args.extend(["--tls-client-ca".to_owned(), ca_file.display().to_string()]);
    let first = Server::start_with_env("allianced", &d.join("a"), &args, "info", &[]);
    let second = Server::start_with_env("allianced", &d.join("b"), &args, "info", &[]);
    // The second writes half the partitions once the first has let them go.
    let writes_half = |server: &Server| {
        let line = server.wait_for_line(|l| {
            l.contains("writing partitions")
                && l.rsplit('[').next().unwrap().matches(',').count() == 3
        });
        line.rsplit('[')
            .next()
            .unwrap()
            .trim_end_matches([']', ')'])
            .split(',')
            .map(|p| p.trim().parse::<i32>().unwrap())
            .collect::<Vec<_>>()
    };
    let second_writes = writes_half(&second);
    writes_half(&first);
    let url = |server: &Server| {
        format!(
            "https://localhost:{}",
            server.addr.rsplit(':').next().unwrap()
        )
    };
    let (via, owner) = (url(&first), url(&second));

    // An approver (JWT) creates plans through the first instance until one is written by the
    // second: that creation was forwarded, token and all.
    let approver = keys.ec.sign(&claims("a.approver", "alliance-approvers"));
    let plan = (0..20)
        .map(|n| {
            let out = ctl(
                &via,
                &ca_file,
                &[
                    "--token",
                    &approver,
                    "plan",
                    "create",
                    "--name",
                    &format!("forwarded {n}"),
                    "--horizon-start",
                    "2020-01-01",
                    "--horizon-end",
                    "2035-12-31",
                ],
            );
            succeeded(&out)["plan_id"].as_str().unwrap().to_owned()
        })
        .find(|plan| {
            second_writes.contains(&alliance_eventlog_kafka::partition_of(
                plan.parse().unwrap(),
                8,
            ))
        })
        .expect("twenty plans, none written by the second instance");

    // The ROK gateway, known only by its certificate, proposes through the first instance.
    let gateway = [
        write(d, "gateway.pem", &gateway.cert_pem),
        write(d, "gateway.key", &gateway.key_pem),
    ];
    let version = propose_by_certificate(
        &via,
        &ca_file,
        &plan,
        [&gateway[0], &gateway[1]],
        "forwarded-proposal",
    );

    // The writer recorded the gateway (not the forwarding instance) as the actor.
    let auditor = keys.ec.sign(&claims("i.general", "auditors"));
    let history = decision_history(
        &owner,
        &ca_file,
        &plan,
        &auditor,
        "forwarded-proposal",
        &version,
    );
    assert_gateway_recorded(&history);
    assert!(
        !history.contains("allianced.alliance.internal"),
        "{history}"
    );
}

#[test]
fn auditors_witness_a_head_with_a_witness_key_of_the_identity_configuration() {
    use alliance_record::signing::Signer;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let d = d.as_path();
    // The writer's key and a ROK auditor's witness key, listed in the identity configuration.
    let writer = Signer::generate().unwrap();
    writer.write(&d.join("writer.pem")).unwrap();
    write(d, "writer.pub.pem", writer.public_pem());
    let rok = Signer::generate().unwrap();
    rok.write(&d.join("rok-audit.pem")).unwrap();
    write(d, "rok-audit.pub.pem", rok.public_pem());
    let stranger = Signer::generate().unwrap();
    stranger.write(&d.join("stranger.pem")).unwrap();
    let s = setup_with(
        dir,
        "[[signing_key]]\npublic_key = \"writer.pub.pem\"\n\
         [[witness_key]]\npublic_key = \"rok-audit.pub.pem\"\nside = \"rok\"\n",
        &[
            "--signing-key".into(),
            d.join("writer.pem").display().to_string(),
        ],
    );
    let keys = keys::keys();
    let auditor = keys.ec.sign(&claims("i.general", "auditors"));
    let witness = |key: &str| {
        ctl(
            &s.url,
            &s.ca,
            &[
                "--token",
                &auditor,
                "audit",
                "witness",
                "--key",
                d.join(key).to_str().unwrap(),
            ],
        )
    };

    // A key the configuration does not list is refused (exit 2), naming it.
    let refused = witness("stranger.pem");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&stranger.id().to_string()),
        "{}",
        stderr(&refused)
    );
    // The ROK's witness key is taken, and VerifyPlan reports the ROK witnessed that version.
    let witnessed = witness("rok-audit.pem");
    assert!(witnessed.status.success(), "{}", stderr(&witnessed));
    let witnessed: serde_json::Value = serde_json::from_slice(&witnessed.stdout).unwrap();
    let at = witnessed["plan_version"].as_u64().unwrap();
    let verified = ctl(
        &s.url,
        &s.ca,
        &[
            "--token",
            &auditor,
            "audit",
            "verify",
            "--plan",
            REFERENCE_PLAN,
        ],
    );
    assert!(verified.status.success(), "{}", stderr(&verified));
    let verified: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["unsigned_through"], 0, "{verified}");
    let vouched = &verified["vouched"][0];
    assert_eq!(
        (
            &vouched["recorded_at"],
            &vouched["version"],
            &vouched["side"],
            &vouched["key_id"],
            &vouched["verified"]
        ),
        (
            &json!(at),
            &json!(at - 1),
            &json!("rok"),
            &json!(rok.id().to_string()),
            &json!(true)
        ),
        "{verified}"
    );
}

/// What a stranger's gRPC server received: the metadata of each request.
#[derive(Clone, Default)]
struct Received(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl tonic::server::NamedService for Received {
    const NAME: &'static str = "alliance.v1.PlanCommands";
}

impl<B: Send + 'static> tonic::codegen::Service<tonic::codegen::http::Request<B>> for Received {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        alliance_stdx::lock(&self.0).push(format!("{} {:?}", request.uri(), request.headers()));
        std::future::ready(Ok(tonic::Status::unimplemented("a stranger").into_http()))
    }
}

/// Someone allowed to join the writers' group is not a writer for it: a member that claims a
/// partition with `client.id` `x@127.0.0.1:<port>` and serves TLS there with a certificate the
/// deployment's CA signed (for that address, but naming no `[[peer]]`) receives no command and
/// no token; a command for a plan in its partitions is answered UNAVAILABLE naming it.
#[test]
fn a_stranger_in_the_writers_group_receives_no_command_and_no_token() {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, (config, cert, key, ca_file)) = instance_files(d, PEER);
    let stranger = ca.instance("stranger.alliance.internal");
    let keys = keys::keys();
    let topic = format!("alliance-stranger-{}-{}", std::process::id(), now());
    let bootstrap = alliance_eventlog_kafka::local_broker().unwrap();
    let args = peer_instance_args(&bootstrap, &topic, &config, (&cert, &key, &ca_file));
    let server = Server::start_with_env("allianced", &d.join("a"), &args, "info", &[]);

    // The stranger's gRPC server, over TLS with its CA-signed certificate.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let received = Received::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(&stranger.cert_pem, &stranger.key_pem),
    );
    let serving = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(received.clone())
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    runtime.spawn(serving);

    // It joins the writers' group as `alliance-commands.{topic}` members do, naming its address.
    let member: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("alliance-commands.{topic}"))
        .set("client.id", format!("x@127.0.0.1:{port}"))
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    member.subscribe(&[&topic]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polling = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = member.poll(std::time::Duration::from_millis(100));
            }
        })
    };
    // The instance lets half the partitions go to the stranger.
    let kept: Vec<i32> = server
        .wait_for_line(|l| {
            l.contains("writing partitions")
                && l.rsplit('[').next().unwrap().matches(',').count() == 3
        })
        .rsplit('[')
        .next()
        .unwrap()
        .trim_end_matches([']', ')'])
        .split(',')
        .map(|p| p.trim().parse().unwrap())
        .collect();

    // A plan whose partition the stranger holds, created through the instance.
    let plan = std::iter::repeat_with(uuid::Uuid::now_v7)
        .find(|plan| !kept.contains(&alliance_eventlog_kafka::partition_of(*plan, 8)))
        .unwrap()
        .to_string();
    let approver = keys.ec.sign(&claims("a.approver", "alliance-approvers"));
    let url = format!(
        "https://localhost:{}",
        server.addr.rsplit(':').next().unwrap()
    );
    let status = runtime.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca.pem));
        let channel = alliance_auth::endpoint(&url, Some(&tls))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = alliance_proto::v1::plan_commands_client::PlanCommandsClient::new(channel);
        let mut request = tonic::Request::new(alliance_proto::v1::CreatePlanRequest {
            meta: Some(alliance_proto::v1::CommandMeta {
                command_id: format!("stranger-{plan}"),
                plan_id: plan.clone(),
                ..Default::default()
            }),
            name: "claimed by a stranger".into(),
            horizon_start: Some(alliance_proto::v1::Date {
                year: 2026,
                month: 1,
                day: 1,
            }),
            horizon_end: Some(alliance_proto::v1::Date {
                year: 2035,
                month: 12,
                day: 31,
            }),
            ..Default::default()
        });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {approver}").parse().unwrap(),
        );
        client.create_plan(request).await.unwrap_err()
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    polling.join().unwrap();

    let received = alliance_stdx::lock(&received.0).clone();
    assert!(
        !received.iter().any(|r| r.contains(&approver)),
        "the stranger received the caller's token: {received:?}"
    );
    assert!(received.is_empty(), "the stranger received {received:?}");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(&format!("127.0.0.1:{port}"))
            && status.message().contains("stranger.alliance.internal"),
        "{status:?}"
    );
}

/// The arguments of an `allianced` on Kafka with the identity configuration `config`, serving
/// TLS with `cert` and `key` and calling its peers with them, trusting `ca` for its peers.
fn peer_instance_args(
    bootstrap: &str,
    topic: &str,
    config: &std::path::Path,
    (cert, key, ca): (&std::path::Path, &std::path::Path, &std::path::Path),
) -> Vec<String> {
    let [config, cert, key, ca] = [config, cert, key, ca].map(|p| p.display().to_string());
    crate::support::on_topic(
        bootstrap,
        topic,
        &[
            "--kafka-session-timeout-ms",
            "2000",
            "--skip-reference-plan",
            "--auth-config",
            &config,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--peer-ca",
            &ca,
            "--peer-cert",
            &cert,
            "--peer-key",
            &key,
        ],
    )
}
