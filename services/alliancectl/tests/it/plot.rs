//! End to end: `alliancectl plot` against the real command and query services.
//!
//! The server is started by `support` as in `cli.rs` (a fresh `SqliteLog` in a temp dir, the
//! command service, and the `PostureQueries` read model following the same log, on an ephemeral
//! loopback port with the development token file), after loading a small plan through the
//! same path as the reference plan: three U.S. elements, two ROK capability areas, an adopted
//! withdrawal of the brigade on 2027-09-30 and an adopted wartime OPCON transfer on 2028-12-01.
//! The binary runs on the blocking pool while the server keeps serving; `plot` itself waits for
//! the read model to reach the plan's version, so nothing sleeps.

use std::path::{Path, PathBuf};

use crate::support::{Run, Server, Services, decode_png};
use alliance_commands::reference::ReferencePlan;
use alliance_tests::server::tokens::AUDITOR;
use serde_json::{Value, json};

const PLAN: &str = "019a0000-0000-7000-8000-00000000c0de";
/// The size `plot` renders at.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;
/// The colour of the OPCON transfer marker.
const OPCON_RED: [u8; 3] = [192, 40, 40];

/// Horizon 2024–2031. U.S.: a ground combat brigade (4,500), a fighter wing (2,500) and a
/// headquarters (600), all from 2024-01-01; the brigade is withdrawn on 2027-09-30 by an
/// adopted decision. ROK: missile defense 40 from 2024, command and control 55 from 2025.
/// Wartime OPCON passes to the ROK on 2028-12-01 by an adopted decision.
fn small_plan() -> ReferencePlan {
    let element = |id: &str, component: &str, kind: &str, personnel: u32| {
        json!({ "as": "us-force-planning", "command": {
            "command": "register_force_element",
            "element": { "id": id, "name": id, "side": "us", "component": component,
                         "kind": kind, "personnel": personnel, "equipment": {}, "base": "Camp Humphreys" },
            "present_from": "2024-01-01" } })
    };
    let level = |area: &str, level: u32, as_of: &str| {
        json!({ "as": "rok-jcs", "command": { "command": "record_capability_level",
            "side": "rok", "area": area, "level": level, "as_of": as_of } })
    };
    let decision = |team: &str, id: &str, on: &str, sides: Value| {
        json!({ "as": team, "command": { "command": "propose_decision", "decision_id": id,
            "title": id, "rationale": "test", "effective_date": on, "required_sides": sides } })
    };
    let endorse = |team: &str, id: &str| json!({ "as": team, "command": { "command": "endorse_decision", "decision_id": id } });
    let adopt = |id: &str| json!({ "as": "alliance-approvers", "command": { "command": "adopt_decision", "decision_id": id } });
    let entries = vec![
        json!({ "as": "alliance-approvers", "command": { "command": "create_plan", "plan_id": PLAN,
            "name": "Plot test plan", "horizon_start": "2024-01-01", "horizon_end": "2031-12-31" } }),
        element("abct", "army", "ground_combat_brigade", 4500),
        element("fighter-wing", "air_force", "fighter_squadron", 2500),
        element("hq", "joint", "headquarters", 600),
        level("missile_defense", 40, "2024-01-01"),
        level("command_and_control", 55, "2025-01-01"),
        json!({ "as": "rok-jcs", "command": { "command": "define_condition",
            "condition_id": "rok-c2-ready", "title": "ROK-led C2 certified",
            "area": "command_and_control", "threshold": null } }),
        json!({ "as": "rok-jcs", "command": { "command": "assess_condition",
            "condition_id": "rok-c2-ready", "assessed_on": "2026-01-01", "status": "met",
            "value": null } }),
        decision(
            "us-force-planning",
            "withdraw-abct",
            "2027-09-30",
            json!(["us"]),
        ),
        json!({ "as": "us-force-planning", "command": { "command": "plan_step",
            "decision_id": "withdraw-abct", "step": "withdraw_element", "element_id": "abct",
            "on": "2027-09-30" } }),
        endorse("us-force-planning", "withdraw-abct"),
        adopt("withdraw-abct"),
        decision(
            "rok-jcs",
            "opcon-transfer",
            "2028-12-01",
            json!(["us", "rok"]),
        ),
        json!({ "as": "rok-jcs", "command": { "command": "plan_step",
            "decision_id": "opcon-transfer", "step": "transfer_opcon", "on": "2028-12-01",
            "conditions": ["rok-c2-ready"] } }),
        endorse("rok-jcs", "opcon-transfer"),
        endorse("us-force-planning", "opcon-transfer"),
        adopt("opcon-transfer"),
    ];
    serde_json::from_value(json!({ "plan_id": PLAN, "name": "Plot test plan", "entries": entries }))
        .unwrap()
}

/// The command and query services with [`small_plan`] loaded, on an ephemeral loopback port.
async fn start() -> Server {
    Server::start(Services {
        plan: Some(small_plan()),
        ..Services::default()
    })
    .await
}

impl Server {
    /// Runs `alliancectl plot` with `args` as an auditor (read-only).
    async fn plot(&self, args: &[&str]) -> Run {
        self.ctl(AUDITOR, &[&["plot"][..], args].concat()).await
    }
}

/// The text of every `<text>` element, after checking the document is one balanced `<svg>`.
fn svg_texts(svg: &str) -> Vec<String> {
    assert!(svg.starts_with("<svg "), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(&format!(r#"width="{WIDTH}" height="{HEIGHT}""#)));
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    svg.split("<text")
        .skip(1)
        .map(|t| {
            let start = t.find('>').unwrap() + 1;
            let end = t.find("</text>").unwrap();
            t[start..end].trim().to_owned()
        })
        .collect()
}

/// Every file in `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The `--out` stem of a chart written in `dir`: `posture`.svg and `posture`.png.
fn stem_in(dir: &tempfile::TempDir) -> String {
    dir.path().join("posture").to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn plot_writes_an_svg_and_a_png_of_the_plan() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let stem_arg = &stem_in(&dir);

    // The whole horizon (the default): the brigade, then its withdrawal, then the transfer.
    let out = server.plot(&["--plan-id", PLAN, "--out", stem_arg]).await;
    let svg_path = dir.path().join("posture.svg");
    let png_path = dir.path().join("posture.png");
    assert_eq!(
        out.ok(),
        format!("{}\n{}", svg_path.display(), png_path.display())
    );

    let (width, height, pixels) = decode_png(&std::fs::read(&png_path).unwrap());
    assert_eq!((width, height), (WIDTH, HEIGHT));
    let red = pixels.iter().filter(|p| **p == OPCON_RED).count();
    assert!(red > 500, "the OPCON marker is drawn: {red} pixels");
    assert!(pixels.iter().filter(|p| **p == [255, 255, 255]).count() > pixels.len() / 3);

    let texts = svg_texts(&std::fs::read_to_string(&svg_path).unwrap());
    let has = |s: &str| texts.iter().any(|t| t == s);
    assert!(has("Plot test plan"), "{texts:?}");
    for label in [
        "Ground combat brigades",
        "Fighter squadrons",
        "Headquarters",
        "Missile defense",
        "Command and control",
        "Wartime OPCON to ROK",
        "2028-12-01 (opcon-transfer)",
        "Adopted decision",
    ] {
        assert!(has(label), "no {label:?} in {texts:?}");
    }
    // Only kinds and areas the plan has, only adopted decisions.
    for absent in ["THAAD", "Air defense", "Munitions", "Proposed decision"] {
        assert!(!has(absent), "{absent:?} in {texts:?}");
    }
    for year in ["2024", "2026", "2028", "2030"] {
        assert!(has(year), "no year {year} on the x axis: {texts:?}");
    }
    assert!(has("Year") && has("Personnel") && has("Capability level"));
    assert!(!has("Required level (model), dotted"), "no model given");

    // With the model data, each area's required level is drawn beside the ROK levels.
    let with_model = dir.path().join("with-model");
    let model = crate::support::repo().join("deploy/simulation-model.toml");
    server
        .plot(&[
            "--plan-id",
            PLAN,
            "--model",
            model.to_str().unwrap(),
            "--out",
            with_model.to_str().unwrap(),
        ])
        .await
        .ok();
    let texts = svg_texts(&std::fs::read_to_string(dir.path().join("with-model.svg")).unwrap());
    assert!(
        texts.iter().any(|t| t == "Required level (model), dotted"),
        "{texts:?}"
    );
    let missing = server
        .plot(&[
            "--plan-id",
            PLAN,
            "--model",
            "/no/such/model.toml",
            "--out",
            stem_arg,
        ])
        .await;
    assert!(missing.refused(2).contains("--model"));

    // After the withdrawal and before the transfer: no brigade, no OPCON marker.
    let before = dir.path().join("before");
    let out = server
        .plot(&[
            "--plan-id",
            PLAN,
            "--from",
            "2028-01-01",
            "--to",
            "2028-11-30",
            "--out",
            before.to_str().unwrap(),
            "--output",
            "json",
        ])
        .await;
    let printed = out.json();
    assert_eq!(
        printed,
        json!({
            "svg": dir.path().join("before.svg").to_str().unwrap(),
            "png": dir.path().join("before.png").to_str().unwrap(),
        })
    );
    let texts = svg_texts(&std::fs::read_to_string(dir.path().join("before.svg")).unwrap());
    let has = |s: &str| texts.iter().any(|t| t == s);
    assert!(has("Fighter squadrons") && has("Headquarters"), "{texts:?}");
    for absent in [
        "Ground combat brigades",
        "Wartime OPCON to ROK",
        "Adopted decision",
    ] {
        assert!(!has(absent), "{absent:?} in {texts:?}");
    }
    let (_, _, pixels) = decode_png(&std::fs::read(dir.path().join("before.png")).unwrap());
    assert!(
        !pixels.contains(&OPCON_RED),
        "no OPCON marker before 2028-12"
    );

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_writes_no_file() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let stem = &stem_in(&dir);

    let unknown = "019a0000-0000-7000-8000-0000000000ff";
    let out = server.plot(&["--plan-id", unknown, "--out", stem]).await;
    let line = out.refused(6);
    assert!(line.starts_with("error: not found: "), "{line}");

    let out = server
        .plot(&[
            "--plan-id",
            PLAN,
            "--from",
            "2030-01-01",
            "--to",
            "2025-01-01",
            "--out",
            stem,
        ])
        .await;
    assert_eq!(
        out.refused(2),
        "error: invalid input: --from 2030-01-01 is after --to 2025-01-01"
    );

    // --from past the end of the plan's horizon (the default --to).
    let out = server
        .plot(&["--plan-id", PLAN, "--from", "2032-01-01", "--out", stem])
        .await;
    assert_eq!(
        out.refused(2),
        "error: invalid input: --from 2032-01-01 is after the plan's horizon end 2031-12-31"
    );

    assert_eq!(files(dir.path()), Vec::<PathBuf>::new());
    server.stop().await;
}
