//! The command line: the global options, one module per noun with its flags and how it runs,
//! and the dispatch from a parsed command to its noun.

mod arrangement;
mod audit;
mod capability;
mod clause;
mod condition;
mod constraint;
mod decision;
mod element;
mod flags;
mod mission;
mod opcon;
mod plan;
mod plot;
mod query;
mod rebuild;
mod simulate;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tonic::transport::ClientTlsConfig;

use self::arrangement::ArrangementCmd;
use self::audit::AuditCmd;
use self::capability::CapabilityCmd;
use self::clause::ClauseCmd;
use self::condition::ConditionCmd;
use self::constraint::ConstraintCmd;
use self::decision::DecisionCmd;
use self::element::ElementCmd;
use self::mission::MissionCmd;
use self::opcon::OpconCmd;
use self::plan::PlanCmd;
pub(crate) use self::plot::PlotArgs;
use self::query::{DecisionsArgs, DiffArgs, FindingsArgs, PostureArgs, SeriesArgs};
use self::watch::WatchArgs;
use crate::connect;
use crate::errors::{self, CliError, Exit};
use crate::output::{Format, Reply};
use crate::session::{self, Session};

const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "alliancectl",
    version,
    about = "Edit and inspect U.S.-ROK alliance modernization plans",
    after_help = errors::EXIT_CODES_HELP
)]
pub(crate) struct Cli {
    /// Address of the planning service (`status` takes several: repeat it).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "ALLIANCE_SERVER",
        value_name = "URL",
        default_value = "http://127.0.0.1:50051",
        action = clap::ArgAction::Append
    )]
    pub(crate) server: Vec<String>,
    /// Bearer token sent with every call (development: dev-us-force-planning, dev-rok-jcs,
    /// dev-nuclear-policy, dev-alliance-approvers, dev-auditors).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "ALLIANCE_TOKEN",
        hide_env_values = true
    )]
    pub(crate) token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate, for https:// servers.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CA_CERT", value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for servers that authenticate by certificate (mutual TLS).
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CLIENT_CERT", value_name = "FILE")]
    pub(crate) client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CLIENT_KEY", value_name = "FILE")]
    pub(crate) client_key: Option<PathBuf>,
    /// Send --token over plain http:// to a host other than this machine (a loopback
    /// address or localhost), where anyone on the path can read it. Refused otherwise (exit 9).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "ALLIANCE_INSECURE_PLAINTEXT"
    )]
    pub(crate) insecure_plaintext: bool,
    /// Profile with server, token, ca_cert, client_cert and client_key [default:
    /// ~/.config/alliancectl/config.toml, when it exists]; flags and variables win over it.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The client TLS built from --ca-cert, --client-cert and --client-key.
    #[arg(skip)]
    pub(crate) tls: Option<ClientTlsConfig>,
    /// Print a short text line or one JSON object (errors too, on stderr).
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = Format::Text)]
    pub(crate) output: Format,
    /// Seconds to wait for each reply.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) timeout: u64,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Create, branch, list and show plans.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Register force elements and plan their addition, withdrawal, reduction or relocation.
    #[command(subcommand)]
    Element(ElementCmd),
    /// Propose decisions and move them through endorsement to adoption.
    #[command(subcommand)]
    Decision(DecisionCmd),
    /// Schedule the conditions-based wartime OPCON transfer.
    #[command(subcommand)]
    Opcon(OpconCmd),
    /// Change who holds OPCON or commands the CFC.
    #[command(subcommand)]
    CommandArrangement(ArrangementCmd),
    /// Define agreement clauses (123 agreement, missile guidelines, ...) and amend them.
    #[command(subcommand)]
    Clause(ClauseCmd),
    /// Define conditions that gate decisions and assess them over time.
    #[command(subcommand)]
    Condition(ConditionCmd),
    /// Record capability levels and plan ROK capability investments.
    #[command(subcommand)]
    Capability(CapabilityCmd),
    /// Plan who leads each mission of the operational plans.
    #[command(subcommand)]
    Mission(MissionCmd),
    /// Define plan-level constraints (personnel floors and ceilings, combined capability) and
    /// record the certifications that lift them.
    #[command(subcommand)]
    Constraint(ConstraintCmd),
    /// The posture on a date: elements present, personnel, capability, command, clauses.
    Posture(PostureArgs),
    /// The posture at regular dates over a period, for charts.
    Series(SeriesArgs),
    /// What changed in a plan between two versions or record times.
    Diff(DiffArgs),
    /// The plan's decisions and their lifecycles, filtered.
    Decisions(DecisionsArgs),
    /// Where the plan breaks its own prerequisites, its OPCON transfer's conditions or its
    /// constraints (adopted, or --what-if), with the dates each holds and the decisions
    /// responsible; an adoption that adds one is refused unless acknowledged.
    Findings(FindingsArgs),
    /// Print the plan's events: those recorded so far, then each new one as it is recorded.
    Watch(WatchArgs),
    /// Chart U.S. personnel by element kind and ROK capability by area, month by month, with
    /// the decisions marked; writes STEM.svg and STEM.png and prints their paths.
    Plot(PlotArgs),
    /// Run a plan forward under uncertainty (Monte Carlo, month by month): sequencing risks,
    /// the OPCON transfer's conditions, which investment's delay matters most, shortfalls by
    /// area. A run of the plan as recorded (no overlay) is recorded in its history. Progress
    /// goes to stderr; --timeout bounds the wait for each progress report, not the whole run.
    Simulate(simulate::SimulateArgs),
    /// Simulation runs already made.
    #[command(subcommand)]
    Simulation(simulate::SimulationCmd),
    /// Rebuild every read model from the log (admin role); prints what was read and the
    /// models' digest.
    Rebuild,
    /// Audit a plan's history.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The health of each server (--server, repeatable): each alliance.v1 service it serves
    /// (grpc.health.v1), and its read models: plans, events, how far behind the log they are
    /// (per Kafka partition), their snapshot's age. Exit 5 when a server is unreachable or not
    /// serving.
    Status,
}

impl Cli {
    /// The command line, completed by the profile file: what neither a flag nor a variable
    /// set (the server only when left at its default).
    pub(crate) fn with_profile() -> Result<Self, CliError> {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.exit())?;
        let profile = connect::profile(cli.config.as_deref())?;
        let defaulted =
            matches.value_source("server") == Some(clap::parser::ValueSource::DefaultValue);
        if let (true, Some(server)) = (defaulted, profile.server) {
            cli.server = vec![server];
        }
        cli.token = cli.token.or(profile.token);
        cli.ca_cert = cli.ca_cert.or(profile.ca_cert);
        cli.client_cert = cli.client_cert.or(profile.client_cert);
        cli.client_key = cli.client_key.or(profile.client_key);
        cli.tls = connect::tls(
            cli.ca_cert.as_deref(),
            cli.client_cert.as_deref(),
            cli.client_key.as_deref(),
        )?;
        Ok(cli)
    }

    /// A session with the one server named, its credentials checked.
    pub(crate) fn session(&self) -> Result<Session, CliError> {
        let [server] = self.server.as_slice() else {
            return Err(CliError::invalid_input(format!(
                "--server: one server, not {} (only status takes several)",
                self.server.len()
            )));
        };
        let endpoint = session::endpoint(server, self.tls.as_ref())?;
        // An export verified offline sends nothing.
        if !matches!(
            self.command,
            Cmd::Audit(AuditCmd::Verify { plan: None, .. })
        ) {
            self.check_clear(server)?;
        }
        let auth = session::bearer(self.token.as_ref())?;
        Ok(Session::new(
            server,
            &endpoint,
            auth,
            Duration::from_secs(self.timeout),
        ))
    }

    /// Refuses to send --token in clear to `server` (see [`session::check_clear`]).
    pub(crate) fn check_clear(&self, server: &str) -> Result<(), CliError> {
        session::check_clear(server, self.token.is_some() && !self.insecure_plaintext)
    }
}

/// Runs `command` on the session's server.
pub(crate) async fn run(
    session: &mut Session,
    command: &Cmd,
    format: Format,
) -> Result<Reply, CliError> {
    let s = session;
    match command {
        Cmd::Posture(a) => query::posture(s, a).await,
        Cmd::Series(a) => query::series(s, a).await,
        Cmd::Diff(a) => query::diff(s, a).await,
        Cmd::Decisions(a) => query::decisions(s, a).await,
        Cmd::Findings(a) => query::findings(s, a).await,
        Cmd::Watch(a) => watch::watch(s, a, format).await,
        Cmd::Plot(a) => plot::run(s, a, format).await,
        Cmd::Rebuild => rebuild::run(s).await,
        // Checked before a session is opened (several servers).
        Cmd::Status => Err(CliError::new(Exit::Other, "status takes no session")),
        Cmd::Simulate(a) => simulate::simulate(s, a, format).await,
        Cmd::Simulation(cmd) => simulate::get(s, cmd, format).await,
        Cmd::Audit(cmd) => audit::run(s, cmd, format).await,
        Cmd::Plan(cmd) => plan::run(s, cmd).await,
        Cmd::Element(cmd) => element::run(s, cmd).await,
        Cmd::Decision(cmd) => decision::run(s, cmd).await,
        Cmd::Opcon(cmd) => opcon::run(s, cmd).await,
        Cmd::CommandArrangement(cmd) => arrangement::run(s, cmd).await,
        Cmd::Clause(cmd) => clause::run(s, cmd).await,
        Cmd::Condition(cmd) => condition::run(s, cmd).await,
        Cmd::Capability(cmd) => capability::run(s, cmd).await,
        Cmd::Mission(cmd) => mission::run(s, cmd).await,
        Cmd::Constraint(cmd) => constraint::run(s, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use alliance_domain::Side;
    use alliance_proto::v1;
    use clap::CommandFactory;
    use uuid::Uuid;

    use super::flags::record_point;
    use super::query::SeriesStep;
    use super::*;

    const PLAN: &str = "019a0000-0000-7000-8000-000000000001";

    /// Parses a command line given as one string (no quoting: arguments have no spaces).
    fn parse(line: &str) -> Result<Cli, clap::Error> {
        let line = line.replace("$PLAN", PLAN);
        Cli::try_parse_from(std::iter::once("alliancectl").chain(line.split_whitespace()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn element_add_parses_shared_flags() {
        let cli = parse(
            "element add --plan $PLAN --based-on 12 --decision d1 --on 2028-03-01 \
             --id 2id-abct --name ABCT --side US --component army --kind ground_combat_brigade \
             --personnel 4500 --equipment M1A2=90 --equipment M2=100 --base Humphreys \
             --command-id retry-1 --output json",
        )
        .unwrap();
        let Cmd::Element(ElementCmd::Add { element, step }) = &cli.command else {
            panic!("wrong command");
        };
        assert_eq!(cli.output, Format::Json);
        assert_eq!(element.side, Side::Us);
        assert_eq!(element.equipment.len(), 2);
        let meta = step.meta.proto().unwrap();
        assert_eq!(meta.based_on_version, Some(12));
        assert_eq!(meta.command_id, "retry-1");
        assert_eq!(meta.plan_id, PLAN);
    }

    #[test]
    fn command_id_defaults_to_a_uuid_v7() {
        let cli = parse("decision adopt d1 --plan $PLAN").unwrap();
        let Cmd::Decision(DecisionCmd::Adopt { meta, .. }) = &cli.command else {
            panic!("wrong command");
        };
        let meta = meta.proto().unwrap();
        let id = Uuid::parse_str(&meta.command_id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(meta.based_on_version, None);
    }

    #[test]
    fn sides_are_comma_separated() {
        let cli = parse(
            "decision propose --plan $PLAN --id d --title t --rationale r \
             --effective 2028-01-01 --sides us,ROK",
        )
        .unwrap();
        let Cmd::Decision(DecisionCmd::Propose { sides, .. }) = &cli.command else {
            panic!("wrong command");
        };
        assert_eq!(sides, &[Side::Us, Side::Rok]);
    }

    #[test]
    fn queries_parse_record_points() {
        let cli =
            parse("posture --plan $PLAN --on 2025-01-01 --as-of-version 3 --what-if").unwrap();
        let Cmd::Posture(a) = &cli.command else {
            panic!("wrong command");
        };
        assert!(a.what_if);
        assert_eq!(a.target.min_version, 0);
        let point = a.record.proto().and_then(|r| r.point);
        assert_eq!(point, Some(v1::record_point::Point::Version(3)));

        let cli = parse(
            "diff --plan $PLAN --from-recorded 2025-01-01T00:00:00Z --to-version 9 --min-version 9",
        )
        .unwrap();
        let Cmd::Diff(a) = &cli.command else {
            panic!("wrong command");
        };
        let from = record_point(a.from.from_version, a.from.from_recorded.as_ref());
        let Some(v1::record_point::Point::Time(t)) = from.and_then(|r| r.point) else {
            panic!("from is a time");
        };
        assert_eq!(t.seconds, 1_735_689_600);
        let to = record_point(a.to.to_version, a.to.to_recorded.as_ref());
        assert_eq!(
            to.and_then(|r| r.point),
            Some(v1::record_point::Point::Version(9))
        );
        assert_eq!(a.target.min_version, 9);

        let cli = parse("series --plan $PLAN --from 2024-01-01 --to 2024-12-31").unwrap();
        let Cmd::Series(a) = &cli.command else {
            panic!("wrong command");
        };
        assert_eq!(a.step, SeriesStep::Month);
        assert!(a.record.proto().is_none(), "the latest version");
    }

    #[tokio::test]
    async fn status_takes_several_servers_and_other_commands_one() {
        let cli = parse("status --server http://127.0.0.1:1 --server http://127.0.0.1:2").unwrap();
        assert!(matches!(cli.command, Cmd::Status));
        assert_eq!(cli.server, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let cli =
            parse("plan list --server http://127.0.0.1:1 --server http://127.0.0.1:2").unwrap();
        let refused = cli.session().err().expect("two servers refused");
        assert_eq!(refused.exit, Exit::InvalidInput);
        let cli = parse("plan list --server http://127.0.0.1:1").unwrap();
        assert!(cli.session().is_ok());
    }

    #[test]
    fn usage_errors_exit_2() {
        for line in [
            // not a calendar date
            "plan create --name x --horizon-start 2027-02-30 --horizon-end 2031-12-31",
            // unknown side
            "capability record --plan $PLAN --side nato --area isr --level 3 --as-of 2027-01-01",
            // a reduction that removes nothing
            "element reduce --plan $PLAN --decision d --element e --on 2028-01-01",
            // an arrangement change that changes nothing
            "command-arrangement change --plan $PLAN --decision d --on 2028-01-01",
            // no required sides
            "decision propose --plan $PLAN --id d --title t --rationale r --effective 2028-01-01",
            // no gating condition
            "opcon schedule --plan $PLAN --decision d --on 2029-06-01",
            // plan id not a UUID
            "decision adopt d1 --plan opcon",
            "--timeout 0 plan list",
            // not a calendar date
            "posture --plan $PLAN --on 2025-02-30",
            // two record points
            "posture --plan $PLAN --on 2025-01-01 --as-of-version 3 --as-recorded 2025-01-01T00:00:00Z",
            // not an RFC 3339 instant
            "series --plan $PLAN --from 2024-01-01 --to 2024-12-31 --as-recorded 2025-01-01",
            "series --plan $PLAN --from 2024-01-01 --to 2024-12-31 --step week",
            // no start
            "diff --plan $PLAN --to-version 3",
            "diff --plan $PLAN --from-version 1 --from-recorded 2025-01-01T00:00:00Z",
            "decisions --plan $PLAN --status pending",
            "watch --plan $PLAN --count 0",
        ] {
            let code = parse(line).err().map(|e| e.exit_code());
            assert_eq!(code, Some(2), "{line}");
        }
    }
}
