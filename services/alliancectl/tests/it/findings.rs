//! `alliancectl findings` and `decision adopt --acknowledge` against the real services with the
//! reference plan loaded: the plan passes its own check; a proposal that breaks the paper's
//! order is named with its dates; adopting one that adds a finding is refused (exit 7) until
//! acknowledged, and the acknowledgement shows.

use crate::support::{Server, Services, each, repo};
use alliance_commands::reference::ReferencePlan;
use alliance_tests::server::tokens::{APPROVER, AUDITOR, ROK, US};

const PLAN: &str = "019a0000-0000-7000-8000-000000000001";

#[tokio::test(flavor = "multi_thread")]
async fn findings_name_what_breaks_the_plan_and_adoption_needs_their_acknowledgement() {
    let plan = ReferencePlan::read(&repo().join("deploy/reference-plan.json")).unwrap();
    let server = Server::start(Services {
        plan: Some(plan),
        ..Services::default()
    })
    .await;
    let findings = |what_if: bool| {
        let mut args = vec!["findings", "--plan", PLAN, "--output", "json"];
        if what_if {
            args.push("--what-if");
        }
        args
    };
    let none = server.ctl(AUDITOR, &findings(true)).await.json();
    assert_eq!(none["findings"], serde_json::json!([]), "{none}");
    let text = server
        .ctl(AUDITOR, &["findings", "--plan", PLAN, "--what-if"])
        .await;
    assert!(
        text.ok()
            .ends_with("(what-if), 1950-01-01 to 2040-12-31: no findings")
    );

    // The THAAD battery withdrawn in 2027, before the transfer the decision says it follows:
    // below the U.S. floor before its certification, and before its prerequisite.
    for args in [
        &[
            "decision",
            "propose",
            "--plan",
            PLAN,
            "--id",
            "early",
            "--title",
            "early cut",
            "--rationale",
            "a probe",
            "--effective",
            "2027-01-01",
            "--sides",
            "us",
        ][..],
        &[
            "decision",
            "require",
            "--plan",
            PLAN,
            "early",
            "--after",
            "opcon-wartime-transfer",
        ][..],
        &[
            "element",
            "withdraw",
            "--plan",
            PLAN,
            "--decision",
            "early",
            "--element",
            "thaad-seongju",
            "--on",
            "2027-09-30",
        ][..],
        &[
            "mission",
            "assign",
            "--plan",
            PLAN,
            "--decision",
            "early",
            "--mission",
            "intelligence",
            "--lead",
            "rok",
            "--supporting",
            "us",
            "--on",
            "2027-09-30",
        ][..],
        &["decision", "endorse", "--plan", PLAN, "early"][..],
    ] {
        server.ctl(US, args).await.ok();
    }
    server
        .ctl(ROK, &["decision", "endorse", "--plan", PLAN, "early"])
        .await
        .ok();
    let found = server.ctl(AUDITOR, &findings(true)).await.json();
    let listed: Vec<(&str, &str, &str)> = each(&found["findings"], |f| {
        (
            f["id"].as_str().unwrap(),
            f["from"].as_str().unwrap(),
            f["until"].as_str().unwrap(),
        )
    });
    assert_eq!(
        listed,
        [
            ("constraint:us-personnel-floor", "2027-09-30", "2029-08-01"),
            ("prerequisite:early:1", "2027-09-30", "2028-12-01"),
        ],
        "{found}"
    );
    let posture = server
        .ctl(
            AUDITOR,
            &[
                "posture",
                "--plan",
                PLAN,
                "--on",
                "2027-10-01",
                "--what-if",
                "--output",
                "json",
            ],
        )
        .await
        .json();
    let intelligence = posture["missions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mission"] == "intelligence")
        .cloned();
    assert_eq!(
        intelligence,
        Some(serde_json::json!({
            "mission": "intelligence", "lead": "rok", "supporting": "us", "since": "2027-09-30"
        }))
    );

    let refused = server
        .ctl(APPROVER, &["decision", "adopt", "--plan", PLAN, "early"])
        .await;
    let line = refused.refused(7);
    assert!(
        line.contains("constraint:us-personnel-floor") && line.contains("prerequisite:early:1"),
        "{line}"
    );
    // The U.S. certifies from before the cut: the floor is no longer broken.
    server
        .ctl(
            US,
            &[
                "constraint",
                "waive",
                "--plan",
                PLAN,
                "--id",
                "us-personnel-floor",
                "--from",
                "2027-09-01",
                "--authority",
                "certification of the Secretary of Defense",
            ],
        )
        .await
        .ok();
    let refused = server
        .ctl(APPROVER, &["decision", "adopt", "--plan", PLAN, "early"])
        .await;
    let line = refused.refused(7);
    assert!(
        !line.contains("constraint:us-personnel-floor") && line.contains("prerequisite:early:1"),
        "{line}"
    );
    server
        .ctl(
            APPROVER,
            &[
                "decision",
                "adopt",
                "--plan",
                PLAN,
                "early",
                "--acknowledge",
                "prerequisite:early:1",
            ],
        )
        .await
        .ok();
    let adopted = server.ctl(AUDITOR, &findings(false)).await.json();
    assert_eq!(
        adopted["findings"][0]["id"], "prerequisite:early:1",
        "{adopted}"
    );
    assert_eq!(adopted["findings"][0]["acknowledged"], true, "{adopted}");
    server.stop().await;
}
