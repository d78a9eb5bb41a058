//! Exporting a plan's history for auditors (JSON Lines or CSV, one record per line, written as
//! it arrives), and verifying such an export offline, without the server: each line's fields
//! must say what its record says, and the records must form the plan's hash chain. Witnessing a
//! plan's head with an auditor's key, and having the writer sign it.

use std::io::BufRead;
use std::path::Path;

use alliance_eventlog::StoredEvent;
use alliance_proto::v1;
use alliance_record::chain::{self, ChainHead, Verifier, Vouched};
use alliance_record::signing::{
    HEAD_CONTEXT, KeyId, Signer, TrustedKey, TrustedKeys, head_message,
};
use alliance_record::witness::{WitnessKey, WitnessKeys};
use prost::Message;
use serde_json::{Value, json};

/// The format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// A header line, then one row per record.
    Csv,
}

/// The columns of a CSV export, and the keys of a JSON Lines one.
const COLUMNS: [&str; 11] = [
    "version",
    "position",
    "event_id",
    "event_type",
    "actor",
    "record_time",
    "valid_date",
    "command_id",
    "prev_hash",
    "hash",
    "record",
];

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn record_time(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|t| {
        chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or_default())
    })
    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .unwrap_or_default()
}

fn valid_date(date: Option<&v1::Date>) -> String {
    date.map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

/// The fields of one exported record, as text, in [`COLUMNS`] order.
fn fields(r: &v1::ExportedRecord) -> [String; 11] {
    [
        r.version.to_string(),
        r.position.to_string(),
        r.event_id.clone(),
        r.event_type.clone(),
        r.actor.clone(),
        record_time(r.record_time.as_ref()),
        valid_date(r.valid_date.as_ref()),
        r.command_id.clone(),
        r.prev_hash.clone(),
        r.hash.clone(),
        chain::hex(&r.record),
    ]
}

/// The header line of an export (CSV only).
pub fn header(format: ExportFormat) -> Option<String> {
    (format == ExportFormat::Csv).then(|| COLUMNS.join(","))
}

/// One line of an export, without its newline.
pub fn line(r: &v1::ExportedRecord, format: ExportFormat) -> String {
    let fields = fields(r);
    match format {
        ExportFormat::Jsonl => {
            let object: serde_json::Map<String, Value> = COLUMNS
                .iter()
                .zip(fields)
                .map(|(key, value)| {
                    let value = match *key {
                        "version" => json!(r.version),
                        "position" => json!(r.position),
                        _ => json!(value),
                    };
                    ((*key).to_owned(), value)
                })
                .collect();
            Value::Object(object).to_string()
        }
        ExportFormat::Csv => fields
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// What an offline verification found.
#[derive(Debug)]
pub enum FileCheck {
    Holds {
        plan_id: String,
        head: ChainHead,
        /// The heads vouched for in it (witnessed, or signed by the writer).
        vouched: Vec<Vouched>,
    },
    /// The first line that does not fit, 1-based.
    Broken { line: usize, detail: String },
}

/// What an export is checked against besides its own chain.
#[derive(Default)]
pub struct Against {
    /// Public keys whose signatures verify; signatures are not checked without.
    pub trusted: Option<std::sync::Arc<TrustedKeys>>,
    /// The auditors' witness keys; witnesses' signatures are not checked without.
    pub witnesses: Option<std::sync::Arc<WitnessKeys>>,
    /// A head kept earlier: the export must reach its version with its hash.
    pub head: Option<v1::SignedHead>,
}

/// The version and hash of a kept head, its signature checked when keys are given.
fn kept(
    head: &v1::SignedHead,
    trusted: Option<&TrustedKeys>,
) -> Result<(u64, chain::Hash), String> {
    let hash: chain::Hash = unhex(&head.head_hash)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the kept head's head_hash is not 64 hex digits")?;
    if let (Some(trusted), false) = (trusted, head.key_id.is_empty()) {
        let id = KeyId::parse(&head.key_id).ok_or("the kept head's key_id is not 16 hex digits")?;
        let signature: [u8; 64] = head
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| "the kept head's signature is not 64 bytes")?;
        let plan = uuid::Uuid::parse_str(&head.plan_id)
            .map_err(|_| "the kept head's plan_id is not a UUID")?;
        let time = head.time.unwrap_or_default();
        let micros = time
            .seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(time.nanos) / 1_000);
        let message = head_message(plan.as_bytes(), head.version, &hash, micros);
        trusted
            .check(id, micros, HEAD_CONTEXT, &message, &signature)
            .map_err(|problem| format!("the kept head's signature does not hold: {problem:?}"))?;
    }
    Ok((head.version, hash))
}

/// Verifies an export: its format is told by its first line.
pub fn verify_file(path: &Path, against: &Against) -> Result<FileCheck, String> {
    let kept = against
        .head
        .as_ref()
        .map(|head| kept(head, against.trusted.as_deref()))
        .transpose()?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines().enumerate().peekable();
    let csv = matches!(lines.peek(), Some((_, Ok(first))) if first.starts_with("version,"));
    if csv {
        lines.next();
    }
    let mut verifier = against
        .trusted
        .clone()
        .map(Verifier::trusting)
        .unwrap_or_default()
        .with_witnesses(against.witnesses.clone());
    let mut plan_id: Option<String> = None;
    let mut last_line = 0;
    // The line of each record read, by version: a signature judged later names its own line.
    let mut lines_of: Vec<(u64, u64, usize)> = Vec::new();
    for (index, text) in lines {
        last_line = index + 1;
        let number = index + 1;
        let text = text.map_err(|e| format!("{}: line {number}: {e}", path.display()))?;
        let broken = |detail: String| {
            Ok(FileCheck::Broken {
                line: number,
                detail,
            })
        };
        let fields = match parse_line(&text, csv) {
            Ok(fields) => fields,
            Err(detail) => return broken(detail),
        };
        let Some(record) = unhex(&fields[10]) else {
            return broken("the record is not hex".into());
        };
        let Ok(envelope) = v1::EventEnvelope::decode(record.as_slice()) else {
            return broken("the record does not decode".into());
        };
        if let Err(detail) = same_as_record(&fields, &envelope) {
            return broken(detail);
        }
        if plan_id.get_or_insert_with(|| envelope.plan_id.clone()) != &envelope.plan_id {
            return broken(format!("a record of another plan, {}", envelope.plan_id));
        }
        let stored = StoredEvent {
            position: fields[1].parse().unwrap_or_default(),
            plan_id: uuid::Uuid::parse_str(&envelope.plan_id).unwrap_or_default(),
            version: fields[0].parse().unwrap_or_default(),
            event_id: uuid::Uuid::parse_str(&fields[2]).unwrap_or_default(),
            command_id: fields[7].clone(),
            event_type: fields[3].clone(),
            record_time_micros: 0,
            payload: record,
            origin: None,
            trace_context: None,
        };
        lines_of.push((stored.version, stored.position, number));
        if let Err(at) = verifier.check(&stored) {
            return Ok(at_line(&lines_of, at));
        }
        let head = verifier.head();
        if let Some((version, hash)) = kept
            && head.events == version
            && head.head != hash
        {
            // A signature before it that does not hold is the first break.
            if let Err(at) = verifier.settle() {
                return Ok(at_line(&lines_of, at));
            }
            return broken(format!(
                "diverged at version {version}: its hash is not the kept head's: the history up \
                 to it was rewritten"
            ));
        }
    }
    if let Err(at) = verifier.finish() {
        return Ok(at_line(&lines_of, at));
    }
    let plan_id = plan_id.ok_or_else(|| format!("{}: no records", path.display()))?;
    if let Some((version, _)) = kept
        && let Some(head) = against.head.as_ref()
    {
        if head.plan_id != plan_id {
            return Err(format!(
                "the kept head is of plan {}, not {plan_id}",
                head.plan_id
            ));
        }
        if verifier.head().events < version {
            return Ok(FileCheck::Broken {
                line: last_line + 1,
                detail: format!(
                    "truncated: the export ends at version {}, the kept head is at version \
                     {version}",
                    verifier.head().events
                ),
            });
        }
    }
    Ok(FileCheck::Holds {
        plan_id,
        head: verifier.head(),
        vouched: verifier.vouched().to_vec(),
    })
}

/// A break found by the verifier, on the line of the record it names (by version and position;
/// the last line read when none matches).
fn at_line(lines_of: &[(u64, u64, usize)], at: chain::ChainBreak) -> FileCheck {
    let line = lines_of
        .iter()
        .rev()
        .find(|(version, position, _)| (*version, *position) == (at.version, at.position))
        .or(lines_of.last())
        .map_or(1, |(_, _, line)| *line);
    FileCheck::Broken {
        line,
        detail: at.to_string(),
    }
}

/// The 11 fields of a line, as text.
fn parse_line(text: &str, csv: bool) -> Result<Vec<String>, String> {
    let fields: Vec<String> = if csv {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let row = reader
            .records()
            .next()
            .ok_or("an empty line")?
            .map_err(|e| format!("not CSV: {e}"))?;
        row.iter().map(str::to_owned).collect()
    } else {
        let object: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        COLUMNS
            .iter()
            .map(|key| match &object[*key] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => String::new(),
            })
            .collect()
    };
    if fields.len() != COLUMNS.len() {
        return Err(format!("{} fields, not {}", fields.len(), COLUMNS.len()));
    }
    Ok(fields)
}

/// Whether a line's readable fields say what its record says.
fn same_as_record(fields: &[String], envelope: &v1::EventEnvelope) -> Result<(), String> {
    let actor = envelope
        .actor
        .as_ref()
        .map(|a| format!("{}/{}", a.team, a.user))
        .unwrap_or_default();
    let expected = [
        envelope.plan_version.to_string(),
        fields[1].clone(),
        envelope.event_id.clone(),
        envelope.event_type.clone(),
        actor,
        record_time(envelope.record_time.as_ref()),
        valid_date(envelope.valid_date.as_ref()),
        envelope.command_id.clone(),
        chain::hex(&envelope.prev_hash),
        chain::hex(&envelope.hash),
    ];
    for ((column, shown), recorded) in COLUMNS.iter().zip(fields).zip(expected) {
        if *shown != recorded {
            return Err(format!(
                "its {column} says {shown:?}, its record says {recorded:?}"
            ));
        }
    }
    Ok(())
}

/// The text of a verified export.
pub fn holds_text(
    path: &Path,
    plan_id: &str,
    head: &ChainHead,
    vouched: &[Vouched],
    against: &Against,
) -> String {
    let signed = match (&against.trusted, head.unsigned_through) {
        (None, _) => "signatures not checked (give --keys or --trusted-key)".to_owned(),
        (Some(_), n) => crate::output::signed_text(n, covered_by(head), head.events),
    };
    let extends = match &against.head {
        Some(kept) => format!(", extends the kept head at version {}", kept.version),
        None => String::new(),
    };
    let vouched: Vec<v1::VouchedHead> = vouched.iter().map(vouched_head).collect();
    format!(
        "ok file {}: plan {plan_id}, hash chain of {} events holds, {signed}{extends}{}; head {}",
        path.display(),
        head.events,
        crate::output::vouched_text(&vouched),
        chain::hex(&head.head)
    )
}

/// The version of the signed record that covers the unsigned ones before it, if any.
pub fn covered_by(head: &ChainHead) -> u64 {
    if head.unsigned_through > 0 && head.events > head.unsigned_through {
        head.unsigned_through + 1
    } else {
        0
    }
}

/// A vouched head as `VerifyPlan` reports it.
pub fn vouched_head(v: &Vouched) -> v1::VouchedHead {
    v.to_proto()
}

/// The signing and witness keys of an identity configuration (or a file of keys alone), each
/// with its validity.
pub fn keys_file(path: &Path) -> Result<(TrustedKeys, WitnessKeys), String> {
    let file = alliance_auth::KeysFile::load(path)?;
    let micros = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_micros());
    let mut signing = Vec::new();
    for entry in &file.signing_keys {
        signing.push(
            TrustedKey::from_file(
                &entry.public_key,
                micros(entry.not_before),
                micros(entry.not_after),
            )
            .map_err(|e| e.to_string())?,
        );
    }
    let mut witnesses = Vec::new();
    for entry in &file.witness_keys {
        witnesses.push(WitnessKey {
            key: TrustedKey::from_file(
                &entry.public_key,
                micros(entry.not_before),
                micros(entry.not_after),
            )
            .map_err(|e| e.to_string())?,
            side: entry.side,
        });
    }
    Ok((TrustedKeys::new(signing), WitnessKeys::new(witnesses)))
}

/// The signature a witness holding `key` makes of `head`.
pub fn witness_signature(key: &Signer, head: &v1::SignedHead) -> Result<v1::HeadWitness, String> {
    let plan =
        uuid::Uuid::parse_str(&head.plan_id).map_err(|_| "the head's plan_id is not a UUID")?;
    let hash: chain::Hash = unhex(&head.head_hash)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the head's head_hash is not 64 hex digits")?;
    let signature = alliance_record::witness::sign_head(key, plan.as_bytes(), head.version, &hash);
    Ok(v1::HeadWitness {
        key_id: key.id().to_string(),
        signature: signature.to_vec(),
    })
}

/// A signed head (`audit head`) as the JSON file kept for `audit verify --head`.
pub fn head_json(head: &v1::SignedHead) -> Value {
    let time = head.time.unwrap_or_default();
    let micros = time
        .seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(time.nanos) / 1_000);
    json!({
        "plan_id": head.plan_id,
        "version": head.version,
        "head_hash": head.head_hash,
        "time": chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        "time_micros": micros,
        "key_id": head.key_id,
        "signature": chain::hex(&head.signature),
    })
}

/// A kept head read back from its JSON file.
pub fn head_from_json(text: &str) -> Result<v1::SignedHead, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let text_field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name}"))
    };
    let micros = value["time_micros"]
        .as_i64()
        .ok_or_else(|| "no time_micros".to_owned())?;
    Ok(v1::SignedHead {
        plan_id: text_field("plan_id")?,
        version: value["version"]
            .as_u64()
            .ok_or_else(|| "no version".to_owned())?,
        head_hash: text_field("head_hash")?,
        time: Some(prost_types::Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or_default(),
        }),
        key_id: text_field("key_id")?,
        signature: unhex(&text_field("signature")?)
            .ok_or_else(|| "signature is not hex".to_owned())?,
    })
}
