//! A plan's history: diffs, decisions and their lifecycles, events, the security log's
//! refusals, a verified chain, a rebuild.

use alliance_proto::convert::{decision_status_from_proto, event_from_payload, side_from_proto};
use alliance_proto::v1;
use serde_json::{Value, json};

use super::{
    Column, Render, date_json, date_text, instant, instant_text, name, name_text, needed_sides,
    or_dash, section_with, sides, table_of,
};

fn change_kind(kind: i32) -> Option<&'static str> {
    match v1::ElementChangeKind::try_from(kind).ok()? {
        v1::ElementChangeKind::Added => Some("added"),
        v1::ElementChangeKind::Removed => Some("removed"),
        v1::ElementChangeKind::Changed => Some("changed"),
        v1::ElementChangeKind::Unspecified => None,
    }
}

fn refs_json(events: &[v1::EventRef]) -> Vec<Value> {
    events
        .iter()
        .map(|e| json!({ "version": e.version, "event_type": e.event_type }))
        .collect()
}

fn refs_text(events: &[v1::EventRef]) -> String {
    let versions: Vec<String> = events.iter().map(|e| format!("v{}", e.version)).collect();
    or_dash(&versions.join(","))
}

fn recorded_json(e: &v1::RecordedEvent) -> Value {
    json!({
        "version": e.version,
        "event_type": e.event_type,
        "actor": e.actor,
        "record_time": instant(e.record_time.as_ref()),
    })
}

/// The columns of a diff's sections: the decisions and elements it changed, its events.
const DECISIONS: &[Column<v1::DecisionChange>] = &[
    ("ID", |c| c.decision_id.clone()),
    ("STATUS", |c| {
        let before = name_text(c.before, decision_status_from_proto);
        let after = name_text(c.after, decision_status_from_proto);
        format!("{before}\u{2192}{after}")
    }),
    ("EVENTS", |c| refs_text(&c.events)),
    ("TITLE", |c| c.title.clone()),
];

const ELEMENTS: &[Column<v1::ElementChange>] = &[
    ("ID", |c| c.element_id.clone()),
    ("CHANGE", |c| change_kind(c.kind).unwrap_or("-").to_owned()),
    ("EVENTS", |c| refs_text(&c.events)),
];

const EVENTS: &[Column<v1::RecordedEvent>] = &[
    ("VERSION", |e| format!("v{}", e.version)),
    ("EVENT", |e| e.event_type.clone()),
    ("BY", |e| or_dash(&e.actor)),
    ("RECORDED", |e| instant_text(e.record_time.as_ref())),
];

impl Render for v1::PlanDiff {
    fn json(&self) -> Value {
        let d = self;
        json!({
            "plan_id": d.plan_id,
            "from_version": d.from_version,
            "to_version": d.to_version,
            "decisions": d.decisions.iter().map(|c| json!({
                "decision_id": c.decision_id,
                "title": c.title,
                "before": name(c.before, decision_status_from_proto),
                "after": name(c.after, decision_status_from_proto),
                "events": refs_json(&c.events),
            })).collect::<Vec<_>>(),
            "elements": d.elements.iter().map(|c| json!({
                "element_id": c.element_id,
                "kind": change_kind(c.kind),
                "events": refs_json(&c.events),
            })).collect::<Vec<_>>(),
            "events": d.events.iter().map(recorded_json).collect::<Vec<_>>(),
        })
    }

    fn text(&self) -> String {
        let d = self;
        let mut out = vec![format!(
            "plan {}  from version {} to version {}",
            d.plan_id, d.from_version, d.to_version
        )];
        section_with(&mut out, "decisions changed", &d.decisions, DECISIONS);
        section_with(&mut out, "elements changed", &d.elements, ELEMENTS);
        section_with(&mut out, "events", &d.events, EVENTS);
        out.join("\n")
    }
}

fn decision_view_json(d: &v1::DecisionView) -> Value {
    json!({
        "decision_id": d.decision_id,
        "title": d.title,
        "rationale": d.rationale,
        "owner_team": d.owner_team,
        "effective_date": date_json(d.effective_date.as_ref()),
        "required_sides": sides(&d.required_sides),
        "derived_sides": sides(&d.derived_sides),
        "status": name(d.status, decision_status_from_proto),
        "endorsements": sides(&d.endorsements),
        "status_reason": (!d.status_reason.is_empty()).then_some(&d.status_reason),
        "step_count": d.step_count,
        "history": d.history.iter().map(recorded_json).collect::<Vec<_>>(),
    })
}

impl Render for v1::ListDecisionsResponse {
    fn json(&self) -> Value {
        json!({ "decisions": self.decisions.iter().map(decision_view_json).collect::<Vec<_>>() })
    }

    fn text(&self) -> String {
        let headers = [
            "ID",
            "STATUS",
            "OWNER",
            "EFFECTIVE",
            "REQUIRED",
            "ENDORSED",
            "HISTORY",
            "TITLE",
        ];
        table_of(&self.decisions, "no decisions", &headers, |d| {
            vec![
                d.decision_id.clone(),
                name_text(d.status, decision_status_from_proto),
                or_dash(&d.owner_team),
                date_text(d.effective_date.as_ref()),
                needed_sides(&d.required_sides, &d.derived_sides),
                or_dash(&sides(&d.endorsements).join(",")),
                d.history.len().to_string(),
                d.title.clone(),
            ]
        })
    }
}

/// One refused request of the security log: one row, its count and the peer if known.
impl Render for v1::Denial {
    fn json(&self) -> Value {
        let d = self;
        json!({
            "time": instant(d.time.as_ref()),
            "last_time": instant(d.last_time.as_ref()),
            "count": d.count,
            "caller": d.caller,
            "peer": d.peer,
            "method": d.method,
            "code": d.code,
            "reason": d.reason,
        })
    }

    fn text(&self) -> String {
        let d = self;
        let peer = if d.peer.is_empty() {
            String::new()
        } else {
            format!(" from {}", d.peer)
        };
        let count = if d.count > 1 {
            format!(
                " ({} times until {})",
                d.count,
                instant_text(d.last_time.as_ref())
            )
        } else {
            String::new()
        };
        format!(
            "{} {} {}{peer} {}: {}{count}",
            instant_text(d.time.as_ref()),
            d.code,
            d.caller,
            d.method,
            d.reason
        )
    }
}

/// One event of `watch` and `audit history`: a text line or one JSON object.
impl Render for v1::EventEnvelope {
    fn json(&self) -> Value {
        let e = self;
        let actor = e.actor.clone().unwrap_or_default();
        let payload = e
            .payload
            .as_ref()
            .and_then(|p| event_from_payload(p).ok())
            .and_then(|event| serde_json::to_value(event).ok());
        let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        json!({
            "event_id": e.event_id,
            "plan_id": e.plan_id,
            "version": e.plan_version,
            "event_type": e.event_type,
            "record_time": instant(e.record_time.as_ref()),
            "valid_date": date_json(e.valid_date.as_ref()),
            "actor": {
                "team": actor.team,
                "user": text(&actor.user),
                "side": name(actor.side, side_from_proto),
            },
            "command_id": e.command_id,
            "correlation_id": text(&e.correlation_id),
            "causation_id": text(&e.causation_id),
            "schema_version": e.schema_version,
            "payload": payload,
        })
    }

    fn text(&self) -> String {
        let e = self;
        let actor = e.actor.clone().unwrap_or_default();
        let who = if actor.user.is_empty() {
            or_dash(&actor.team)
        } else {
            format!("{}/{}", actor.team, actor.user)
        };
        format!(
            "v{} {} by {} at {}",
            e.plan_version,
            e.event_type,
            who,
            instant_text(e.record_time.as_ref())
        )
    }
}

/// A plan's chain, verified by the server.
impl Render for v1::VerifyPlanReply {
    fn json(&self) -> Value {
        let r = self;
        json!({
            "plan_id": r.plan_id,
            "ok": r.ok,
            "events": r.events,
            "head_hash": r.head_hash,
            "unsigned_through": r.unsigned_through,
            "unsigned_covered_by": r.unsigned_covered_by,
            "vouched": r.vouched.iter().map(vouched_json).collect::<Vec<_>>(),
            "first_break": r.first_break.as_ref().map(|b| json!({
                "kind": b.kind,
                "version": b.version,
                "position": b.position,
                "partition": b.partition,
                "offset": b.offset,
                "detail": b.detail,
            })),
        })
    }

    fn text(&self) -> String {
        let r = self;
        match &r.first_break {
            None => format!(
                "ok plan {}: hash chain of {} events holds, {}{}; head {}",
                r.plan_id,
                r.events,
                signed_text(r.unsigned_through, r.unsigned_covered_by, r.events),
                vouched_text(&r.vouched),
                r.head_hash
            ),
            Some(b) => {
                let kafka = match (b.partition, b.offset) {
                    (Some(partition), Some(offset)) => {
                        format!(", partition {partition} offset {offset}")
                    }
                    _ => String::new(),
                };
                format!(
                    "BROKEN plan {}: {} record at version {} (log position {}{kafka}): {}; the {} events before it verify, head {}",
                    r.plan_id, b.kind, b.version, b.position, b.detail, r.events, r.head_hash
                )
            }
        }
    }
}

/// A vouched head as JSON (`audit verify --output json`).
pub fn vouched_json(v: &v1::VouchedHead) -> Value {
    json!({
        "recorded_at": v.recorded_at,
        "version": v.version,
        "head_hash": v.head_hash,
        "by": v.by,
        "key_id": v.key_id,
        "side": v.side,
        "actor": v.actor,
        "verified": v.verified,
    })
}

/// The heads vouched for, as a clause of a verification's line (empty without any): which side
/// witnessed which version, and where the writer signed a head.
pub fn vouched_text(vouched: &[v1::VouchedHead]) -> String {
    let each: Vec<String> = vouched
        .iter()
        .map(|v| {
            let who = match (v.by.as_str(), v.side.as_str()) {
                ("writer", _) => format!("signed by the writer (key {})", v.key_id),
                (_, "us") => format!("witnessed by the U.S. (key {})", v.key_id),
                (_, "rok") => format!("witnessed by the ROK (key {})", v.key_id),
                _ => format!("witnessed by key {} (not checked)", v.key_id),
            };
            format!(
                "version {} {who}, recorded at version {} by {}",
                v.version, v.recorded_at, v.actor
            )
        })
        .collect();
    if each.is_empty() {
        String::new()
    } else {
        format!("; heads vouched for: {}", each.join("; "))
    }
}

/// How much of a verified chain is signed, and which signed record covers the unsigned ones
/// before it (`covered_by`, 0: none).
pub fn signed_text(unsigned_through: u64, covered_by: u64, events: u64) -> String {
    match unsigned_through {
        0 => "each record signed by a trusted key".into(),
        n if n >= events => format!(
            "no record signed (sealed before writers signed; `alliancectl audit sign` signs \
             versions 1..{n} from now on)"
        ),
        n if covered_by > 0 => format!(
            "unsigned up to version {n}, covered by the signature of version {covered_by}, each \
             record after signed by a trusted key"
        ),
        n => format!("unsigned up to version {n}, each record after signed by a trusted key"),
    }
}

/// A rebuild of the read models, done.
impl Render for v1::RebuildReply {
    fn json(&self) -> Value {
        let r = self;
        json!({
            "events": r.events,
            "plans": r.plans,
            "position": r.position,
            "digest": r.digest,
            "elapsed_ms": r.elapsed_ms,
        })
    }

    fn text(&self) -> String {
        let r = self;
        format!(
            "ok rebuilt read models: {} events of {} plans up to position {} in {} ms; digest {}",
            r.events, r.plans, r.position, r.elapsed_ms, r.digest
        )
    }
}
