//! `audit`: verify a plan's chain (on the server or offline), keep its head, read its history,
//! export it, and read the security log.

use std::io::Write;

use alliance_domain::Date;
use alliance_proto::v1;
use alliance_proto::v1::audit_log_client::AuditLogClient;
use clap::{Args, Subcommand};
use uuid::Uuid;

use super::flags::{Meta, date};
use crate::audit;
use crate::errors::{CliError, Exit};
use crate::output::{self, Format, Reply};
use crate::parse;
use crate::session::{Session, command, within};

#[derive(Args)]
pub(crate) struct HistoryArgs {
    /// The plan.
    #[arg(long, env = "ALLIANCE_PLAN")]
    pub(crate) plan: Uuid,
    /// Every event naming this element, and every event of the decisions with a step on it.
    #[arg(long)]
    pub(crate) element: Option<String>,
    /// Every event of this decision.
    #[arg(long)]
    pub(crate) decision: Option<String>,
    /// Events recorded by this team.
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// Events recorded by this user.
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// Only events of this type, e.g. DecisionAdopted (repeatable).
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    pub(crate) event_types: Vec<String>,
    /// Recorded at or after this instant (RFC 3339).
    #[arg(long, value_parser = parse::instant)]
    pub(crate) recorded_from: Option<prost_types::Timestamp>,
    /// Recorded before this instant (RFC 3339).
    #[arg(long, value_parser = parse::instant)]
    pub(crate) recorded_to: Option<prost_types::Timestamp>,
    /// Taking effect on or after this date.
    #[arg(long, value_parser = parse::date)]
    pub(crate) valid_from: Option<Date>,
    /// Taking effect on or before this date.
    #[arg(long, value_parser = parse::date)]
    pub(crate) valid_to: Option<Date>,
    /// Events per request (at most 1000).
    #[arg(long, default_value_t = 100)]
    pub(crate) page_size: u32,
    /// Wait until the read model holds this version of the plan (read your writes).
    #[arg(long)]
    pub(crate) min_version: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum AuditCmd {
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
        meta: Meta,
    },
    /// Have the writer sign the plan's head (auditor or admin role): it appends an event it
    /// signs, whose signature covers every record up to the head through the chain. A history
    /// sealed before writers signed is signed so from now on ("unsigned up to version N,
    /// covered by the signature of version N+1").
    Sign {
        /// A head kept earlier (`audit head --out`) to sign, instead of the current one.
        #[arg(long)]
        head: Option<std::path::PathBuf>,
        #[command(flatten)]
        meta: Meta,
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

pub(super) async fn run(
    s: &mut Session,
    cmd: &AuditCmd,
    format: Format,
) -> Result<Reply, CliError> {
    match cmd {
        AuditCmd::Verify {
            plan: Some(plan),
            head,
            ..
        } => verify(s, *plan, head.as_deref(), format).await,
        AuditCmd::Head { plan, out } => {
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
        AuditCmd::Verify {
            file,
            head,
            trusted_key,
            keys,
            ..
        } => verify_file(
            file.as_deref(),
            head.as_deref(),
            trusted_key,
            keys.as_deref(),
            format,
        ),
        AuditCmd::Witness {
            key,
            head,
            out,
            meta,
        } => {
            let key = alliance_record::signing::Signer::load(key)
                .map_err(|e| CliError::invalid_input(format!("--key: {e}")))?;
            let head = current_head(s, meta.plan, head.as_deref()).await?;
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
                    meta: meta.proto(),
                    version: head.version,
                    head_hash: head.head_hash.clone(),
                    witnesses: vec![witness],
                }
            )
        }
        AuditCmd::Sign { head, meta } => {
            let head = current_head(s, meta.plan, head.as_deref()).await?;
            command!(
                s,
                sign_head,
                v1::SignHeadRequest {
                    meta: meta.proto(),
                    version: head.version,
                    head_hash: head.head_hash.clone(),
                }
            )
        }
        AuditCmd::History(a) => history(s, a, format).await,
        AuditCmd::Denials { since, limit } => {
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
        AuditCmd::Export {
            plan,
            format: file_format,
            out,
        } => export(s, *plan, *file_format, out.as_deref(), format).await,
    }
}

/// Verifies a plan's hash chain (and that it extends the head kept in `head`); a chain that does
/// not hold is printed, then exits 8.
pub(crate) async fn verify(
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
pub(crate) async fn history(
    s: &mut Session,
    a: &HistoryArgs,
    format: Format,
) -> Result<Reply, CliError> {
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
pub(crate) async fn export(
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
pub(crate) fn read_head(path: &std::path::Path) -> Result<v1::SignedHead, CliError> {
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
pub(crate) fn verify_file(
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
        head: head.map(read_head).transpose()?,
        witnesses,
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
