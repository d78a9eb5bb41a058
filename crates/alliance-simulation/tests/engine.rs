#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The engine on the reference plan and on small hand-made plans.

use std::collections::BTreeSet;
use std::path::Path;

use alliance_commands::reference::ReferencePlan;
use alliance_commands::{Authenticator, TokenFile};
use alliance_domain::Plan;
use alliance_simulation::{Control, LoadedModel, Window, run, scenario};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn reference_plan() -> Plan {
    let auth = Authenticator::from_token_file(
        &TokenFile::load(&repo().join("deploy/dev-tokens.toml")).unwrap(),
    )
    .unwrap();
    ReferencePlan::read(&repo().join("deploy/reference-plan.json"))
        .unwrap()
        .fold(&auth)
        .unwrap()
}

#[test]
fn the_reference_plan_runs() {
    let model = LoadedModel::reference();
    let plan = reference_plan();
    let d = &model.data.defaults;
    let s = scenario(
        &plan,
        true,
        &BTreeSet::new(),
        &model.data,
        Window::new(d.start, d.months),
    );
    let started = std::time::Instant::now();
    let outcome = run(&s, 10_000, 7, &Control::default()).unwrap();
    eprintln!("{:?}", started.elapsed());
    eprintln!("{}", outcome.headline());
    for r in &outcome.risks {
        eprintln!("{r:?}");
    }
    for c in &outcome.conditions {
        eprintln!("{c:?}");
    }
    for x in outcome.sensitivity.iter().take(5) {
        eprintln!("{x:?}");
    }
    for m in outcome.monthly.iter().step_by(6) {
        eprint!("{} pers {:.0} ", m.month, m.us_personnel.p50);
        for a in &m.areas {
            eprint!(
                "{:?}:{:.0}/{:.0}({:.2}) ",
                a.area, a.combined.p50, a.required.p50, a.shortfall_probability
            );
        }
        eprintln!();
    }
}
