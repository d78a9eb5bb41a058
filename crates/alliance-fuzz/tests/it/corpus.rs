//! The fuzz corpus as a regression suite: every input of `fuzz/corpus/` runs through its target
//! on every `cargo test`, and the corpus must still reach the deep paths.

use std::path::PathBuf;

use alliance_domain::{Command, FieldViolation};
use alliance_fuzz::seed::{accepted_commands, command_seeds, envelope_seeds};
use alliance_fuzz::{
    CommandVerdict, EnvelopeVerdict, REQUESTS, command, command_verdict, envelope,
    envelope_verdict, reference, repository_file,
};
use alliance_proto::convert::CommandRequest;
use alliance_proto::v1;
use prost::Message;

/// Every input of one target's corpus, by file name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repository_file(&format!("fuzz/corpus/{target}"));
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = std::fs::read(&path).unwrap();
            (path, data)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn the_command_corpus_runs_and_reaches_decide() {
    let inputs = corpus("command");
    assert!(!inputs.is_empty(), "fuzz/corpus/command is empty");
    let mut accepted = 0;
    let mut refused = 0;
    for (path, data) in &inputs {
        command(data);
        match command_verdict(data) {
            CommandVerdict::Accepted { events } => {
                assert!(events > 0, "{}: accepted without events", path.display());
                accepted += 1;
            }
            CommandVerdict::Refused(_) => refused += 1,
            _ => {}
        }
    }
    assert!(
        accepted > 0,
        "no input of fuzz/corpus/command is decided successfully"
    );
    assert!(refused > 0, "no input of fuzz/corpus/command is refused");
}

#[test]
fn the_envelope_corpus_runs_and_decodes() {
    let inputs = corpus("envelope");
    assert!(!inputs.is_empty(), "fuzz/corpus/envelope is empty");
    let mut decoded = 0;
    let mut projected = 0;
    for (_, data) in &inputs {
        envelope(data);
        if let EnvelopeVerdict::Decoded { projected: p } = envelope_verdict(data) {
            decoded += 1;
            projected += usize::from(p);
        }
    }
    assert!(decoded > 0, "no input of fuzz/corpus/envelope decodes");
    assert!(
        projected > 0,
        "no input of fuzz/corpus/envelope is applied by a read model"
    );
}

#[test]
fn every_request_has_a_seed_that_is_accepted() {
    let seeds = command_seeds();
    for seed in seeds.iter().filter(|s| s.name.starts_with("accepted-")) {
        let verdict = command_verdict(&seed.data);
        assert!(
            matches!(verdict, CommandVerdict::Accepted { .. }),
            "{}: {verdict:?}",
            seed.name
        );
    }
    for (index, request) in REQUESTS.iter().enumerate() {
        let accepted = seeds.iter().any(|seed| {
            usize::from(seed.data[0] & 0x1f) == index
                && matches!(command_verdict(&seed.data), CommandVerdict::Accepted { .. })
        });
        assert!(accepted, "no seed of {request} is accepted");
    }
    assert!(!accepted_commands().is_empty());
}

fn to_command<R: CommandRequest + Message + Default>(
    body: &[u8],
) -> Result<Command, Vec<FieldViolation>> {
    R::decode(body).unwrap().to_command()
}

/// The command a command input converts to, the way the service converts its request.
fn converted(data: &[u8]) -> Result<Command, Vec<FieldViolation>> {
    let (selector, body) = data.split_first().unwrap();
    match usize::from(selector & 0x1f) % REQUESTS.len() {
        0 => to_command::<v1::CreatePlanRequest>(body),
        1 => to_command::<v1::BranchPlanRequest>(body),
        2 => to_command::<v1::RegisterForceElementRequest>(body),
        3 => to_command::<v1::RecordCapabilityLevelRequest>(body),
        4 => to_command::<v1::DefineAgreementClauseRequest>(body),
        5 => to_command::<v1::DefineConditionRequest>(body),
        6 => to_command::<v1::AssessConditionRequest>(body),
        7 => to_command::<v1::ProposeDecisionRequest>(body),
        8 => to_command::<v1::AddForceElementRequest>(body),
        9 => to_command::<v1::WithdrawForceElementRequest>(body),
        10 => to_command::<v1::ReduceForceElementRequest>(body),
        11 => to_command::<v1::RelocateForceElementRequest>(body),
        12 => to_command::<v1::ScheduleOpconTransferRequest>(body),
        13 => to_command::<v1::ChangeCommandArrangementRequest>(body),
        14 => to_command::<v1::AmendAgreementClauseRequest>(body),
        15 => to_command::<v1::PlanCapabilityInvestmentRequest>(body),
        16 => to_command::<v1::EndorseDecisionRequest>(body),
        17 => to_command::<v1::AdoptDecisionRequest>(body),
        18 => to_command::<v1::RejectDecisionRequest>(body),
        19 => to_command::<v1::WithdrawDecisionRequest>(body),
        20 => to_command::<v1::RecordSimulationRunRequest>(body),
        21 => to_command::<v1::GrantRoleRequest>(body),
        22 => to_command::<v1::RevokeRoleRequest>(body),
        23 => to_command::<v1::RequirePrerequisiteRequest>(body),
        24 => to_command::<v1::DefineConstraintRequest>(body),
        25 => to_command::<v1::WaiveConstraintRequest>(body),
        26 => to_command::<v1::AssignMissionRequest>(body),
        27 => to_command::<v1::WitnessHeadRequest>(body),
        _ => to_command::<v1::SignHeadRequest>(body),
    }
}

#[test]
fn reference_seeds_convert_back_to_the_reference_commands() {
    let reference = reference();
    let seeds = command_seeds();
    for (index, entry) in reference.plan.entries.iter().enumerate() {
        let name = format!("reference-{index:03}-{}", entry.command.name());
        let seed = seeds.iter().find(|s| s.name == name).unwrap();
        let mut command = converted(&seed.data).unwrap();
        // The service fills in the id of a new plan.
        if let Command::CreatePlan { plan_id, .. } = &mut command {
            *plan_id = reference.plan_id();
        }
        assert_eq!(command, entry.command, "{name}");
    }
}

#[test]
fn envelope_seeds_are_the_reference_events() {
    let reference = reference();
    let seeds = envelope_seeds();
    assert_eq!(seeds.len(), reference.events.len());
    for (seed, (_, event)) in seeds.iter().zip(&reference.events) {
        let stored = alliance_fuzz::record_of(&seed.data);
        let decoded = alliance_record::decode_event(&stored).unwrap();
        assert_eq!(&decoded.event, event, "{}", seed.name);
        assert_eq!(
            alliance_record::chain::verify([&stored]).is_ok(),
            stored.version == 1,
            "{}: only the first record links to the start of the chain",
            seed.name
        );
    }
}

#[test]
fn malformed_inputs_are_refused() {
    assert_eq!(command_verdict(&[]), CommandVerdict::Empty);
    assert_eq!(command_verdict(&[0, 0xff]), CommandVerdict::Undecodable);
    // A request without metadata is refused at the edge.
    assert_eq!(command_verdict(&[16]), CommandVerdict::Invalid);
    assert_eq!(envelope_verdict(&[]), EnvelopeVerdict::Corrupt);
    assert_eq!(envelope_verdict(&[0xff; 8]), EnvelopeVerdict::Corrupt);
}
