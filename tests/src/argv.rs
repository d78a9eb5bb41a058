//! Command lines of `alliancectl`, each flag given.

/// `alliancectl element register`: a baseline element, every flag given, in this order:
/// `--plan` (when set), `--id`, `--name`, `--side`, `--component`, `--kind`, `--personnel`,
/// each `--equipment`, `--base`, `--present-from`.
#[derive(Clone, Debug)]
pub struct ElementRegister<'a> {
    pub plan: Option<&'a str>,
    pub id: &'a str,
    pub name: &'a str,
    pub side: &'a str,
    pub component: &'a str,
    pub kind: &'a str,
    pub personnel: &'a str,
    pub equipment: &'a [&'a str],
    pub base: &'a str,
    pub present_from: &'a str,
}

impl<'a> ElementRegister<'a> {
    /// A small U.S. Army logistics unit `id`: 100 personnel at Camp Humphreys, present from
    /// 2024-01-01.
    pub fn unit(id: &'a str) -> Self {
        ElementRegister {
            plan: None,
            id,
            name: "unit",
            side: "us",
            component: "army",
            kind: "logistics",
            personnel: "100",
            equipment: &[],
            base: "Camp Humphreys",
            present_from: "2024-01-01",
        }
    }

    /// The 2ID rotational ABCT as `id`: a U.S. Army ground combat brigade of 4,500 with 90 M1A2
    /// and 100 M2A3 at Camp Humphreys, present from 2024-01-01.
    pub fn abct(id: &'a str) -> Self {
        ElementRegister {
            name: "2ID rotational ABCT",
            kind: "ground_combat_brigade",
            personnel: "4500",
            equipment: &["M1A2=90", "M2A3=100"],
            ..ElementRegister::unit(id)
        }
    }

    /// On `plan`.
    pub fn on(self, plan: &'a str) -> Self {
        ElementRegister {
            plan: Some(plan),
            ..self
        }
    }

    /// The arguments, from `element register` on.
    pub fn argv(&self) -> Vec<&'a str> {
        let mut args = vec!["element", "register"];
        if let Some(plan) = self.plan {
            args.extend(["--plan", plan]);
        }
        args.extend([
            "--id",
            self.id,
            "--name",
            self.name,
            "--side",
            self.side,
            "--component",
            self.component,
            "--kind",
            self.kind,
            "--personnel",
            self.personnel,
        ]);
        for equipment in self.equipment {
            args.extend(["--equipment", equipment]);
        }
        args.extend(["--base", self.base, "--present-from", self.present_from]);
        args
    }
}

/// `alliancectl plan create` of a plan named `name` over 2020-01-01 to 2035-12-31.
pub fn plan_create(name: &str) -> Vec<&str> {
    vec![
        "plan",
        "create",
        "--name",
        name,
        "--horizon-start",
        "2020-01-01",
        "--horizon-end",
        "2035-12-31",
    ]
}

/// `alliancectl decision propose` of decision `id`, effective on `effective`, needing the
/// endorsement of `sides` (comma-separated).
pub fn decision_propose<'a>(
    id: &'a str,
    title: &'a str,
    rationale: &'a str,
    effective: &'a str,
    sides: &'a str,
) -> Vec<&'a str> {
    vec![
        "decision",
        "propose",
        "--id",
        id,
        "--title",
        title,
        "--rationale",
        rationale,
        "--effective",
        effective,
        "--sides",
        sides,
    ]
}
