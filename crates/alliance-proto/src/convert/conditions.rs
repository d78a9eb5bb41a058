//! Prerequisites, constraints, waivers and findings both ways.

use alliance_domain::{ConstraintRule, Date, Finding, FindingKind, Prerequisite, Step, Waiver};

use super::fields::Fields;
use super::scalars::*;
use crate::v1;
use crate::v1::constraint_rule::Kind as RuleKind;
use crate::v1::prerequisite::Kind as PrerequisiteKind;

pub fn prerequisite_to_proto(prerequisite: &Prerequisite) -> v1::Prerequisite {
    let kind = match prerequisite {
        Prerequisite::AfterDecision {
            decision_id,
            lag_months,
        } => PrerequisiteKind::AfterDecision(v1::prerequisite::AfterDecision {
            decision_id: decision_id.to_string(),
            lag_months: *lag_months,
        }),
        Prerequisite::ConditionsMet { conditions } => {
            PrerequisiteKind::ConditionsMet(v1::prerequisite::ConditionsMet {
                condition_ids: conditions.iter().map(ToString::to_string).collect(),
            })
        }
        Prerequisite::CapabilityReached { side, area, level } => {
            PrerequisiteKind::CapabilityReached(v1::prerequisite::CapabilityReached {
                side: side_to_proto(*side),
                area: area_to_proto(*area),
                level: *level,
            })
        }
    };
    v1::Prerequisite { kind: Some(kind) }
}

pub fn constraint_rule_to_proto(rule: &ConstraintRule) -> v1::ConstraintRule {
    let kind = match rule {
        ConstraintRule::Personnel {
            side,
            component,
            kind,
            min,
            max,
        } => RuleKind::Personnel(v1::constraint_rule::PersonnelBounds {
            side: side_to_proto(*side),
            component: component.map_or(0, component_to_proto),
            kind: kind.map_or(0, kind_to_proto),
            min: *min,
            max: *max,
        }),
        ConstraintRule::CombinedCapability { area, min } => {
            RuleKind::CombinedCapability(v1::constraint_rule::CombinedCapability {
                area: area_to_proto(*area),
                min: *min,
            })
        }
    };
    v1::ConstraintRule { kind: Some(kind) }
}

pub fn waiver_to_proto(waiver: &Waiver) -> v1::ConstraintWaiver {
    v1::ConstraintWaiver {
        from: Some(date_to_proto(waiver.from)),
        authority: waiver.authority.clone(),
        note: waiver.note.clone(),
        certified_by: waiver.certified_by.to_string(),
    }
}

pub fn finding_to_proto(finding: &Finding) -> v1::Finding {
    v1::Finding {
        id: finding.id.clone(),
        kind: match finding.kind {
            FindingKind::Prerequisite => v1::FindingKind::Prerequisite,
            FindingKind::TransferConditions => v1::FindingKind::TransferConditions,
            FindingKind::Constraint => v1::FindingKind::Constraint,
        } as i32,
        from: Some(date_to_proto(finding.from)),
        until: finding.until.map(date_to_proto),
        message: finding.message.clone(),
        decision_ids: finding.decisions.iter().map(ToString::to_string).collect(),
        constraint_id: finding
            .constraint_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        acknowledged: finding.acknowledged,
    }
}

impl Fields {
    /// An `AssignMission` step, as a request and its event both carry it.
    pub fn mission_step(
        &mut self,
        mission: i32,
        lead: i32,
        supporting: i32,
        on: Option<&v1::Date>,
    ) -> Option<Step> {
        let mission = self.enum_value("mission", mission, mission_from_proto);
        let lead = self.enum_value("lead", lead, side_from_proto);
        let supporting = self.opt_enum("supporting", supporting, side_from_proto);
        let on = self.date("on", on);
        Some(Step::AssignMission {
            mission: mission?,
            lead: lead?,
            supporting,
            on: on?,
        })
    }

    /// An optional date: `Some(None)` when present but not a calendar date (a violation).
    pub fn opt_date(&mut self, field: &str, date: Option<&v1::Date>) -> Option<Option<Date>> {
        match date {
            None => Some(None),
            Some(d) => self.date(field, Some(d)).map(Some),
        }
    }

    pub fn prerequisite(
        &mut self,
        field: &str,
        prerequisite: Option<&v1::Prerequisite>,
    ) -> Option<Prerequisite> {
        let kinds = "after_decision, conditions_met or capability_reached";
        let kind = self.one_of(field, prerequisite.and_then(|p| p.kind.as_ref()), kinds)?;
        match kind {
            PrerequisiteKind::AfterDecision(p) => self
                .id(&format!("{field}.decision_id"), &p.decision_id)
                .map(|decision_id| Prerequisite::AfterDecision {
                    decision_id,
                    lag_months: p.lag_months,
                }),
            PrerequisiteKind::ConditionsMet(p) => Some(Prerequisite::ConditionsMet {
                conditions: self.ids(&format!("{field}.condition_ids"), &p.condition_ids),
            }),
            PrerequisiteKind::CapabilityReached(p) => {
                let side = self.enum_value(&format!("{field}.side"), p.side, side_from_proto);
                let area = self.enum_value(&format!("{field}.area"), p.area, area_from_proto);
                Some(Prerequisite::CapabilityReached {
                    side: side?,
                    area: area?,
                    level: p.level,
                })
            }
        }
    }

    pub fn constraint_rule(
        &mut self,
        field: &str,
        rule: Option<&v1::ConstraintRule>,
    ) -> Option<ConstraintRule> {
        let kind = rule.and_then(|r| r.kind.as_ref());
        let kind = self.one_of(field, kind, "personnel or combined_capability")?;
        match kind {
            RuleKind::Personnel(r) => {
                let side = self.enum_value(&format!("{field}.side"), r.side, side_from_proto);
                let component = self.opt_enum(
                    &format!("{field}.component"),
                    r.component,
                    component_from_proto,
                );
                let kind = self.opt_enum(&format!("{field}.kind"), r.kind, kind_from_proto);
                Some(ConstraintRule::Personnel {
                    side: side?,
                    component,
                    kind,
                    min: r.min,
                    max: r.max,
                })
            }
            RuleKind::CombinedCapability(r) => self
                .enum_value(&format!("{field}.area"), r.area, area_from_proto)
                .map(|area| ConstraintRule::CombinedCapability { area, min: r.min }),
        }
    }

    pub fn waiver(&mut self, field: &str, waiver: Option<&v1::ConstraintWaiver>) -> Option<Waiver> {
        let w = self.required(field, waiver)?;
        let from = self.date(&format!("{field}.from"), w.from.as_ref());
        let certified_by = self.id(&format!("{field}.certified_by"), &w.certified_by);
        Some(Waiver {
            from: from?,
            authority: w.authority.clone(),
            note: w.note.clone(),
            certified_by: certified_by?,
        })
    }
}
