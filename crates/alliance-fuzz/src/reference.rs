//! The plan every fuzzed command is decided against: the reference plan of
//! `deploy/reference-plan.json`, issued as the teams of `deploy/dev-tokens.toml`, loaded once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use alliance_commands::reference::ReferencePlan;
use alliance_domain::{CommandContext, Event, Plan, PlanId, TeamId, Version, decide, evolve};
use alliance_server::{Authenticator, Caller, TokenFile};

/// The reference plan folded through `decide` and `evolve`, with its state at every version.
pub struct Reference {
    pub plan: ReferencePlan,
    pub auth: Authenticator,
    /// The plan's events, oldest first, each with the team that issued the command behind it.
    pub events: Vec<(TeamId, Event)>,
    /// `states[v]`: the plan at version `v` (`states[0]` is the plan before its first event).
    states: Vec<Plan>,
}

impl Reference {
    pub fn plan_id(&self) -> PlanId {
        self.plan.plan_id
    }

    /// The plan at its latest version.
    pub fn latest(&self) -> &Plan {
        // `states` always holds the empty plan at least.
        &self.states[self.states.len() - 1]
    }

    /// The plan at `version`, if it has reached it.
    pub fn at(&self, version: Version) -> Option<&Plan> {
        self.states.get(usize::try_from(version).ok()?)
    }

    /// The caller a team acts as, as the service authenticates it.
    pub fn caller(&self, team: &str) -> Option<Caller> {
        let team = TeamId::parse(team).ok()?;
        self.auth.team_caller(&team, "fuzz")
    }
}

/// A file of the repository, found from this crate's manifest directory.
pub fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// The reference plan, loaded on first use.
///
/// # Panics
///
/// When the reference plan or the token file cannot be read, or the plan does not fold: the
/// fuzz targets have nothing to decide against then.
pub fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| load().unwrap_or_else(|e| panic!("reference plan: {e}")))
}

fn load() -> Result<Reference, String> {
    let tokens =
        TokenFile::load(&repository_file("deploy/dev-tokens.toml")).map_err(|e| e.to_string())?;
    let auth = Authenticator::from_token_file(&tokens).map_err(|e| e.to_string())?;
    let plan = ReferencePlan::read(&repository_file("deploy/reference-plan.json"))
        .map_err(|e| e.to_string())?;
    // The state at every version, folded as the service folds each command: decided as the
    // entry's team, then evolved event by event.
    let mut states = vec![Plan::default()];
    let mut events = Vec::new();
    let mut state = Plan::default();
    for (index, entry) in plan.entries.iter().enumerate() {
        let caller = auth
            .team_caller(&entry.team, "reference-plan")
            .ok_or_else(|| format!("entry {index} is issued as unknown team {}", entry.team))?;
        let ctx = CommandContext {
            actor: caller.actor,
        };
        let mut command = entry.command.clone();
        auth.complete_grants(&mut command);
        let decided = decide(&state, &command, &ctx)
            .map_err(|e| format!("entry {index} ({}) was refused: {e}", entry.command.name()))?;
        for event in decided {
            state = evolve(state, &event);
            states.push(state.clone());
            events.push((entry.team.clone(), event));
        }
    }
    // The product's own fold must agree.
    let folded = plan.fold(&auth).map_err(|e| e.to_string())?;
    if folded != state {
        return Err("folding the reference plan event by event differs from its fold".into());
    }
    Ok(Reference {
        plan,
        auth,
        events,
        states,
    })
}
