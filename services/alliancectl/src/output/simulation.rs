//! A simulation run's result, risks first, as tables or one JSON object; a comparison of two
//! runs side by side.

use alliance_domain::CapabilityArea;
use alliance_proto::convert::{area_from_proto, side_from_proto};
use alliance_proto::v1;
use serde_json::{Value, json};

use super::{
    Column, Render, date, date_json, date_text, instant, section, section_of, section_with, table,
};
use crate::parse::enum_name;

/// How many investments the table's sensitivity section lists.
const TOP_SENSITIVITY: usize = 5;

/// What a run printed: one result, or (a comparison) two side by side.
pub(crate) struct Outcome {
    pub(crate) left: v1::SimulationResult,
    pub(crate) right: Option<v1::SimulationResult>,
}

impl Outcome {
    pub(crate) fn trials(&self) -> u64 {
        u64::from(self.left.trials) + self.right.as_ref().map_or(0, |r| u64::from(r.trials))
    }
}

/// The result, or the comparison of two.
impl Render for Outcome {
    fn json(&self) -> Value {
        match &self.right {
            None => result_json(&self.left),
            Some(right) => json!({ "left": result_json(&self.left), "right": result_json(right) }),
        }
    }

    fn text(&self) -> String {
        match &self.right {
            None => result_text(&self.left),
            Some(right) => comparison_text(&self.left, right),
        }
    }
}

// ---- values --------------------------------------------------------------------------------

fn month_text(d: Option<&v1::Date>) -> String {
    date(d).map_or_else(|| "-".to_owned(), |d| d.format("%Y-%m").to_string())
}

fn area(value: i32) -> Option<CapabilityArea> {
    area_from_proto(value)
}

fn area_name(value: i32) -> Option<String> {
    area(value).map(enum_name)
}

fn area_text(value: i32) -> String {
    area_name(value).unwrap_or_else(|| "-".to_owned())
}

/// A probability as a percentage with one decimal, e.g. `37.2%`.
fn pct(p: f64) -> String {
    format!("{:.1}%", p * 100.0)
}

fn opt_pct(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), pct)
}

fn points(v: f64) -> String {
    format!("{v:.1}")
}

fn or_none(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn bands_json(b: Option<&v1::Bands>) -> Value {
    b.map_or(
        Value::Null,
        |b| json!({ "p10": b.p10, "p50": b.p50, "p90": b.p90 }),
    )
}

// ---- JSON ----------------------------------------------------------------------------------

/// The result as one JSON object, with the proto's field names.
pub fn result_json(r: &v1::SimulationResult) -> Value {
    let actor = r.actor.clone().unwrap_or_default();
    json!({
        "run_id": r.run_id,
        "plan_id": r.plan_id,
        "plan_version": r.plan_version,
        "what_if": r.what_if,
        "overlay": r.overlay,
        "seed": r.seed,
        "trials": r.trials,
        "start": date_json(r.start.as_ref()),
        "months": r.months,
        "model_version": r.model_version,
        "inputs_digest": r.inputs_digest,
        "results_digest": r.results_digest,
        "monthly": r.monthly.iter().map(|m| json!({
            "month": date_json(m.month.as_ref()),
            "us_personnel": bands_json(m.us_personnel.as_ref()),
            "shortfall_probability": m.shortfall_probability,
            "areas": m.areas.iter().map(|a| json!({
                "area": area_name(a.area),
                "required": bands_json(a.required.as_ref()),
                "us": bands_json(a.us.as_ref()),
                "rok": bands_json(a.rok.as_ref()),
                "combined": bands_json(a.combined.as_ref()),
                "shortfall": bands_json(a.shortfall.as_ref()),
                "shortfall_probability": a.shortfall_probability,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "transfer_decision_id": or_none(&r.transfer_decision_id),
        "transfer_on": date_json(r.transfer_on.as_ref()),
        "conditions": r.conditions.iter().map(|c| json!({
            "condition_id": c.condition_id,
            "title": c.title,
            "criterion": c.criterion,
            "probability_at_transfer": c.probability_at_transfer,
            "likely_met_by": date_json(c.likely_met_by.as_ref()),
        })).collect::<Vec<_>>(),
        "all_conditions_at_transfer": r.all_conditions_at_transfer,
        "all_conditions_likely_by": date_json(r.all_conditions_likely_by.as_ref()),
        "risks": r.risks.iter().map(|k| json!({
            "decision_id": or_none(&k.decision_id),
            "element_id": k.element_id,
            "on": date_json(k.on.as_ref()),
            "area": area_name(k.area),
            "us_loss": k.us_loss,
            "to_replace": k.to_replace,
            "investment_id": or_none(&k.investment_id),
            "fielded_probability": k.fielded_probability,
            "shortfall_probability": k.shortfall_probability,
        })).collect::<Vec<_>>(),
        "sensitivity": r.sensitivity.iter().map(|x| json!({
            "investment_id": x.investment_id,
            "area": area_name(x.area),
            "correlation": x.correlation,
            "shortfall_per_month_of_delay": x.shortfall_per_month_of_delay,
        })).collect::<Vec<_>>(),
        "shortfall_probability": r.shortfall_probability,
        "headline": r.headline,
        "recorded_version": r.recorded_version,
        "actor": {
            "team": actor.team,
            "user": or_none(&actor.user),
            "side": side_from_proto(actor.side).map(enum_name),
        },
        "completed_at": instant(r.completed_at.as_ref()),
    })
}

// ---- tables --------------------------------------------------------------------------------

/// What was simulated, in one line.
fn subject(r: &v1::SimulationResult) -> String {
    let mut line = format!("plan {} version {}", r.plan_id, r.plan_version);
    if r.what_if {
        line.push_str(", what-if (proposed decisions applied)");
    }
    if !r.overlay.is_empty() {
        line.push_str(&format!(", overlay {}", r.overlay.join(", ")));
    }
    line
}

fn window_text(r: &v1::SimulationResult) -> String {
    let first = r.monthly.first().and_then(|m| m.month.as_ref());
    let last = r.monthly.last().and_then(|m| m.month.as_ref());
    format!(
        "{} to {} ({} months)",
        month_text(first.or(r.start.as_ref())),
        month_text(last),
        r.months
    )
}

fn recorded_text(r: &v1::SimulationResult) -> String {
    match (r.recorded_version, r.overlay.is_empty()) {
        (0, false) => "not recorded (overlay)".to_owned(),
        (0, true) => "not recorded".to_owned(),
        (v, _) => format!("plan version {v} (SimulationRunRecorded)"),
    }
}

/// The area's worst month: its date and probability of a shortfall, and the shortfall's
/// P50 and P90 then; with the number of months where a shortfall is more likely than not.
struct AreaSummary {
    area: i32,
    worst: Option<(usize, f64)>,
    likely_months: usize,
}

/// The run's areas, in the order they first appear month by month.
pub(crate) fn area_order(r: &v1::SimulationResult) -> Vec<i32> {
    let mut order: Vec<i32> = Vec::new();
    for m in &r.monthly {
        for a in &m.areas {
            if !order.contains(&a.area) {
                order.push(a.area);
            }
        }
    }
    order
}

fn area_summaries(r: &v1::SimulationResult) -> Vec<AreaSummary> {
    area_order(r)
        .into_iter()
        .map(|area| {
            let mut worst: Option<(usize, f64)> = None;
            let mut likely_months = 0;
            for (i, m) in r.monthly.iter().enumerate() {
                let Some(a) = m.areas.iter().find(|a| a.area == area) else {
                    continue;
                };
                let p = a.shortfall_probability;
                if p >= 0.5 {
                    likely_months += 1;
                }
                if p > 0.0 && worst.is_none_or(|(_, w)| p > w) {
                    worst = Some((i, p));
                }
            }
            AreaSummary {
                area,
                worst,
                likely_months,
            }
        })
        .collect()
}

/// The columns of a run's OPCON conditions.
const CONDITIONS: &[Column<v1::ConditionOutcome>] = &[
    ("CONDITION", |c| c.condition_id.clone()),
    ("CRITERION", |c| c.criterion.clone()),
    ("P AT TRANSFER", |c| opt_pct(c.probability_at_transfer)),
    ("LIKELY MET BY", |c| month_text(c.likely_met_by.as_ref())),
];

/// The result as tables, risks first.
pub fn result_text(r: &v1::SimulationResult) -> String {
    let mut out = vec![
        format!("simulation of {}", subject(r)),
        r.headline.clone(),
        format!(
            "P(shortfall in any area in any month) {}; window {}",
            pct(r.shortfall_probability),
            window_text(r)
        ),
    ];

    section_of(
        &mut out,
        "Sequencing risks",
        &[
            "DATE",
            "DECISION",
            "ELEMENT",
            "AREA",
            "U.S. LOSS",
            "TO REPLACE",
            "REPLACING INVESTMENT",
            "P(FIELDED)",
            "P(SHORTFALL)",
        ],
        &r.risks,
        |k| {
            vec![
                date_text(k.on.as_ref()),
                or_none(&k.decision_id).unwrap_or("-").to_owned(),
                k.element_id.clone(),
                area_text(k.area),
                points(k.us_loss),
                points(k.to_replace),
                or_none(&k.investment_id)
                    .unwrap_or("none planned")
                    .to_owned(),
                pct(k.fielded_probability),
                opt_pct(k.shortfall_probability),
            ]
        },
    );

    out.push(String::new());
    match or_none(&r.transfer_decision_id) {
        Some(decision) => out.push(format!(
            "OPCON transfer: {decision} on {}",
            date_text(r.transfer_on.as_ref())
        )),
        None => out.push("OPCON transfer: none scheduled in the plan simulated".to_owned()),
    }
    section_with(&mut out, "OPCON conditions", &r.conditions, CONDITIONS);
    if !r.conditions.is_empty() {
        let by = match date(r.all_conditions_likely_by.as_ref()) {
            Some(d) => d.format("%Y-%m").to_string(),
            None => "not within the window".to_owned(),
        };
        out.push(format!(
            "all conditions: P at transfer {}; likely met by {by}",
            opt_pct(r.all_conditions_at_transfer)
        ));
    }

    let sensitivity = r
        .sensitivity
        .iter()
        .take(TOP_SENSITIVITY)
        .map(|x| {
            vec![
                x.investment_id.clone(),
                area_text(x.area),
                format!("{:.2}", x.correlation),
                points(x.shortfall_per_month_of_delay),
            ]
        })
        .collect();
    section(
        &mut out,
        "Top sensitivity",
        &[
            "INVESTMENT",
            "AREA",
            "CORRELATION",
            "SHORTFALL PER MONTH OF DELAY (POINT-MONTHS)",
        ],
        sensitivity,
    );

    let shortfalls = area_summaries(r)
        .into_iter()
        .map(|s| {
            let (month, p, p50, p90) = match s.worst {
                Some((i, p)) => {
                    let m = &r.monthly[i];
                    let shortfall = m
                        .areas
                        .iter()
                        .find(|a| a.area == s.area)
                        .and_then(|a| a.shortfall);
                    (
                        month_text(m.month.as_ref()),
                        pct(p),
                        shortfall.map_or_else(|| "-".to_owned(), |b| points(b.p50)),
                        shortfall.map_or_else(|| "-".to_owned(), |b| points(b.p90)),
                    )
                }
                None => ("none".to_owned(), pct(0.0), "-".to_owned(), "-".to_owned()),
            };
            vec![
                area_text(s.area),
                month,
                p,
                p50,
                p90,
                s.likely_months.to_string(),
            ]
        })
        .collect();
    section(
        &mut out,
        "Shortfall by area",
        &[
            "AREA",
            "WORST MONTH",
            "P(SHORTFALL)",
            "SHORTFALL P50",
            "SHORTFALL P90",
            "MONTHS P>=50%",
        ],
        shortfalls,
    );

    out.push(String::new());
    out.push(format!("run {}", r.run_id));
    out.push(format!(
        "seed {}  trials {}  model {}",
        r.seed, r.trials, r.model_version
    ));
    out.push(format!("inputs digest {}", r.inputs_digest));
    out.push(format!("results digest {}", r.results_digest));
    out.push(format!("recorded: {}", recorded_text(r)));
    out.join("\n")
}

/// Both results, then what changed from left to right.
pub fn comparison_text(left: &v1::SimulationResult, right: &v1::SimulationResult) -> String {
    let rule = "=".repeat(78);
    let likely_by = |r: &v1::SimulationResult| {
        date(r.all_conditions_likely_by.as_ref())
            .map_or_else(|| "-".to_owned(), |d| d.format("%Y-%m").to_string())
    };
    let change = |l: Option<f64>, r: Option<f64>| match (l, r) {
        (Some(l), Some(r)) => format!("{:+.1} pts", (r - l) * 100.0),
        _ => "-".to_owned(),
    };
    let rows = vec![
        vec![
            "P(shortfall)".to_owned(),
            pct(left.shortfall_probability),
            pct(right.shortfall_probability),
            change(
                Some(left.shortfall_probability),
                Some(right.shortfall_probability),
            ),
        ],
        vec![
            "P(all OPCON conditions at transfer)".to_owned(),
            opt_pct(left.all_conditions_at_transfer),
            opt_pct(right.all_conditions_at_transfer),
            change(
                left.all_conditions_at_transfer,
                right.all_conditions_at_transfer,
            ),
        ],
        vec![
            "all conditions likely met by".to_owned(),
            likely_by(left),
            likely_by(right),
            String::new(),
        ],
        vec![
            "sequencing risks".to_owned(),
            left.risks.len().to_string(),
            right.risks.len().to_string(),
            format!("{:+}", right.risks.len() as i64 - left.risks.len() as i64),
        ],
    ];
    [
        format!("LEFT: {}", result_text(left)),
        rule.clone(),
        format!("RIGHT: {}", result_text(right)),
        rule,
        format!(
            "comparison, same seed {} and {} trials\nleft:  {}\nright: {}\n\n{}",
            left.seed,
            left.trials,
            subject(left),
            subject(right),
            table(&["", "LEFT", "RIGHT", "CHANGE"], rows)
        ),
    ]
    .join("\n")
}

#[cfg(test)]
pub(crate) mod tests {
    use alliance_domain::Date;
    use alliance_proto::convert::date_to_proto;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Option<v1::Date> {
        Date::from_ymd_opt(y, m, day).map(date_to_proto)
    }

    fn bands(p10: f64, p50: f64, p90: f64) -> Option<v1::Bands> {
        Some(v1::Bands { p10, p50, p90 })
    }

    pub(crate) fn sample() -> v1::SimulationResult {
        let month = |m: u32, p: f64| v1::SimulatedMonth {
            month: d(2027, m, 1),
            us_personnel: bands(27_000.0, 28_000.0, 28_500.0),
            shortfall_probability: p,
            areas: vec![
                v1::AreaMonth {
                    area: v1::CapabilityArea::MissileDefense as i32,
                    required: bands(80.0, 85.0, 90.0),
                    us: bands(30.0, 35.0, 35.0),
                    rok: bands(45.0, 50.0, 55.0),
                    combined: bands(75.0, 85.0, 90.0),
                    shortfall: bands(0.0, 2.0, 10.0),
                    shortfall_probability: p,
                },
                v1::AreaMonth {
                    area: v1::CapabilityArea::GroundCombat as i32,
                    required: bands(90.0, 95.0, 100.0),
                    us: bands(15.0, 15.0, 15.0),
                    rok: bands(85.0, 85.0, 85.0),
                    combined: bands(100.0, 100.0, 100.0),
                    shortfall: bands(0.0, 0.0, 0.0),
                    shortfall_probability: 0.0,
                },
            ],
        };
        v1::SimulationResult {
            run_id: "019a0000-0000-7000-8000-0000000000aa".into(),
            plan_id: "019a0000-0000-7000-8000-000000000001".into(),
            plan_version: 171,
            what_if: true,
            seed: 7,
            trials: 500,
            start: d(2027, 1, 1),
            months: 3,
            model_version: "test-1".into(),
            inputs_digest: "abc".into(),
            results_digest: "def".into(),
            monthly: vec![month(1, 0.1), month(2, 0.6), month(3, 0.4)],
            transfer_decision_id: "opcon-wartime-transfer".into(),
            transfer_on: d(2027, 2, 15),
            conditions: vec![v1::ConditionOutcome {
                condition_id: "rok-missile-defense-70".into(),
                title: "ROK missile-defense coverage >= 70".into(),
                criterion: "ROK missile_defense >= 70".into(),
                probability_at_transfer: Some(0.25),
                likely_met_by: None,
            }],
            all_conditions_at_transfer: Some(0.2),
            all_conditions_likely_by: None,
            risks: vec![v1::SequencingRisk {
                decision_id: "withdraw-35ada".into(),
                element_id: "35ada-bde".into(),
                on: d(2027, 2, 1),
                area: v1::CapabilityArea::MissileDefense as i32,
                us_loss: 20.0,
                to_replace: 12.5,
                investment_id: String::new(),
                fielded_probability: 0.0,
                shortfall_probability: Some(0.6),
            }],
            sensitivity: vec![],
            shortfall_probability: 0.65,
            headline: "Shortfall likely in missile defense".into(),
            recorded_version: 0,
            overlay: vec!["withdraw-35ada".into()],
            actor: None,
            completed_at: None,
        }
    }

    #[test]
    fn the_table_puts_risks_first_and_says_an_overlay_run_is_not_recorded() {
        let text = result_text(&sample());
        let risks = text.find("Sequencing risks (1):").unwrap();
        let conditions = text.find("OPCON conditions (1):").unwrap();
        let areas = text.find("Shortfall by area (2):").unwrap();
        assert!(risks < conditions && conditions < areas, "{text}");
        assert!(text.contains("none planned"), "{text}");
        assert!(text.contains("Top sensitivity: none"), "{text}");
        assert!(
            text.contains("all conditions: P at transfer 20.0%; likely met by not within"),
            "{text}"
        );
        // Missile defense's worst month is February, at 60%.
        let line = text
            .lines()
            .find(|l| l.starts_with("missile_defense  2027-02"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("60.0%"), "{line}");
        assert!(text.contains("ground_combat    none"), "{text}");
        assert!(text.ends_with("recorded: not recorded (overlay)"), "{text}");
    }

    #[test]
    fn json_keeps_the_proto_field_names() {
        let json = result_json(&sample());
        assert_eq!(json["seed"], 7);
        assert_eq!(json["monthly"].as_array().unwrap().len(), 3);
        assert_eq!(json["monthly"][0]["areas"][0]["area"], "missile_defense");
        assert_eq!(json["monthly"][0]["areas"][0]["combined"]["p50"], 85.0);
        assert_eq!(json["risks"][0]["investment_id"], Value::Null);
        assert_eq!(json["transfer_on"], "2027-02-15");
        assert_eq!(json["recorded_version"], 0);
        assert_eq!(json["all_conditions_likely_by"], Value::Null);
    }

    #[test]
    fn a_comparison_lists_the_changes() {
        let left = sample();
        let right = v1::SimulationResult {
            shortfall_probability: 0.3,
            risks: vec![],
            ..sample()
        };
        let text = comparison_text(&left, &right);
        assert!(text.starts_with("LEFT: simulation of"), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("P(shortfall)"))
            .unwrap();
        assert!(line.contains("-35.0 pts"), "{line}");
    }
}
