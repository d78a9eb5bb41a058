//! A bearer token is a password: `alliancectl` never sends one in clear (`http://`) to a host
//! other than this machine unless `--insecure-plaintext` says so; it exits 9 (`insecure`)
//! before it connects.

use std::io::Read;
use std::net::{IpAddr, TcpListener};

use crate::support::{Server, Services, ctl_with_plan};

/// This machine's own address on its first non-loopback interface (the one a route to a
/// documentation address leaves by; nothing is sent), when it has one.
fn own_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A TCP listener on every interface, reached at this machine's own non-loopback address (or,
/// without one, a documentation address nothing answers at: the refusal comes before any
/// connection either way).
fn listener() -> (TcpListener, String, bool) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    match own_address() {
        Some(ip) => (listener, format!("http://{ip}:{port}"), true),
        None => (listener, format!("http://198.51.100.1:{port}"), false),
    }
}

/// Whether a connection is waiting to be accepted (the kernel completed it), without waiting.
fn connected(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_not_sent_in_clear_to_another_host() {
    let (listener, url, reachable) = listener();
    let out = ctl_with_plan(
        &url,
        Some("dev-alliance-approvers"),
        None,
        &["plan", "list"],
    )
    .await;
    let line = out.refused(9);
    assert!(line.starts_with("error: insecure: "), "{line}");
    assert!(line.contains(&url), "{line}");
    assert!(line.contains("--insecure-plaintext"), "{line}");
    assert!(line.contains("https://"), "{line}");
    if reachable {
        assert!(!connected(&listener), "alliancectl connected to {url}");
    } else {
        eprintln!("no non-loopback address on this machine: the connection is not checked");
    }

    // JSON names the kind; `status` is held to the same rule.
    let out = ctl_with_plan(
        &url,
        Some("dev-alliance-approvers"),
        None,
        &["--output", "json", "plan", "list"],
    )
    .await;
    let error = out.refused_json(9);
    assert_eq!(error["error"]["code"], "insecure", "{error}");
    let out = ctl_with_plan(&url, Some("dev-auditors"), None, &["status"]).await;
    assert_eq!(out.code, Some(9), "{}", out.stderr);
    if reachable {
        assert!(
            !connected(&listener),
            "alliancectl status connected to {url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_plaintext_sends_it_and_no_token_needs_no_flag() {
    let (listener, url, reachable) = listener();
    if !reachable {
        eprintln!("no non-loopback address on this machine: nothing to connect to");
        return;
    }
    // Told to, it connects (and the peer, which speaks no gRPC, hangs up: unavailable).
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut preface = [0u8; 24];
        stream.read_exact(&mut preface).unwrap();
        assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        listener
    });
    let out = ctl_with_plan(
        &url,
        Some("dev-alliance-approvers"),
        None,
        &["--insecure-plaintext", "plan", "list"],
    )
    .await;
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    let listener = accept.join().unwrap();

    // Without a credential there is nothing to protect: no flag needed.
    let accept = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let out = ctl_with_plan(&url, None, None, &["plan", "list"]).await;
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    accept.join().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_goes_over_http_to_this_machine() {
    let server = Server::start(Services::default()).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    for url in [server.url.clone(), format!("http://localhost:{port}")] {
        let out = ctl_with_plan(&url, Some("dev-auditors"), None, &["plan", "list"]).await;
        out.succeeded();
    }
    server.stop().await;
}
