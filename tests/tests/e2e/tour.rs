//! The README's tour, checked: the reference plan is served; teams edit it, conflict, endorse,
//! adopt and branch; a SIGKILLed server restarts with nothing acknowledged lost.

use alliance_tests::argv;

use crate::support::{AUDITOR, REFERENCE_PLAN, Server, assert_refused};

const US: &str = "dev-us-force-planning";
const ROK: &str = "dev-rok-jcs";
const APPROVERS: &str = "dev-alliance-approvers";

fn local() -> Vec<String> {
    vec!["--listen".into(), "127.0.0.1:0".into()]
}

#[test]
fn the_tour_runs_and_a_killed_server_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &local());
    server.assert_banner(|l| l.contains(REFERENCE_PLAN) && l.contains("0 already present"));

    // The reference plan is there, with its history adopted and the paper's proposals open.
    let list = server.ok(AUDITOR, &["plan", "list"]);
    assert!(list.contains(REFERENCE_PLAN), "{list}");
    assert_eq!(
        server.decision_status("hist-1994-peacetime-opcon"),
        "adopted"
    );
    assert_eq!(server.decision_status("opcon-wartime-transfer"), "proposed");
    let base = server.version();

    // The U.S. cell proposes keeping a Patriot battalion and plans a reduction on it.
    let proposed = server.json(
        US,
        &argv::decision_propose(
            "keep-patriot-bn",
            "Keep one Patriot battalion after 2029",
            "limited air defense stays, as the paper proposes",
            "2029-01-01",
            "us,rok",
        ),
    );
    let at = proposed["plan_version"].as_u64().unwrap();
    assert_eq!(at, base + 1);
    let at_str = at.to_string();
    server.ok(
        US,
        &[
            "element",
            "reduce",
            "--decision",
            "keep-patriot-bn",
            "--element",
            "35ada-bde",
            "--personnel",
            "900",
            "--equipment",
            "Patriot launcher=24",
            "--on",
            "2029-06-01",
            "--based-on",
            &at_str,
        ],
    );

    // A second planner edits the same element from the same version: a conflict naming the edit.
    let conflict = server.ctl(
        US,
        &[
            "element",
            "relocate",
            "--decision",
            "keep-patriot-bn",
            "--element",
            "35ada-bde",
            "--to-base",
            "Camp Humphreys",
            "--on",
            "2029-06-01",
            "--based-on",
            &at_str,
        ],
    );
    assert_refused(
        &conflict,
        3,
        &["ForceElementReductionPlanned", "element/35ada-bde"],
    );
    // An edit of another part of the plan from that same version goes through.
    server.ok(
        ROK,
        &[
            "condition",
            "assess",
            "--condition",
            "rok-missile-defense-70",
            "--on",
            "2026-11-01",
            "--status",
            "partially_met",
            "--value",
            "55",
            "--based-on",
            &at_str,
        ],
    );

    // Adoption needs both sides; the ROK endorsement completes it.
    server.ok(US, &["decision", "endorse", "keep-patriot-bn"]);
    let early = server.ctl(APPROVERS, &["decision", "adopt", "keep-patriot-bn"]);
    assert_refused(&early, 7, &["ROK"]);
    server.ok(ROK, &["decision", "endorse", "keep-patriot-bn"]);
    // The reduction takes U.S. forces below the statutory floor before the planned
    // certification: a new finding, refused until the approvers acknowledge it.
    let finding = server.ctl(APPROVERS, &["decision", "adopt", "keep-patriot-bn"]);
    assert_refused(
        &finding,
        7,
        &["NEW_FINDINGS", "constraint:us-personnel-floor"],
    );
    server.ok(
        APPROVERS,
        &[
            "decision",
            "adopt",
            "keep-patriot-bn",
            "--acknowledge",
            "constraint:us-personnel-floor",
        ],
    );
    assert_eq!(server.decision_status("keep-patriot-bn"), "adopted");

    // A scenario branch starts from the plan and leaves it untouched.
    let branch = server.json(US, &["plan", "branch", "--name", "Faster drawdown"]);
    assert_eq!(branch["plan_version"].as_u64(), Some(1));
    let before_kill = server.version();

    // Invalid input and an unknown token change nothing.
    let invalid = server.ctl(
        US,
        &argv::decision_propose("x", "", "r", "2099-01-01", "us"),
    );
    assert_eq!(invalid.status.code(), Some(2));
    assert_eq!(
        server.ctl("nobody", &["plan", "list"]).status.code(),
        Some(4)
    );
    assert_eq!(server.version(), before_kill);

    // SIGKILL, then restart on the same data: everything acknowledged is there, nothing reloads twice.
    server.kill();
    let server = Server::start(data.path(), &local());
    server.assert_banner(|l| l.contains("(0 entries loaded now"));
    assert_eq!(server.version(), before_kill);
    assert_eq!(server.decision_status("keep-patriot-bn"), "adopted");
    let list = server.ok(AUDITOR, &["plan", "list"]);
    assert!(list.contains("Faster drawdown"), "{list}");
}
