//! The simulation engine on the reference plan: wall time of N trials x the model's window,
//! with 1 and 2 threads.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use alliance_commands::reference::ReferencePlan;
use alliance_server::{Authenticator, TokenFile};
use alliance_simulation::{Control, LoadedModel, Window, run, scenario};

pub struct Figures {
    pub trials: u32,
    pub months: u32,
    /// (threads, median seconds, fastest, slowest)
    pub by_threads: Vec<(usize, f64, f64, f64)>,
    pub headline: String,
}

pub fn measure(trials: u32, runs: usize) -> anyhow::Result<Figures> {
    let auth =
        Authenticator::from_token_file(&TokenFile::load(Path::new("deploy/dev-tokens.toml"))?)?;
    let plan = ReferencePlan::read(Path::new("deploy/reference-plan.json"))?.fold(&auth)?;
    let model = LoadedModel::reference();
    let defaults = &model.data.defaults;
    let window = Window::new(defaults.start, defaults.months);
    let scenario = scenario(&plan, true, &BTreeSet::new(), &model.data, window);
    let mut by_threads = Vec::new();
    let mut headline = String::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let mut times = Vec::new();
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let outcome = pool
                .install(|| run(&scenario, trials, 7, &Control::default()))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            times.push(started.elapsed().as_secs_f64());
            headline = outcome.headline();
        }
        let (median, low, high) = crate::summarize(&times);
        by_threads.push((threads, median, low, high));
    }
    Ok(Figures {
        trials,
        months: window.months,
        by_threads,
        headline,
    })
}
