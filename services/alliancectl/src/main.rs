//! `alliancectl`: the command-line client of the alliance planning backend (`alliance.v1`).
//!
//! Every edit is one `PlanCommands` RPC; the reply (or the refusal) is printed as one text line
//! or one JSON object, and the exit code says what kind of failure it was (see [`errors::Exit`]).
//! Reads (`posture`, `series`, `diff`, `decisions`) are one `PostureQueries` RPC each, printed as
//! tables or one JSON object; `watch` prints one line (or JSON object) per event as it arrives.
//! `simulate` streams a Monte Carlo run (`Simulation` RPCs): progress on stderr, then the result.
//! `status` checks the health of one or more servers and how far their read models lag.

mod audit;
mod connect;
mod errors;
mod output;
mod parse;
mod plot;
mod simplot;
mod simulate;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alliance_domain::{
    AgreementKind, CapabilityArea, ClauseStatus, Component, ConditionStatus, Date, DecisionStatus,
    ElementKind, Side,
};
use alliance_proto::convert::{
    agreement_from_proto, agreement_to_proto, area_from_proto, area_to_proto,
    clause_status_from_proto, clause_status_to_proto, component_from_proto, component_to_proto,
    condition_status_from_proto, condition_status_to_proto, date_to_proto,
    decision_status_from_proto, decision_status_to_proto, kind_from_proto, kind_to_proto,
    side_from_proto, side_to_proto,
};
use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use alliance_proto::v1::plan_commands_client::PlanCommandsClient;
use alliance_proto::v1::posture_queries_client::PostureQueriesClient;
use alliance_proto::v1::read_model_admin_client::ReadModelAdminClient;
use clap::{Args, Parser, Subcommand};
use tonic::Code;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use uuid::Uuid;

use crate::errors::{CliError, Exit};
use crate::output::{Format, Reply};
use crate::parse::enum_of;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "alliancectl",
    version,
    about = "Edit and inspect U.S.-ROK alliance modernization plans",
    after_help = errors::EXIT_CODES_HELP
)]
struct Cli {
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
    server: Vec<String>,
    /// Bearer token sent with every call (development: dev-us-force-planning, dev-rok-jcs,
    /// dev-nuclear-policy, dev-alliance-approvers, dev-auditors).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "ALLIANCE_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate, for https:// servers.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for servers that authenticate by certificate (mutual TLS).
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CLIENT_CERT", value_name = "FILE")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CLIENT_KEY", value_name = "FILE")]
    client_key: Option<PathBuf>,
    /// Send --token over plain http:// to a host other than this machine (a loopback
    /// address or localhost), where anyone on the path can read it. Refused otherwise (exit 9).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "ALLIANCE_INSECURE_PLAINTEXT"
    )]
    insecure_plaintext: bool,
    /// Profile with server, token, ca_cert, client_cert and client_key [default:
    /// ~/.config/alliancectl/config.toml, when it exists]; flags and variables win over it.
    #[arg(long, global = true, help_heading = GLOBAL, env = "ALLIANCE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The client TLS built from --ca-cert, --client-cert and --client-key.
    #[arg(skip)]
    tls: Option<ClientTlsConfig>,
    /// Print a short text line or one JSON object (errors too, on stderr).
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Seconds to wait for each reply.
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        value_name = "SECONDS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    timeout: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
    /// The posture on a date: elements present, personnel, capability, command, clauses.
    Posture(PostureArgs),
    /// The posture at regular dates over a period, for charts.
    Series(SeriesArgs),
    /// What changed in a plan between two versions or record times.
    Diff(DiffArgs),
    /// The plan's decisions and their lifecycles, filtered.
    Decisions(DecisionsArgs),
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

#[derive(Args)]
struct HistoryArgs {
    /// The plan.
    #[arg(long, env = "ALLIANCE_PLAN")]
    plan: Uuid,
    /// Every event naming this element, and every event of the decisions with a step on it.
    #[arg(long)]
    element: Option<String>,
    /// Every event of this decision.
    #[arg(long)]
    decision: Option<String>,
    /// Events recorded by this team.
    #[arg(long)]
    team: Option<String>,
    /// Events recorded by this user.
    #[arg(long)]
    user: Option<String>,
    /// Only events of this type, e.g. DecisionAdopted (repeatable).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_types: Vec<String>,
    /// Recorded at or after this instant (RFC 3339).
    #[arg(long, value_parser = parse::instant)]
    recorded_from: Option<prost_types::Timestamp>,
    /// Recorded before this instant (RFC 3339).
    #[arg(long, value_parser = parse::instant)]
    recorded_to: Option<prost_types::Timestamp>,
    /// Taking effect on or after this date.
    #[arg(long, value_parser = parse::date)]
    valid_from: Option<Date>,
    /// Taking effect on or before this date.
    #[arg(long, value_parser = parse::date)]
    valid_to: Option<Date>,
    /// Events per request (at most 1000).
    #[arg(long, default_value_t = 100)]
    page_size: u32,
    /// Wait until the read model holds this version of the plan (read your writes).
    #[arg(long)]
    min_version: Option<u64>,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute the plan's hash chain over the log (or over an export, offline): prints the
    /// number of events and the head hash, or the first record that was altered, removed,
    /// reordered or inserted (exit 8).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["plan", "file"])))]
    Verify {
        /// The plan to verify on the server.
        #[arg(long)]
        plan: Option<Uuid>,
        /// An export (`audit export`) to verify offline, without the server.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        /// A head kept earlier (`audit head --out`): the plan's history (or the export) must
        /// extend it (a truncated or rewritten history exits 8).
        #[arg(long)]
        head: Option<std::path::PathBuf>,
        /// With --file: a writer's public key (PEM) whose signatures verify, at any time
        /// (repeatable); without one (or --keys), signatures are not checked offline.
        #[arg(long, requires = "file")]
        trusted_key: Vec<std::path::PathBuf>,
        /// With --file: the identity configuration (or a file of keys alone) whose
        /// [[signing_key]] entries verify records and [[witness_key]] entries verify witnesses,
        /// each within its validity; the report says which side witnessed which version.
        #[arg(long, requires = "file")]
        keys: Option<std::path::PathBuf>,
    },
    /// Counter-sign the plan's head with an auditor's witness key (its public key a
    /// [[witness_key]] of the deployment): the head the server vouches for now, or one kept
    /// earlier (--head). The signature is recorded in the plan's history (auditor role), so a
    /// later rewrite of what was witnessed is found against it. Witness a head you verified.
    Witness {
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
        /// The witness's private key (Ed25519, PKCS#8 PEM).
        #[arg(long)]
        key: std::path::PathBuf,
        /// A head kept earlier (`audit head --out`) to witness, instead of the current one.
        #[arg(long)]
        head: Option<std::path::PathBuf>,
        /// Write the head witnessed (JSON, as `audit head --out` does) to this file, to keep.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        #[command(flatten)]
        ids: Ids,
    },
    /// Have the writer sign the plan's head (auditor or admin role): it appends an event it
    /// signs, whose signature covers every record up to the head through the chain. A history
    /// sealed before writers signed is signed so from now on ("unsigned up to version N,
    /// covered by the signature of version N+1").
    Sign {
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
        /// A head kept earlier (`audit head --out`) to sign, instead of the current one.
        #[arg(long)]
        head: Option<std::path::PathBuf>,
        #[command(flatten)]
        ids: Ids,
    },
    /// The plan's head after the server verified its chain, signed by the server's key: keep
    /// it (both sides), and give it to `audit verify --head` later.
    Head {
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
        /// The file to write the head to (JSON) [default: stdout].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// The plan's events, filtered, in version order (every page): the story of one element,
    /// one decision's events, one team's or user's edits, a period of record or valid time.
    History(HistoryArgs),
    /// The requests this server refused (unauthenticated, forbidden, invalid), oldest first,
    /// from its security log (audit role).
    Denials {
        /// Refused at or after this instant (RFC 3339).
        #[arg(long, value_parser = parse::instant)]
        since: Option<prost_types::Timestamp>,
        /// At most this many (at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Write the plan's records as the log holds them, with the chain's hashes, to a file (or
    /// stdout) as they arrive; `audit verify --file` checks such a file offline.
    Export {
        /// The plan to export.
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
        #[arg(long, value_enum, default_value_t = audit::ExportFormat::Jsonl)]
        format: audit::ExportFormat,
        /// The file to write [default: stdout].
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

// ---- shared flags --------------------------------------------------------------------------

/// Idempotency and tracing ids of a command.
#[derive(Args)]
#[command(next_help_heading = "Command options")]
struct Ids {
    /// Idempotency key (default: a fresh UUID v7); pass the same one to retry a command safely.
    #[arg(long)]
    command_id: Option<String>,
    /// The end-to-end unit of work (server default: the command id).
    #[arg(long)]
    correlation_id: Option<String>,
    /// The event or command that caused this one (server default: the command id).
    #[arg(long)]
    causation_id: Option<String>,
}

impl Ids {
    fn meta(&self, plan_id: String, based_on_version: Option<u64>) -> v1::CommandMeta {
        v1::CommandMeta {
            command_id: self
                .command_id
                .clone()
                .unwrap_or_else(|| Uuid::now_v7().to_string()),
            plan_id,
            based_on_version,
            correlation_id: self.correlation_id.clone().unwrap_or_default(),
            causation_id: self.causation_id.clone().unwrap_or_default(),
        }
    }
}

/// The plan a command edits and the version it was based on.
#[derive(Args)]
#[command(next_help_heading = "Command options")]
struct Meta {
    /// The plan to edit.
    #[arg(long, env = "ALLIANCE_PLAN")]
    plan: Uuid,
    /// The plan version this edit was based on: refused as a conflict (exit 3) if what it
    /// touches changed since. Default: the latest version.
    #[arg(long, value_name = "VERSION")]
    based_on: Option<u64>,
    #[command(flatten)]
    ids: Ids,
}

impl Meta {
    fn proto(&self) -> Option<v1::CommandMeta> {
        Some(self.ids.meta(self.plan.to_string(), self.based_on))
    }
}

/// A dated step of a decision.
#[derive(Args)]
struct Step {
    /// The (proposed) decision the step belongs to.
    #[arg(long)]
    decision: String,
    /// The date the step takes effect (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    on: Date,
    #[command(flatten)]
    meta: Meta,
}

impl Step {
    fn on(&self) -> Option<v1::Date> {
        Some(date_to_proto(self.on))
    }
}

#[derive(Args)]
struct Element {
    /// Element id, a short slug (e.g. 2id-abct).
    #[arg(long)]
    id: String,
    /// Display name, e.g. "2ID rotational ABCT".
    #[arg(long)]
    name: String,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    side: Side,
    #[arg(long, value_parser = enum_of(component_from_proto))]
    component: Component,
    #[arg(long, value_parser = enum_of(kind_from_proto))]
    kind: ElementKind,
    /// Personnel strength.
    #[arg(long)]
    personnel: u32,
    /// Major equipment (repeatable), e.g. --equipment M1A2=90.
    #[arg(long, value_name = "KIND=COUNT", value_parser = parse::equipment)]
    equipment: Vec<(String, u32)>,
    /// Base, e.g. "Camp Humphreys".
    #[arg(long)]
    base: String,
}

impl Element {
    fn proto(&self) -> Option<v1::ForceElement> {
        Some(v1::ForceElement {
            element_id: self.id.clone(),
            name: self.name.clone(),
            side: side_to_proto(self.side),
            component: component_to_proto(self.component),
            kind: kind_to_proto(self.kind),
            personnel: self.personnel,
            equipment: equipment(&self.equipment),
            base: self.base.clone(),
        })
    }
}

fn equipment(items: &[(String, u32)]) -> Vec<v1::EquipmentCount> {
    items
        .iter()
        .map(|(kind, count)| v1::EquipmentCount {
            kind: kind.clone(),
            count: *count,
        })
        .collect()
}

fn date(d: Date) -> Option<v1::Date> {
    Some(date_to_proto(d))
}

// ---- subcommands ---------------------------------------------------------------------------

#[derive(Subcommand)]
enum PlanCmd {
    /// Create a plan.
    Create {
        /// The plan's name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// First day of the planning horizon (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        horizon_start: Date,
        /// Last day of the planning horizon (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        horizon_end: Date,
        /// The new plan's id (default: the server mints one).
        #[arg(long)]
        id: Option<Uuid>,
        #[command(flatten)]
        ids: Ids,
    },
    /// Branch --plan into a new scenario plan.
    Branch {
        /// The plan's name.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The version to branch at (default: the latest).
        #[arg(long, value_name = "VERSION")]
        at_version: Option<u64>,
        /// The branch's id (default: the server mints one).
        #[arg(long)]
        id: Option<Uuid>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Grant a team a role on --plan (admins of the plan only): editor:forces,
    /// editor:capabilities, editor:agreements, editor:command_arrangements, editor:conditions,
    /// endorser:us, endorser:rok, adopter, auditor or admin.
    Grant {
        /// The team.
        #[arg(long)]
        team: String,
        /// The role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Revoke a team's role on --plan (admins of the plan only; the last admin stays).
    Revoke {
        /// The team.
        #[arg(long)]
        team: String,
        /// The role.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// List the plans and their current versions.
    List,
    /// Show a plan at its current version: decisions, elements, conditions, clauses.
    Show {
        /// The plan to show.
        #[arg(long, env = "ALLIANCE_PLAN")]
        plan: Uuid,
    },
}

#[derive(Subcommand)]
enum ElementCmd {
    /// Register a baseline force element, present from a date.
    Register {
        #[command(flatten)]
        element: Element,
        #[arg(long, value_parser = parse::date)]
        present_from: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Add a force element by a decision.
    Add {
        #[command(flatten)]
        element: Element,
        #[command(flatten)]
        step: Step,
    },
    /// Withdraw a force element by a decision.
    Withdraw {
        /// The force element's id.
        #[arg(long)]
        element: String,
        #[command(flatten)]
        step: Step,
    },
    /// Reduce a force element by a decision: remove personnel and/or equipment.
    Reduce {
        /// The force element's id.
        #[arg(long)]
        element: String,
        #[command(flatten)]
        cut: Cut,
        #[command(flatten)]
        step: Step,
    },
    /// Relocate a force element to another base by a decision.
    Relocate {
        /// The force element's id.
        #[arg(long)]
        element: String,
        /// The new base.
        #[arg(long)]
        to_base: String,
        #[command(flatten)]
        step: Step,
    },
}

/// What a reduction removes: at least one of the two.
#[derive(Args)]
#[group(required = true, multiple = true)]
struct Cut {
    /// Personnel to remove.
    #[arg(long)]
    personnel: Option<u32>,
    /// Equipment to remove (repeatable), e.g. --equipment M1A2=30.
    #[arg(long, value_name = "KIND=COUNT", value_parser = parse::equipment)]
    equipment: Vec<(String, u32)>,
}

#[derive(Subcommand)]
enum DecisionCmd {
    /// Propose a decision; its steps are added by the other subcommands.
    Propose {
        /// Decision id, a short slug (e.g. opcon-transfer).
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        /// Why: the argument for the decision.
        #[arg(long)]
        rationale: String,
        /// The date the decision takes effect (YYYY-MM-DD).
        #[arg(long, value_parser = parse::date)]
        effective: Date,
        /// The sides that must endorse it, e.g. us,rok.
        #[arg(long, required = true, value_delimiter = ',', value_parser = enum_of(side_from_proto))]
        sides: Vec<Side>,
        /// A decision this one supersedes once adopted (repeatable).
        #[arg(long)]
        supersedes: Vec<String>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Endorse a decision for the caller's side.
    Endorse {
        /// The decision's id.
        decision: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Adopt a decision endorsed by every required side.
    Adopt {
        /// The decision's id.
        decision: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Reject a decision.
    Reject {
        /// The decision's id.
        decision: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        meta: Meta,
    },
    /// Withdraw a proposed decision.
    Withdraw {
        /// The decision's id.
        decision: String,
        /// Why, for the record.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        meta: Meta,
    },
}

#[derive(Subcommand)]
enum OpconCmd {
    /// Schedule the wartime OPCON transfer, gated by conditions.
    Schedule {
        /// A condition that gates the transfer (repeatable, at least one).
        #[arg(long = "condition", value_name = "CONDITION", required = true)]
        conditions: Vec<String>,
        #[command(flatten)]
        step: Step,
    },
}

#[derive(Subcommand)]
enum ArrangementCmd {
    /// Change peacetime or wartime OPCON or the CFC commander.
    Change {
        #[command(flatten)]
        holders: Holders,
        #[command(flatten)]
        step: Step,
    },
}

/// Who holds what after the change: at least one.
#[derive(Args)]
#[group(required = true, multiple = true)]
struct Holders {
    #[arg(long, value_parser = enum_of(side_from_proto))]
    peacetime: Option<Side>,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    wartime: Option<Side>,
    #[arg(long, value_parser = enum_of(side_from_proto))]
    cfc_commander: Option<Side>,
}

#[derive(Subcommand)]
enum ClauseCmd {
    /// Define an agreement clause and its status since a date.
    Define {
        /// Clause id, a short slug (e.g. 123-enrichment).
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = enum_of(agreement_from_proto))]
        agreement: AgreementKind,
        #[arg(long)]
        title: String,
        #[arg(long, value_parser = enum_of(clause_status_from_proto))]
        status: ClauseStatus,
        #[arg(long, value_parser = parse::date)]
        since: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Amend a clause's status by a decision.
    Amend {
        /// The clause's id.
        #[arg(long)]
        clause: String,
        #[arg(long, value_parser = enum_of(clause_status_from_proto))]
        status: ClauseStatus,
        #[command(flatten)]
        step: Step,
    },
}

#[derive(Subcommand)]
enum ConditionCmd {
    /// Define a condition (e.g. "ROK missile-defense coverage >= 70").
    Define {
        /// Condition id, a short slug.
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The capability area the condition measures.
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: Option<CapabilityArea>,
        /// The level (0-100) the area must reach.
        #[arg(long)]
        threshold: Option<u32>,
        #[command(flatten)]
        meta: Meta,
    },
    /// Record an assessment of a condition.
    Assess {
        /// The condition's id.
        #[arg(long)]
        condition: String,
        #[arg(long, value_parser = parse::date)]
        on: Date,
        #[arg(long, value_parser = enum_of(condition_status_from_proto))]
        status: ConditionStatus,
        /// The measured value.
        #[arg(long)]
        value: Option<u32>,
        /// Free-text note on the assessment.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        meta: Meta,
    },
}

#[derive(Subcommand)]
enum CapabilityCmd {
    /// Record a side's capability level (0-100) in an area as of a date.
    Record {
        #[arg(long, value_parser = enum_of(side_from_proto))]
        side: Side,
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: CapabilityArea,
        /// Capability level on a 0-100 scale.
        #[arg(long)]
        level: u32,
        #[arg(long, value_parser = parse::date)]
        as_of: Date,
        #[command(flatten)]
        meta: Meta,
    },
    /// Plan a ROK capability investment by a decision.
    Invest {
        /// The (proposed) decision the investment belongs to.
        #[arg(long)]
        decision: String,
        /// Investment id, a short slug.
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = enum_of(area_from_proto))]
        area: CapabilityArea,
        /// What is bought, e.g. "L-SAM batteries".
        #[arg(long)]
        description: String,
        /// Capability points (0-100 scale) gained once fielded.
        #[arg(long)]
        level_gain: u32,
        /// The delivery date (YYYY-MM-DD), when the gain takes effect.
        #[arg(long, value_parser = parse::date)]
        delivery: Date,
        /// Programme cost in millions of U.S. dollars.
        #[arg(long, default_value_t = 0)]
        cost_musd: u64,
        #[command(flatten)]
        meta: Meta,
    },
}

// ---- queries -------------------------------------------------------------------------------

/// The plan a query reads, and the version it must reflect.
#[derive(Args)]
#[command(next_help_heading = "Query options")]
struct Target {
    /// The plan to read.
    #[arg(long, env = "ALLIANCE_PLAN")]
    plan: Uuid,
    /// Wait (within --timeout) until the read model holds at least this plan version, e.g.
    /// the one a command just returned; past the deadline: unavailable (exit 5).
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    min_version: u64,
}

/// The point of the plan's history to read: at most one (default: the latest version).
#[derive(Args)]
#[group(multiple = false)]
#[command(next_help_heading = "Query options")]
struct Record {
    /// Read the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    as_of_version: Option<u64>,
    /// Read the plan as it was recorded at this instant (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    as_recorded: Option<prost_types::Timestamp>,
}

impl Record {
    fn proto(&self) -> Option<v1::RecordPoint> {
        record_point(self.as_of_version, self.as_recorded.as_ref())
    }
}

/// A point on the record-time axis; `None` when neither is given.
fn record_point(
    version: Option<u64>,
    time: Option<&prost_types::Timestamp>,
) -> Option<v1::RecordPoint> {
    use v1::record_point::Point;
    let point = match (version, time) {
        (Some(v), _) => Point::Version(v),
        (None, Some(t)) => Point::Time(*t),
        (None, None) => return None,
    };
    Some(v1::RecordPoint { point: Some(point) })
}

#[derive(Args)]
struct PostureArgs {
    #[command(flatten)]
    target: Target,
    /// The date on the plan's timeline (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    on: Date,
    #[command(flatten)]
    record: Record,
    /// Also apply the proposed (not yet adopted) decisions.
    #[arg(long)]
    what_if: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SeriesStep {
    Month,
    Quarter,
    Year,
}

#[derive(Args)]
struct SeriesArgs {
    #[command(flatten)]
    target: Target,
    /// The first date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    from: Date,
    /// The last date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    to: Date,
    /// The interval between points.
    #[arg(long, value_enum, default_value_t = SeriesStep::Month)]
    step: SeriesStep,
    #[command(flatten)]
    record: Record,
    /// Also apply the proposed (not yet adopted) decisions.
    #[arg(long)]
    what_if: bool,
}

/// Where a diff starts: one of the two.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct DiffFrom {
    /// Compare from the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    from_version: Option<u64>,
    /// Compare from the plan as recorded at this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    from_recorded: Option<prost_types::Timestamp>,
}

/// Where a diff ends: at most one (default: the latest version).
#[derive(Args)]
#[group(multiple = false)]
struct DiffTo {
    /// Compare to the plan as it stood at this version.
    #[arg(long, value_name = "VERSION")]
    to_version: Option<u64>,
    /// Compare to the plan as recorded at this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse::instant)]
    to_recorded: Option<prost_types::Timestamp>,
}

#[derive(Args)]
struct DiffArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    from: DiffFrom,
    #[command(flatten)]
    to: DiffTo,
}

#[derive(Args)]
struct DecisionsArgs {
    #[command(flatten)]
    target: Target,
    /// Only decisions in this status.
    #[arg(long, value_parser = enum_of(decision_status_from_proto))]
    status: Option<DecisionStatus>,
    /// Only decisions that need this side's endorsement.
    #[arg(long, value_parser = enum_of(side_from_proto))]
    side: Option<Side>,
    /// Only decisions owned by this team.
    #[arg(long)]
    team: Option<String>,
    /// Only decisions effective on or after this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    effective_from: Option<Date>,
    /// Only decisions effective on or before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse::date)]
    effective_to: Option<Date>,
    #[command(flatten)]
    record: Record,
}

#[derive(Args)]
struct WatchArgs {
    /// The plan to watch.
    #[arg(long, env = "ALLIANCE_PLAN")]
    plan: Uuid,
    /// The first version to print (default: 1, the whole history).
    #[arg(long, value_name = "VERSION")]
    from_version: Option<u64>,
    /// Stop (exit 0) after this many events (postures with --posture-on); default: run until
    /// interrupted.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Watch the posture on this date instead of the events: printed as it stands, then again
    /// each time an edit changes it.
    #[arg(long, value_name = "DATE", value_parser = parse::date, conflicts_with = "from_version")]
    posture_on: Option<Date>,
    /// With --posture-on: apply proposed decisions too (what-if).
    #[arg(long, requires = "posture_on")]
    what_if: bool,
    /// Wait until the server's read model holds this version of the plan before watching (read
    /// your writes: a plan the read model does not hold yet is not found).
    #[arg(long, value_name = "VERSION")]
    min_version: Option<u64>,
}

#[derive(Args)]
struct PlotArgs {
    /// The plan to chart.
    #[arg(long, alias = "plan", env = "ALLIANCE_PLAN")]
    plan_id: Uuid,
    /// The first date (YYYY-MM-DD), then one point a month (default: the start of the plan's
    /// horizon).
    #[arg(long, value_parser = parse::date)]
    from: Option<Date>,
    /// The last date (YYYY-MM-DD; default: the end of the plan's horizon).
    #[arg(long, value_parser = parse::date)]
    to: Option<Date>,
    /// Chart the plan as it stood at this version.
    #[arg(
        long,
        value_name = "VERSION",
        alias = "as-of-version",
        conflicts_with = "record_time"
    )]
    record_version: Option<u64>,
    /// Chart the plan as recorded at this instant (RFC 3339, e.g. 2025-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339", alias = "as-recorded", value_parser = parse::instant)]
    record_time: Option<prost_types::Timestamp>,
    /// Also apply the proposed (not yet adopted) decisions, and mark them.
    #[arg(long)]
    what_if: bool,
    /// Where to write the chart: STEM.svg and STEM.png.
    #[arg(long, value_name = "PATH_STEM", default_value = "posture")]
    out: std::path::PathBuf,
}

// ---- running -------------------------------------------------------------------------------

/// A connection to the service and what goes with every call.
struct Session {
    server: String,
    client: PlanCommandsClient<Channel>,
    queries: PostureQueriesClient<Channel>,
    channel: Channel,
    auth: Option<AsciiMetadataValue>,
    timeout: Duration,
}

impl Cli {
    /// The command line, completed by the profile file: what neither a flag nor a variable
    /// set (the server only when left at its default).
    fn with_profile() -> Result<Self, CliError> {
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
}

/// The endpoint of `server`, checked: `http(s)://HOST:PORT`; an https server with `tls`.
fn endpoint(server: &str, tls: Option<&ClientTlsConfig>) -> Result<Endpoint, CliError> {
    let bad_server = |why: String| CliError::invalid_input(format!("--server {server:?}: {why}"));
    let endpoint =
        Endpoint::from_shared(server.to_owned()).map_err(|e| bad_server(e.to_string()))?;
    if !matches!(endpoint.uri().scheme_str(), Some("http" | "https"))
        || endpoint.uri().host().is_none()
    {
        return Err(bad_server(
            "expected http://HOST:PORT or https://HOST:PORT".to_owned(),
        ));
    }
    let endpoint = match (endpoint.uri().scheme_str(), tls) {
        (Some("https"), Some(tls)) => endpoint
            .tls_config(tls.clone())
            .map_err(|e| bad_server(e.to_string()))?,
        (Some("https"), None) => {
            return Err(bad_server(
                "https needs --ca-cert (the CA that signed the server's certificate)".to_owned(),
            ));
        }
        _ => endpoint,
    };
    Ok(endpoint.connect_timeout(CONNECT_TIMEOUT))
}

/// Refuses to send a credential in clear: a token to an `http://` server that is not this
/// machine, unless `--insecure-plaintext`. A client certificate only ever goes over https.
fn check_clear(server: &str, cli: &Cli) -> Result<(), CliError> {
    if cli.token.is_none() || cli.insecure_plaintext {
        return Ok(());
    }
    let Ok(uri) = server.parse::<tonic::codegen::http::Uri>() else {
        return Ok(()); // refused as invalid input by `endpoint`
    };
    if uri.scheme_str() != Some("http") || uri.host().is_some_and(is_loopback_host) {
        return Ok(());
    }
    Err(CliError::new(
        Exit::Insecure,
        format!(
            "insecure: not sending the token in clear to {server}: anyone on the path could \
             read it; use https:// (with --ca-cert), or --insecure-plaintext if you accept that"
        ),
    ))
}

/// Whether `host` (of a URI, IPv6 in brackets) is this machine.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// The `authorization` value sent with every call, from `--token`.
fn bearer(token: Option<&String>) -> Result<Option<AsciiMetadataValue>, CliError> {
    token
        .map(|token| MetadataValue::try_from(format!("Bearer {}", token.trim())))
        .transpose()
        .map_err(|_| CliError::invalid_input("--token: must be printable ASCII"))
}

impl Session {
    fn open(cli: &Cli) -> Result<Self, CliError> {
        let [server] = cli.server.as_slice() else {
            return Err(CliError::invalid_input(format!(
                "--server: one server, not {} (only status takes several)",
                cli.server.len()
            )));
        };
        let endpoint = endpoint(server, cli.tls.as_ref())?;
        // An export verified offline sends nothing.
        if !matches!(cli.command, Cmd::Audit(AuditCmd::Verify { plan: None, .. })) {
            check_clear(server, cli)?;
        }
        let auth = bearer(cli.token.as_ref())?;
        let channel = endpoint.connect_lazy();
        Ok(Session {
            server: server.clone(),
            client: PlanCommandsClient::new(channel.clone()),
            queries: PostureQueriesClient::new(channel.clone()),
            channel,
            auth,
            timeout: Duration::from_secs(cli.timeout),
        })
    }

    /// The error of a failed call, with where it went and how to retry it when unreachable.
    fn failure(&self, status: &tonic::Status, command_id: Option<String>) -> CliError {
        let mut err = CliError::from_status(status);
        if err.exit == Exit::Unavailable {
            err.message = format!("{} (server {})", err.message, self.server);
            if let Some(id) = &command_id {
                err.message = format!("{}; retry safely with --command-id {id}", err.message);
            }
        }
        err.command_id = command_id;
        err
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = self.open_request(message);
        request.set_timeout(self.timeout);
        request
    }

    /// A request with no deadline, for a stream that lasts as long as the client wants it.
    fn open_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(auth) = &self.auth {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        request
    }
}

/// Waits for a reply no longer than `timeout`. The server may enforce the same deadline (sent as
/// `grpc-timeout`) first; tonic servers report that as CANCELLED, which is a deadline too.
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    let started = Instant::now();
    let late =
        || tonic::Status::deadline_exceeded(format!("no reply within {}s", timeout.as_secs()));
    match tokio::time::timeout(timeout, call).await {
        Ok(Err(status)) if status.code() == Code::Cancelled && started.elapsed() >= timeout => {
            Err(late())
        }
        Ok(reply) => reply.map(tonic::Response::into_inner),
        Err(_) => Err(late()),
    }
}

/// The next message of `stream`, or a deadline error when none comes within `timeout`; `hint`
/// ends the error's message.
async fn next_within<T>(
    timeout: Duration,
    stream: &mut tonic::Streaming<T>,
    hint: &str,
) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(timeout, stream.message())
        .await
        .unwrap_or_else(|_| {
            Err(tonic::Status::deadline_exceeded(format!(
                "no progress within {}s{hint}",
                timeout.as_secs()
            )))
        })
}

/// Sends one command RPC and wraps its `CommandResult`.
macro_rules! command {
    ($session:expr, $rpc:ident, $request:expr) => {{
        let request = $session.request($request);
        let command_id = request
            .get_ref()
            .meta
            .as_ref()
            .map(|m| m.command_id.clone())
            .unwrap_or_default();
        match within($session.timeout, $session.client.$rpc(request)).await {
            Ok(result) => Ok(Reply::Command { result, command_id }),
            Err(status) => Err($session.failure(&status, Some(command_id))),
        }
    }};
}

/// Sends one query RPC and wraps its reply in `Reply::$variant`.
macro_rules! query {
    ($session:expr, $rpc:ident, $variant:ident, $request:expr) => {{
        let request = $session.request($request);
        within($session.timeout, $session.queries.$rpc(request))
            .await
            .map(Reply::$variant)
            .map_err(|status| $session.failure(&status, None))
    }};
}

/// Prints the plan's events as they arrive, one line each, until `count` of them (if given).
async fn watch(s: &mut Session, args: &WatchArgs, format: Format) -> Result<Reply, CliError> {
    if let Some(on) = args.posture_on {
        return watch_posture(s, args, on, format).await;
    }
    let request = s.open_request(v1::WatchPlanRequest {
        plan_id: args.plan.to_string(),
        from_version: args.from_version.unwrap_or(0),
        min_version: args.min_version.unwrap_or(0),
    });
    // Only opening the stream is bounded by --timeout; events may be far apart.
    let mut events = within(s.timeout, s.queries.watch_plan(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    let mut seen: u64 = 0;
    while args.count.is_none_or(|count| seen < count) {
        match events.message().await {
            Ok(Some(event)) => {
                // Flushed line by line; a closed stdout (e.g. `| head -3`) ends the watch.
                if writeln!(std::io::stdout(), "{}", output::event_line(&event, format)).is_err() {
                    return Ok(Reply::Streamed);
                }
                seen += 1;
            }
            Ok(None) => {
                let mut err = CliError::from_status(&tonic::Status::unavailable(format!(
                    "the server ended the event stream after {seen} events"
                )));
                err.message = format!("{} (server {})", err.message, s.server);
                return Err(err);
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
    Ok(Reply::Streamed)
}

/// Prints the posture on `on`, then again each time it changes.
async fn watch_posture(
    s: &mut Session,
    args: &WatchArgs,
    on: Date,
    format: Format,
) -> Result<Reply, CliError> {
    let request = s.open_request(v1::WatchPostureRequest {
        plan_id: args.plan.to_string(),
        valid_on: date(on),
        include_proposed: args.what_if,
        min_version: args.min_version.unwrap_or(0),
    });
    // Only opening the stream is bounded by --timeout; changes may be far apart.
    let mut postures = within(s.timeout, s.queries.watch_posture(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    let mut seen: u64 = 0;
    while args.count.is_none_or(|count| seen < count) {
        match postures.message().await {
            Ok(Some(posture)) => {
                let shown = output::render(&Reply::Posture(posture), format);
                if writeln!(std::io::stdout(), "{shown}").is_err() {
                    return Ok(Reply::Streamed);
                }
                seen += 1;
            }
            Ok(None) => {
                return Err(s.failure(
                    &tonic::Status::unavailable(format!(
                        "the server ended the posture stream after {seen} postures"
                    )),
                    None,
                ));
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
    Ok(Reply::Streamed)
}

/// Verifies a plan's hash chain (and that it extends the head kept in `head`); a chain that does
/// not hold is printed, then exits 8.
async fn verify(
    s: &mut Session,
    plan: Uuid,
    head: Option<&std::path::Path>,
    format: Format,
) -> Result<Reply, CliError> {
    let kept_head = head.map(read_head).transpose()?;
    let request = s.request(v1::VerifyPlanRequest {
        plan_id: plan.to_string(),
        kept_head,
    });
    let mut audit = AuditLogClient::new(s.channel.clone());
    let reply = within(s.timeout, audit.verify_plan(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    if reply.ok {
        return Ok(Reply::Verified(reply));
    }
    println!("{}", output::render(&Reply::Verified(reply), format));
    Err(CliError::new(
        Exit::Tampered,
        format!("tampered: the hash chain of plan {plan} does not hold"),
    ))
}

/// Prints every page of the plan's filtered events, one line per event.
async fn history(s: &mut Session, a: &HistoryArgs, format: Format) -> Result<Reply, CliError> {
    let mut client = AuditLogClient::new(s.channel.clone());
    let mut page_token = String::new();
    loop {
        let request = s.request(v1::ListEventsRequest {
            plan_id: a.plan.to_string(),
            element_id: a.element.clone().unwrap_or_default(),
            decision_id: a.decision.clone().unwrap_or_default(),
            team: a.team.clone().unwrap_or_default(),
            user: a.user.clone().unwrap_or_default(),
            event_types: a.event_types.clone(),
            recorded_from: a.recorded_from,
            recorded_to: a.recorded_to,
            valid_from: a.valid_from.and_then(date),
            valid_to: a.valid_to.and_then(date),
            page_size: a.page_size,
            page_token: page_token.clone(),
            min_version: a.min_version.unwrap_or(0),
        });
        let page = within(s.timeout, client.list_events(request))
            .await
            .map_err(|status| s.failure(&status, None))?;
        for event in &page.events {
            if writeln!(std::io::stdout(), "{}", output::event_line(event, format)).is_err() {
                return Ok(Reply::Streamed);
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(Reply::Streamed);
        }
        page_token = page.next_page_token;
    }
}

/// Writes the plan's export as its records arrive (memory stays flat).
async fn export(
    s: &mut Session,
    plan: Uuid,
    format: audit::ExportFormat,
    out: Option<&std::path::Path>,
    output: Format,
) -> Result<Reply, CliError> {
    let request = s.open_request(v1::ExportPlanRequest {
        plan_id: plan.to_string(),
    });
    let mut client = AuditLogClient::new(s.channel.clone());
    let mut records = within(s.timeout, client.export_plan(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    let io =
        |e: std::io::Error| CliError::new(Exit::Other, format!("cannot write the export: {e}"));
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::fs::File::create(path).map_err(io)?),
        None => Box::new(std::io::stdout()),
    };
    let mut sink = std::io::BufWriter::new(sink);
    if let Some(header) = audit::header(format) {
        writeln!(sink, "{header}").map_err(io)?;
    }
    let mut written = 0u64;
    loop {
        match records.message().await {
            Ok(Some(record)) => {
                writeln!(sink, "{}", audit::line(&record, format)).map_err(io)?;
                written += 1;
            }
            Ok(None) => break,
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
    sink.flush().map_err(io)?;
    if let Some(path) = out {
        let summary = match output {
            Format::Text => format!(
                "ok exported {written} records of plan {plan} to {}",
                path.display()
            ),
            Format::Json => serde_json::json!({
                "plan_id": plan.to_string(),
                "file": path.display().to_string(),
                "records": written,
            })
            .to_string(),
        };
        println!("{summary}");
    }
    Ok(Reply::Streamed)
}

/// The kept head of a `--head` file.
fn read_head(path: &std::path::Path) -> Result<v1::SignedHead, CliError> {
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| audit::head_from_json(&text))
        .map_err(|e| CliError::invalid_input(format!("--head {}: {e}", path.display())))
}

/// The head of `plan` kept in `kept`, or the one the server vouches for now (`GetHead`).
async fn current_head(
    s: &mut Session,
    plan: Uuid,
    kept: Option<&std::path::Path>,
) -> Result<v1::SignedHead, CliError> {
    if let Some(path) = kept {
        let head = read_head(path)?;
        if head.plan_id != plan.to_string() {
            return Err(CliError::invalid_input(format!(
                "--head {}: a head of plan {}, not of {plan}",
                path.display(),
                head.plan_id
            )));
        }
        return Ok(head);
    }
    let request = s.request(v1::GetHeadRequest {
        plan_id: plan.to_string(),
    });
    let mut client = AuditLogClient::new(s.channel.clone());
    within(s.timeout, client.get_head(request))
        .await
        .map_err(|status| s.failure(&status, None))
}

/// Verifies an export offline, against the keys and the head given.
fn verify_file(
    path: Option<&std::path::Path>,
    head: Option<&std::path::Path>,
    trusted_keys: &[std::path::PathBuf],
    keys_file: Option<&std::path::Path>,
    format: Format,
) -> Result<Reply, CliError> {
    let path = path.ok_or_else(|| CliError::invalid_input("--plan or --file is required"))?;
    let (mut keys, witnesses) = match keys_file {
        Some(file) => {
            let (signing, witnesses) = audit::keys_file(file)
                .map_err(|e| CliError::invalid_input(format!("--keys: {e}")))?;
            (
                signing.keys().to_vec(),
                Some(std::sync::Arc::new(witnesses)),
            )
        }
        None => (Vec::new(), None),
    };
    for key in trusted_keys {
        let shown = key.display().to_string();
        let pem = std::fs::read_to_string(key)
            .map_err(|e| CliError::invalid_input(format!("--trusted-key {shown}: {e}")))?;
        let key = alliance_record::signing::public_key_from_pem(&pem, &shown)
            .map_err(|e| CliError::invalid_input(e.to_string()))?;
        keys.push(alliance_record::signing::TrustedKey::always(key));
    }
    let against = audit::Against {
        trusted: (!keys.is_empty() || keys_file.is_some())
            .then(|| std::sync::Arc::new(alliance_record::signing::TrustedKeys::new(keys))),
        witnesses,
        head: head.map(read_head).transpose()?,
    };
    match audit::verify_file(path, &against).map_err(CliError::invalid_input)? {
        audit::FileCheck::Holds {
            plan_id,
            head,
            vouched,
        } => {
            let text = match format {
                Format::Text => audit::holds_text(path, &plan_id, &head, &vouched, &against),
                Format::Json => serde_json::json!({
                    "file": path.display().to_string(),
                    "plan_id": plan_id,
                    "ok": true,
                    "events": head.events,
                    "head_hash": alliance_record::chain::hex(&head.head),
                    "signatures_checked": against.trusted.is_some(),
                    "witnesses_checked": against.witnesses.is_some(),
                    "unsigned_through": head.unsigned_through,
                    "unsigned_covered_by": audit::covered_by(&head),
                    "vouched": vouched
                        .iter()
                        .map(|v| output::vouched_json(&audit::vouched_head(v)))
                        .collect::<Vec<_>>(),
                    "kept_head_version": against.head.as_ref().map(|h| h.version),
                })
                .to_string(),
            };
            println!("{text}");
            Ok(Reply::Streamed)
        }
        audit::FileCheck::Broken { line, detail } => Err(CliError::new(
            Exit::Tampered,
            format!("tampered: {} line {line}: {detail}", path.display()),
        )),
    }
}

/// Rebuilds the read models, showing the progress on stderr; `--timeout` bounds the wait for
/// each report, not the whole rebuild.
async fn rebuild(s: &mut Session) -> Result<Reply, CliError> {
    let request = s.open_request(v1::RebuildRequest {});
    let mut admin = ReadModelAdminClient::new(s.channel.clone());
    let mut progress = within(s.timeout, admin.rebuild(request))
        .await
        .map_err(|status| s.failure(&status, None))?;
    loop {
        let next = next_within(s.timeout, &mut progress, "").await;
        match next {
            Ok(Some(v1::RebuildProgress {
                done: Some(done), ..
            })) => {
                return Ok(Reply::Rebuilt(done));
            }
            // The last report of a read says it is done: nothing to show.
            Ok(Some(p)) if p.events_read >= p.events_total => {}
            Ok(Some(p)) => {
                let percent = (p.events_read * 100)
                    .checked_div(p.events_total)
                    .unwrap_or(0);
                eprintln!(
                    "rebuilding: {} of about {} events read ({}%)",
                    p.events_read,
                    p.events_total,
                    percent.min(100)
                );
            }
            Ok(None) => {
                return Err(s.failure(
                    &tonic::Status::unavailable("the server ended the rebuild without a result"),
                    None,
                ));
            }
            Err(status) => return Err(s.failure(&status, None)),
        }
    }
}

async fn run(session: &mut Session, command: &Cmd, format: Format) -> Result<Reply, CliError> {
    let s = session;
    match command {
        Cmd::Posture(a) => query!(
            s,
            get_posture,
            Posture,
            v1::GetPostureRequest {
                plan_id: a.target.plan.to_string(),
                valid_on: date(a.on),
                record: a.record.proto(),
                include_proposed: a.what_if,
                min_version: a.target.min_version,
            }
        ),
        Cmd::Series(a) => query!(
            s,
            get_posture_series,
            Series,
            v1::GetPostureSeriesRequest {
                plan_id: a.target.plan.to_string(),
                from: date(a.from),
                to: date(a.to),
                step: match a.step {
                    SeriesStep::Month => v1::SeriesStep::Month,
                    SeriesStep::Quarter => v1::SeriesStep::Quarter,
                    SeriesStep::Year => v1::SeriesStep::Year,
                } as i32,
                record: a.record.proto(),
                include_proposed: a.what_if,
                min_version: a.target.min_version,
            }
        ),
        Cmd::Diff(a) => query!(
            s,
            diff_plan,
            Diff,
            v1::DiffPlanRequest {
                plan_id: a.target.plan.to_string(),
                from: record_point(a.from.from_version, a.from.from_recorded.as_ref()),
                to: record_point(a.to.to_version, a.to.to_recorded.as_ref()),
                min_version: a.target.min_version,
            }
        ),
        Cmd::Decisions(a) => query!(
            s,
            list_decisions,
            Decisions,
            v1::ListDecisionsRequest {
                plan_id: a.target.plan.to_string(),
                record: a.record.proto(),
                status: a.status.map_or(
                    v1::DecisionStatus::Unspecified as i32,
                    decision_status_to_proto
                ),
                side: a.side.map_or(v1::Side::Unspecified as i32, side_to_proto),
                team: a.team.clone().unwrap_or_default(),
                effective_from: a.effective_from.map(date_to_proto),
                effective_to: a.effective_to.map(date_to_proto),
                min_version: a.target.min_version,
            }
        ),
        Cmd::Watch(a) => watch(s, a, format).await,
        Cmd::Plot(a) => plot::run(s, a, format).await,
        Cmd::Rebuild => rebuild(s).await,
        // Checked before a session is opened (several servers).
        Cmd::Status => Err(CliError::new(Exit::Other, "status takes no session")),
        Cmd::Simulate(a) => simulate::simulate(s, a, format).await,
        Cmd::Simulation(cmd) => simulate::get(s, cmd, format).await,
        Cmd::Audit(AuditCmd::Verify {
            plan: Some(plan),
            head,
            ..
        }) => verify(s, *plan, head.as_deref(), format).await,
        Cmd::Audit(AuditCmd::Head { plan, out }) => {
            let request = s.request(v1::GetHeadRequest {
                plan_id: plan.to_string(),
            });
            let mut client = AuditLogClient::new(s.channel.clone());
            let head = within(s.timeout, client.get_head(request))
                .await
                .map_err(|status| s.failure(&status, None))?;
            let text = audit::head_json(&head).to_string();
            match out {
                Some(path) => {
                    std::fs::write(path, format!("{text}\n")).map_err(|e| {
                        CliError::new(Exit::Other, format!("cannot write {}: {e}", path.display()))
                    })?;
                    match format {
                        Format::Text => println!(
                            "ok head of plan {plan}: version {} hash {} signed by key {} written to {}",
                            head.version,
                            head.head_hash,
                            if head.key_id.is_empty() {
                                "(none)"
                            } else {
                                &head.key_id
                            },
                            path.display()
                        ),
                        Format::Json => println!("{text}"),
                    }
                }
                None => println!("{text}"),
            }
            Ok(Reply::Streamed)
        }
        Cmd::Audit(AuditCmd::Verify {
            file,
            head,
            trusted_key,
            keys,
            ..
        }) => verify_file(
            file.as_deref(),
            head.as_deref(),
            trusted_key,
            keys.as_deref(),
            format,
        ),
        Cmd::Audit(AuditCmd::Witness {
            plan,
            key,
            head,
            out,
            ids,
        }) => {
            let key = alliance_record::signing::Signer::load(key)
                .map_err(|e| CliError::invalid_input(format!("--key: {e}")))?;
            let head = current_head(s, *plan, head.as_deref()).await?;
            let witness = audit::witness_signature(&key, &head).map_err(CliError::invalid_input)?;
            if let Some(path) = out {
                let text = audit::head_json(&head).to_string();
                std::fs::write(path, format!("{text}\n")).map_err(|e| {
                    CliError::new(Exit::Other, format!("cannot write {}: {e}", path.display()))
                })?;
            }
            command!(
                s,
                witness_head,
                v1::WitnessHeadRequest {
                    meta: Some(ids.meta(plan.to_string(), None)),
                    version: head.version,
                    head_hash: head.head_hash.clone(),
                    witnesses: vec![witness],
                }
            )
        }
        Cmd::Audit(AuditCmd::Sign { plan, head, ids }) => {
            let head = current_head(s, *plan, head.as_deref()).await?;
            command!(
                s,
                sign_head,
                v1::SignHeadRequest {
                    meta: Some(ids.meta(plan.to_string(), None)),
                    version: head.version,
                    head_hash: head.head_hash.clone(),
                }
            )
        }
        Cmd::Audit(AuditCmd::History(a)) => history(s, a, format).await,
        Cmd::Audit(AuditCmd::Denials { since, limit }) => {
            let request = s.request(v1::ListDenialsRequest {
                since: *since,
                limit: *limit,
            });
            let mut client = AuditLogClient::new(s.channel.clone());
            let reply = within(s.timeout, client.list_denials(request))
                .await
                .map_err(|status| s.failure(&status, None))?;
            for denial in &reply.denials {
                println!("{}", output::denial_line(denial, format));
            }
            Ok(Reply::Streamed)
        }
        Cmd::Audit(AuditCmd::Export {
            plan,
            format: file_format,
            out,
        }) => export(s, *plan, *file_format, out.as_deref(), format).await,
        Cmd::Plan(cmd) => match cmd {
            PlanCmd::Create {
                name,
                description,
                horizon_start,
                horizon_end,
                id,
                ids,
            } => command!(
                s,
                create_plan,
                v1::CreatePlanRequest {
                    meta: Some(ids.meta(id.map(|i| i.to_string()).unwrap_or_default(), None)),
                    name: name.clone(),
                    description: description.clone(),
                    horizon_start: date(*horizon_start),
                    horizon_end: date(*horizon_end),
                }
            ),
            PlanCmd::Branch {
                name,
                description,
                at_version,
                id,
                meta,
            } => command!(
                s,
                branch_plan,
                v1::BranchPlanRequest {
                    meta: meta.proto(),
                    new_plan_id: id.map(|i| i.to_string()).unwrap_or_default(),
                    parent_version: *at_version,
                    name: name.clone(),
                    description: description.clone(),
                }
            ),
            PlanCmd::Grant { team, role, meta } => command!(
                s,
                grant_role,
                v1::GrantRoleRequest {
                    meta: meta.proto(),
                    grant: Some(v1::RoleGrant {
                        team: team.clone(),
                        role: role.clone(),
                    }),
                }
            ),
            PlanCmd::Revoke { team, role, meta } => command!(
                s,
                revoke_role,
                v1::RevokeRoleRequest {
                    meta: meta.proto(),
                    grant: Some(v1::RoleGrant {
                        team: team.clone(),
                        role: role.clone(),
                    }),
                }
            ),
            PlanCmd::List => {
                let request = s.request(v1::ListPlansRequest {});
                within(s.timeout, s.client.list_plans(request))
                    .await
                    .map(Reply::Plans)
                    .map_err(|status| s.failure(&status, None))
            }
            PlanCmd::Show { plan } => {
                let request = s.request(v1::GetPlanRequest {
                    plan_id: plan.to_string(),
                });
                within(s.timeout, s.client.get_plan(request))
                    .await
                    .map(Reply::Plan)
                    .map_err(|status| s.failure(&status, None))
            }
        },
        Cmd::Element(cmd) => match cmd {
            ElementCmd::Register {
                element,
                present_from,
                meta,
            } => command!(
                s,
                register_force_element,
                v1::RegisterForceElementRequest {
                    meta: meta.proto(),
                    element: element.proto(),
                    present_from: date(*present_from),
                }
            ),
            ElementCmd::Add { element, step } => command!(
                s,
                add_force_element,
                v1::AddForceElementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    element: element.proto(),
                    on: step.on(),
                }
            ),
            ElementCmd::Withdraw { element, step } => {
                command!(
                    s,
                    withdraw_force_element,
                    v1::WithdrawForceElementRequest {
                        meta: step.meta.proto(),
                        decision_id: step.decision.clone(),
                        element_id: element.clone(),
                        on: step.on(),
                    }
                )
            }
            ElementCmd::Reduce { element, cut, step } => {
                command!(
                    s,
                    reduce_force_element,
                    v1::ReduceForceElementRequest {
                        meta: step.meta.proto(),
                        decision_id: step.decision.clone(),
                        element_id: element.clone(),
                        personnel: cut.personnel.unwrap_or(0),
                        equipment: equipment(&cut.equipment),
                        on: step.on(),
                    }
                )
            }
            ElementCmd::Relocate {
                element,
                to_base,
                step,
            } => command!(
                s,
                relocate_force_element,
                v1::RelocateForceElementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    element_id: element.clone(),
                    to_base: to_base.clone(),
                    on: step.on(),
                }
            ),
        },
        Cmd::Decision(cmd) => match cmd {
            DecisionCmd::Propose {
                id,
                title,
                rationale,
                effective,
                sides,
                supersedes,
                meta,
            } => command!(
                s,
                propose_decision,
                v1::ProposeDecisionRequest {
                    meta: meta.proto(),
                    decision_id: id.clone(),
                    title: title.clone(),
                    rationale: rationale.clone(),
                    effective_date: date(*effective),
                    required_sides: sides.iter().copied().map(side_to_proto).collect(),
                    supersedes: supersedes.clone(),
                }
            ),
            DecisionCmd::Endorse { decision, meta } => {
                command!(
                    s,
                    endorse_decision,
                    v1::EndorseDecisionRequest {
                        meta: meta.proto(),
                        decision_id: decision.clone(),
                    }
                )
            }
            DecisionCmd::Adopt { decision, meta } => command!(
                s,
                adopt_decision,
                v1::AdoptDecisionRequest {
                    meta: meta.proto(),
                    decision_id: decision.clone(),
                }
            ),
            DecisionCmd::Reject {
                decision,
                reason,
                meta,
            } => command!(
                s,
                reject_decision,
                v1::RejectDecisionRequest {
                    meta: meta.proto(),
                    decision_id: decision.clone(),
                    reason: reason.clone(),
                }
            ),
            DecisionCmd::Withdraw {
                decision,
                reason,
                meta,
            } => command!(
                s,
                withdraw_decision,
                v1::WithdrawDecisionRequest {
                    meta: meta.proto(),
                    decision_id: decision.clone(),
                    reason: reason.clone(),
                }
            ),
        },
        Cmd::Opcon(OpconCmd::Schedule { conditions, step }) => {
            command!(
                s,
                schedule_opcon_transfer,
                v1::ScheduleOpconTransferRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    on: step.on(),
                    conditions: conditions.clone(),
                }
            )
        }
        Cmd::CommandArrangement(ArrangementCmd::Change { holders, step }) => {
            let side = |s: Option<Side>| s.map_or(v1::Side::Unspecified as i32, side_to_proto);
            command!(
                s,
                change_command_arrangement,
                v1::ChangeCommandArrangementRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    on: step.on(),
                    peacetime_opcon: side(holders.peacetime),
                    wartime_opcon: side(holders.wartime),
                    cfc_commander: side(holders.cfc_commander),
                }
            )
        }
        Cmd::Clause(cmd) => match cmd {
            ClauseCmd::Define {
                id,
                agreement,
                title,
                status,
                since,
                meta,
            } => command!(
                s,
                define_agreement_clause,
                v1::DefineAgreementClauseRequest {
                    meta: meta.proto(),
                    clause_id: id.clone(),
                    agreement: agreement_to_proto(*agreement),
                    title: title.clone(),
                    status: clause_status_to_proto(*status),
                    since: date(*since),
                }
            ),
            ClauseCmd::Amend {
                clause,
                status,
                step,
            } => command!(
                s,
                amend_agreement_clause,
                v1::AmendAgreementClauseRequest {
                    meta: step.meta.proto(),
                    decision_id: step.decision.clone(),
                    clause_id: clause.clone(),
                    status: clause_status_to_proto(*status),
                    on: step.on(),
                }
            ),
        },
        Cmd::Condition(cmd) => match cmd {
            ConditionCmd::Define {
                id,
                title,
                description,
                area,
                threshold,
                meta,
            } => command!(
                s,
                define_condition,
                v1::DefineConditionRequest {
                    meta: meta.proto(),
                    condition_id: id.clone(),
                    title: title.clone(),
                    description: description.clone(),
                    area: area.map_or(v1::CapabilityArea::Unspecified as i32, area_to_proto),
                    threshold: *threshold,
                }
            ),
            ConditionCmd::Assess {
                condition,
                on,
                status,
                value,
                note,
                meta,
            } => command!(
                s,
                assess_condition,
                v1::AssessConditionRequest {
                    meta: meta.proto(),
                    condition_id: condition.clone(),
                    assessed_on: date(*on),
                    status: condition_status_to_proto(*status),
                    value: *value,
                    note: note.clone(),
                }
            ),
        },
        Cmd::Capability(cmd) => match cmd {
            CapabilityCmd::Record {
                side,
                area,
                level,
                as_of,
                meta,
            } => command!(
                s,
                record_capability_level,
                v1::RecordCapabilityLevelRequest {
                    meta: meta.proto(),
                    side: side_to_proto(*side),
                    area: area_to_proto(*area),
                    level: *level,
                    as_of: date(*as_of),
                }
            ),
            CapabilityCmd::Invest {
                decision,
                id,
                area,
                description,
                level_gain,
                delivery,
                cost_musd,
                meta,
            } => command!(
                s,
                plan_capability_investment,
                v1::PlanCapabilityInvestmentRequest {
                    meta: meta.proto(),
                    decision_id: decision.clone(),
                    investment_id: id.clone(),
                    area: area_to_proto(*area),
                    description: description.clone(),
                    level_gain: *level_gain,
                    delivery: date(*delivery),
                    cost_musd: *cost_musd,
                }
            ),
        },
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::with_profile() {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("{}", output::render_error(&err, Format::Text));
            return ExitCode::from(err.exit.code());
        }
    };
    let outcome = match (&cli.command, Session::open(&cli)) {
        (Cmd::Status, _) => match cli
            .server
            .iter()
            .try_for_each(|server| check_clear(server, &cli))
            .and_then(|()| bearer(cli.token.as_ref()))
        {
            Ok(auth) => status::run(
                &cli.server,
                cli.tls.as_ref(),
                auth,
                Duration::from_secs(cli.timeout),
                cli.output,
            )
            .await
            .map(|()| Reply::Streamed),
            Err(err) => Err(err),
        },
        (command, Ok(mut session)) => run(&mut session, command, cli.output).await,
        (_, Err(err)) => Err(err),
    };
    match outcome {
        // Printed as it arrived.
        Ok(Reply::Streamed) => ExitCode::SUCCESS,
        Ok(reply) => {
            println!("{}", output::render(&reply, cli.output));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}", output::render_error(&err, cli.output));
            ExitCode::from(err.exit.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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
        let refused = Session::open(&cli).err().expect("two servers refused");
        assert_eq!(refused.exit, Exit::InvalidInput);
        let cli = parse("plan list --server http://127.0.0.1:1").unwrap();
        assert!(Session::open(&cli).is_ok());
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
