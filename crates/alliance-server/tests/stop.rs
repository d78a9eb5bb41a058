//! A stop asked for while a server is still retrying its start is never lost: SIGTERM sent to
//! this process during an attempt ends the retries at the next wait. Its own test binary, since
//! the signal goes to the whole process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_during_an_attempt_stops_the_retries() {
    let attempts = AtomicU32::new(0);
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        alliance_server::serve::retry_until_stopped("cannot reach the broker", || async {
            // The second attempt is asked to stop while it runs, as an operator's SIGTERM may
            // arrive at any moment; the attempt goes on a while before it fails.
            if attempts.fetch_add(1, Ordering::SeqCst) == 1 {
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &std::process::id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            Err::<(), _>("unreachable")
        }),
    )
    .await
    .expect("the retries never stopped: the SIGTERM was lost");
    let error = outcome.expect_err("stopped, not connected");
    assert!(error.starts_with("stopped while retrying"), "{error}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "no attempt after the stop"
    );
}
