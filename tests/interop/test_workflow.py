"""A planning workflow over gRPC, from a client that knows the service from proto/ alone.

tests/interop/run.sh generates the stubs (alliance.v1) from proto/alliance/v1, starts allianced
on a temporary embedded log with the reference plan, and sets ALLIANCE_ADDRESS. Each test
creates the plans it edits, so the tests can run in any order and one at a time; their numbers
follow the workflow.
"""

import os
import queue
import threading
import unittest
import uuid

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from alliance.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    commands_pb2,
    commands_pb2_grpc,
    queries_pb2,
    queries_pb2_grpc,
    simulation_pb2,
    simulation_pb2_grpc,
    types_pb2,
)

# Development bearer tokens, from deploy/dev-tokens.toml.
US = "dev-us-force-planning"
ROK = "dev-rok-jcs"
APPROVERS = "dev-alliance-approvers"
AUDITORS = "dev-auditors"

# The team each token acts as.
TEAMS = {
    US: "us-force-planning",
    ROK: "rok-jcs",
    APPROVERS: "alliance-approvers",
    AUDITORS: "auditors",
}

# The reference plan allianced loads from deploy/reference-plan.json on its first start.
REFERENCE_PLAN = "019a0000-0000-7000-8000-000000000001"

# Every unary call's deadline, in seconds.
DEADLINE = 30.0


def date(year, month, day):
    return types_pb2.Date(year=year, month=month, day=day)


def auth(token):
    return (("authorization", f"Bearer {token}"),)


def meta(plan_id="", based_on=None, command_id=None):
    m = commands_pb2.CommandMeta(command_id=command_id or str(uuid.uuid4()), plan_id=plan_id)
    if based_on is not None:
        m.based_on_version = based_on
    return m


def details(error, kind):
    """The google.rpc details of `kind` that a refused call carries."""
    status = rpc_status.from_call(error)
    if status is None:
        return []
    found = []
    for any_detail in status.details:
        if any_detail.Is(kind.DESCRIPTOR):
            detail = kind()
            any_detail.Unpack(detail)
            found.append(detail)
    return found


class Client:
    """The stubs of every alliance.v1 service on one channel."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(address)
        self.commands = commands_pb2_grpc.PlanCommandsStub(self.channel)
        self.queries = queries_pb2_grpc.PostureQueriesStub(self.channel)
        self.audit = audit_pb2_grpc.AuditLogStub(self.channel)
        self.simulation = simulation_pb2_grpc.SimulationStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self):
        self.channel.close()


class WorkflowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        address = os.environ.get("ALLIANCE_ADDRESS")
        if not address:
            raise unittest.SkipTest("ALLIANCE_ADDRESS is not set: run tests/interop/run.sh")
        cls.client = Client(address)
        grpc.channel_ready_future(cls.client.channel).result(timeout=DEADLINE)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    # Calls -------------------------------------------------------------------------------

    def command(self, rpc, request, token=US):
        method = getattr(self.client.commands, rpc)
        return method(request, metadata=auth(token), timeout=DEADLINE)

    def refused(self, code, rpc, request, token=US):
        """Sends a command that must be refused with `code`; returns the error."""
        with self.assertRaises(grpc.RpcError) as refusal:
            self.command(rpc, request, token)
        self.assertEqual(refusal.exception.code(), code, refusal.exception.details())
        return refusal.exception

    def plan(self, plan_id, token=AUDITORS):
        return self.client.commands.GetPlan(
            commands_pb2.GetPlanRequest(plan_id=plan_id), metadata=auth(token), timeout=DEADLINE
        )

    def posture(self, plan_id, valid_on, min_version, record=None):
        request = queries_pb2.GetPostureRequest(
            plan_id=plan_id, valid_on=valid_on, min_version=min_version
        )
        if record is not None:
            request.record.CopyFrom(record)
        return self.client.queries.GetPosture(request, metadata=auth(AUDITORS), timeout=DEADLINE)

    def decisions(self, plan_id, status, min_version):
        return self.client.queries.ListDecisions(
            queries_pb2.ListDecisionsRequest(
                plan_id=plan_id, status=status, min_version=min_version
            ),
            metadata=auth(AUDITORS),
            timeout=DEADLINE,
        ).decisions

    def events(self, plan_id, min_version, **filters):
        request = audit_pb2.ListEventsRequest(
            plan_id=plan_id, min_version=min_version, page_size=1000, **filters
        )
        return self.client.audit.ListEvents(
            request, metadata=auth(AUDITORS), timeout=DEADLINE
        ).events

    # Building blocks of the workflow -----------------------------------------------------

    def create_plan(self, name):
        result = self.command(
            "CreatePlan",
            commands_pb2.CreatePlanRequest(
                meta=meta(),
                name=name,
                description="interop test plan",
                horizon_start=date(2025, 1, 1),
                horizon_end=date(2035, 12, 31),
            ),
            token=APPROVERS,
        )
        return result.plan_id

    def register_brigade(self, plan_id, element_id, personnel=4000):
        return self.command(
            "RegisterForceElement",
            commands_pb2.RegisterForceElementRequest(
                meta=meta(plan_id),
                element=types_pb2.ForceElement(
                    element_id=element_id,
                    name="Rotational armored brigade combat team",
                    side=types_pb2.SIDE_US,
                    component=types_pb2.COMPONENT_ARMY,
                    kind=types_pb2.ELEMENT_KIND_GROUND_COMBAT_BRIGADE,
                    personnel=personnel,
                    equipment=[types_pb2.EquipmentCount(kind="M1A2 Abrams", count=87)],
                    base="Camp Humphreys",
                ),
                present_from=date(2025, 1, 1),
            ),
        )

    def propose(self, plan_id, decision_id):
        return self.command(
            "ProposeDecision",
            commands_pb2.ProposeDecisionRequest(
                meta=meta(plan_id),
                decision_id=decision_id,
                title="Draw down the rotational brigade",
                rationale="ROK ground forces take over the brigade's sector",
                effective_date=date(2027, 6, 1),
                required_sides=[types_pb2.SIDE_US, types_pb2.SIDE_ROK],
            ),
        )

    def step(self, rpc, plan_id, decision_id, **fields):
        """Plans a step of the decision through `rpc` (its request holds `fields` besides)."""
        request = getattr(commands_pb2, rpc + "Request")
        return self.command(
            rpc, request(meta=meta(plan_id), decision_id=decision_id, **fields)
        )

    def adopted_drawdown(self, plan_id, element_id, decision_id):
        """Proposes a decision that reduces the element by 1,500 on 2027-06-01 and withdraws it
        on 2029-06-01, has both sides endorse it, and has the approvers adopt it. Returns the
        results of the ROK endorsement and of the adoption."""
        self.propose(plan_id, decision_id)
        abrams = types_pb2.EquipmentCount(kind="M1A2 Abrams", count=30)
        reduce = dict(personnel=1500, equipment=[abrams], on=date(2027, 6, 1))
        self.step("ReduceForceElement", plan_id, decision_id, element_id=element_id, **reduce)
        withdraw = dict(element_id=element_id, on=date(2029, 6, 1))
        self.step("WithdrawForceElement", plan_id, decision_id, **withdraw)
        endorse = commands_pb2.EndorseDecisionRequest(decision_id=decision_id)
        endorse.meta.CopyFrom(meta(plan_id))
        self.command("EndorseDecision", endorse, US)
        endorse.meta.CopyFrom(meta(plan_id))
        endorsed = self.command("EndorseDecision", endorse, ROK)
        adopted = self.command(
            "AdoptDecision",
            commands_pb2.AdoptDecisionRequest(meta=meta(plan_id), decision_id=decision_id),
            APPROVERS,
        )
        return endorsed, adopted

    # The workflow -------------------------------------------------------------------------

    def test_0_health(self):
        reply = self.client.health.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE
        )
        self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING)

    def test_1_create_plan_register_element_record_capabilities(self):
        command_id = str(uuid.uuid4())
        request = commands_pb2.CreatePlanRequest(
            meta=meta(command_id=command_id),
            name=f"Interop plan {command_id[:8]}",
            description="created by the Python client",
            horizon_start=date(2025, 1, 1),
            horizon_end=date(2035, 12, 31),
        )
        # Creating plans is for the approvers (their admin role); the plan then grants every team
        # its default roles, so the planners edit it.
        created = self.command("CreatePlan", request, APPROVERS)
        plan_id = created.plan_id
        self.assertEqual(str(uuid.UUID(plan_id)), plan_id, "the server mints a UUID")
        self.assertEqual((created.first_version, created.plan_version), (1, 1))
        self.assertEqual(len(created.event_ids), 1)
        self.assertFalse(created.replayed)

        # A retry with the same command id names the same plan and appends nothing.
        retried = self.command("CreatePlan", request, APPROVERS)
        self.assertTrue(retried.replayed)
        self.assertEqual(retried.plan_id, plan_id)
        self.assertEqual(
            (retried.first_version, retried.plan_version, list(retried.event_ids)),
            (1, 1, list(created.event_ids)),
        )
        plans = self.client.commands.ListPlans(
            commands_pb2.ListPlansRequest(), metadata=auth(AUDITORS), timeout=DEADLINE
        ).plans
        same_name = [p for p in plans if p.name == request.name]
        self.assertEqual([(p.plan_id, p.version) for p in same_name], [(plan_id, 1)])

        registered = self.register_brigade(plan_id, "2id-abct")
        self.assertEqual((registered.first_version, registered.plan_version), (2, 2))
        levels = []
        for side, level in ((types_pb2.SIDE_US, 60), (types_pb2.SIDE_ROK, 45)):
            levels.append(
                self.command(
                    "RecordCapabilityLevel",
                    commands_pb2.RecordCapabilityLevelRequest(
                        meta=meta(plan_id),
                        side=side,
                        area=types_pb2.CAPABILITY_AREA_GROUND_COMBAT,
                        level=level,
                        as_of=date(2025, 1, 1),
                    ),
                    ROK if side == types_pb2.SIDE_ROK else US,
                )
            )
        self.assertEqual([r.plan_version for r in levels], [3, 4])

        summary = self.plan(plan_id)
        self.assertEqual(summary.head.version, 4)
        self.assertEqual(
            [(e.element.element_id, e.element.personnel) for e in summary.elements],
            [("2id-abct", 4000)],
        )

        posture = self.posture(plan_id, date(2026, 1, 1), min_version=4)
        self.assertEqual(posture.version, 4)
        self.assertEqual(posture.us_personnel, 4000)
        self.assertEqual([e.element_id for e in posture.elements], ["2id-abct"])
        ground = {
            c.side: c.level
            for c in posture.capability
            if c.area == types_pb2.CAPABILITY_AREA_GROUND_COMBAT
        }
        self.assertEqual(ground, {types_pb2.SIDE_US: 60, types_pb2.SIDE_ROK: 45})

    def test_2_decision_endorsed_by_both_sides_and_adopted(self):
        plan_id = self.create_plan("Interop decision")
        self.register_brigade(plan_id, "2id-abct")
        proposed = self.propose(plan_id, "drawdown-2027")
        reduced = self.command(
            "ReduceForceElement",
            commands_pb2.ReduceForceElementRequest(
                meta=meta(plan_id, based_on=proposed.plan_version),
                decision_id="drawdown-2027",
                element_id="2id-abct",
                personnel=1500,
                on=date(2027, 6, 1),
            ),
        )
        self.assertEqual(reduced.plan_version, proposed.plan_version + 1)

        # Adoption needs both sides' endorsement: FAILED_PRECONDITION names the rule.
        adopt = commands_pb2.AdoptDecisionRequest(meta=meta(plan_id), decision_id="drawdown-2027")
        error = self.refused(grpc.StatusCode.FAILED_PRECONDITION, "AdoptDecision", adopt, APPROVERS)
        [info] = details(error, error_details_pb2.ErrorInfo)
        self.assertEqual((info.reason, info.domain), ("ENDORSEMENT_MISSING", "alliance.v1"))
        [failure] = details(error, error_details_pb2.PreconditionFailure)
        self.assertEqual([v.type for v in failure.violations], ["endorsement_missing"])
        self.assertEqual(self.plan(plan_id).head.version, reduced.plan_version)

        versions = []
        for token in (US, ROK):
            endorsed = self.command(
                "EndorseDecision",
                commands_pb2.EndorseDecisionRequest(
                    meta=meta(plan_id), decision_id="drawdown-2027"
                ),
                token,
            )
            versions.append(endorsed.plan_version)
        adopt.meta.command_id = str(uuid.uuid4())
        adopted = self.command("AdoptDecision", adopt, APPROVERS)
        versions.append(adopted.plan_version)
        first = reduced.plan_version + 1
        self.assertEqual(versions, [first, first + 1, first + 2])

        summary = self.plan(plan_id)
        self.assertEqual(summary.head.version, adopted.plan_version)
        [decision] = summary.decisions
        self.assertEqual(decision.decision_id, "drawdown-2027")
        self.assertEqual(decision.status, types_pb2.DECISION_STATUS_ADOPTED)
        self.assertEqual(decision.owner_team, "us-force-planning")
        self.assertEqual(decision.step_count, 1)
        self.assertEqual(
            sorted(decision.endorsements), [types_pb2.SIDE_US, types_pb2.SIDE_ROK]
        )

        listed = self.decisions(
            plan_id, types_pb2.DECISION_STATUS_ADOPTED, adopted.plan_version
        )
        self.assertEqual([d.decision_id for d in listed], ["drawdown-2027"])
        history = [(h.version, h.event_type, h.actor) for h in listed[0].history]
        self.assertEqual(
            history,
            [
                (proposed.plan_version, "DecisionProposed", "us-force-planning/us.planner"),
                (
                    reduced.plan_version,
                    "ForceElementReductionPlanned",
                    "us-force-planning/us.planner",
                ),
                (versions[0], "DecisionEndorsed", "us-force-planning/us.planner"),
                (versions[1], "DecisionEndorsed", "rok-jcs/rok.planner"),
                (versions[2], "DecisionAdopted", "alliance-approvers/alliance.approver"),
            ],
        )
        proposed_now = self.decisions(
            plan_id, types_pb2.DECISION_STATUS_PROPOSED, adopted.plan_version
        )
        self.assertEqual(list(proposed_now), [])

    def test_3a_conflicting_edit_is_aborted_naming_the_event_that_won(self):
        plan_id = self.create_plan("Interop conflict")
        self.register_brigade(plan_id, "2id-abct")
        base = self.propose(plan_id, "relocate-2028").plan_version

        # Two planners edit the same element, both based on version `base`.
        won = self.command(
            "ReduceForceElement",
            commands_pb2.ReduceForceElementRequest(
                meta=meta(plan_id, based_on=base),
                decision_id="relocate-2028",
                element_id="2id-abct",
                personnel=500,
                on=date(2028, 1, 1),
            ),
        )
        self.assertEqual(won.plan_version, base + 1)
        error = self.refused(
            grpc.StatusCode.ABORTED,
            "RelocateForceElement",
            commands_pb2.RelocateForceElementRequest(
                meta=meta(plan_id, based_on=base),
                decision_id="relocate-2028",
                element_id="2id-abct",
                to_base="Camp Casey",
                on=date(2028, 1, 1),
            ),
        )
        [info] = details(error, error_details_pb2.ErrorInfo)
        self.assertEqual((info.reason, info.domain), ("PLAN_VERSION_CONFLICT", "alliance.v1"))
        self.assertEqual(info.metadata["plan_id"], plan_id)
        self.assertEqual(info.metadata["based_on_version"], str(base))
        self.assertEqual(info.metadata["current_version"], str(won.plan_version))
        self.assertEqual(info.metadata["conflicting_versions"], str(won.plan_version))
        [failure] = details(error, error_details_pb2.PreconditionFailure)
        [violation] = failure.violations
        self.assertEqual(violation.type, "CONFLICTING_EVENT")
        self.assertIn(won.event_ids[0], violation.subject)
        self.assertIn("ForceElementReductionPlanned", violation.subject)
        self.assertIn(f"v{won.plan_version}", violation.subject)
        self.assertIn("2id-abct", violation.description)
        self.assertIn("us-force-planning", violation.description)
        # Nothing was appended.
        self.assertEqual(self.plan(plan_id).head.version, won.plan_version)

        # Conflicts are per element, not per plan: an edit of something else based on the same
        # stale version goes through.
        other = self.command(
            "RecordCapabilityLevel",
            commands_pb2.RecordCapabilityLevelRequest(
                meta=meta(plan_id, based_on=base),
                side=types_pb2.SIDE_ROK,
                area=types_pb2.CAPABILITY_AREA_ISR,
                level=40,
                as_of=date(2025, 1, 1),
            ),
            ROK,
        )
        self.assertEqual(other.plan_version, won.plan_version + 1)

    def test_3b_invalid_request_names_the_fields(self):
        plan_id = self.create_plan("Interop invalid")
        error = self.refused(
            grpc.StatusCode.INVALID_ARGUMENT,
            "RecordCapabilityLevel",
            commands_pb2.RecordCapabilityLevelRequest(
                meta=meta(plan_id),
                side=types_pb2.SIDE_ROK,
                area=types_pb2.CAPABILITY_AREA_ISR,
                level=150,
                as_of=date(2040, 1, 1),
            ),
            ROK,
        )
        [bad] = details(error, error_details_pb2.BadRequest)
        fields = {v.field: v.description for v in bad.field_violations}
        self.assertEqual(sorted(fields), ["as_of", "level"], fields)
        self.assertTrue(all(fields.values()), "each violation says what is wrong")
        self.assertEqual(self.plan(plan_id).head.version, 1)

    def test_4_posture_before_and_after_adoption_at_two_record_times(self):
        plan_id = self.create_plan("Interop record time")
        self.register_brigade(plan_id, "2id-abct")
        endorsed, adopted = self.adopted_drawdown(plan_id, "2id-abct", "drawdown-2027")
        self.assertEqual(adopted.plan_version, endorsed.plan_version + 1)
        after_reduction = date(2027, 7, 1)
        after_withdrawal = date(2029, 7, 1)

        # Record points by version.
        before = self.posture(
            plan_id,
            after_reduction,
            adopted.plan_version,
            queries_pb2.RecordPoint(version=endorsed.plan_version),
        )
        after = self.posture(
            plan_id,
            after_reduction,
            adopted.plan_version,
            queries_pb2.RecordPoint(version=adopted.plan_version),
        )
        self.assertEqual((before.version, before.us_personnel), (endorsed.plan_version, 4000))
        self.assertEqual((after.version, after.us_personnel), (adopted.plan_version, 2500))
        self.assertEqual(list(before.decision_ids), [])
        self.assertEqual(list(after.decision_ids), ["drawdown-2027"])
        [element] = after.elements
        self.assertEqual(
            [(e.kind, e.count) for e in element.equipment], [("M1A2 Abrams", 57)]
        )

        # Record points by instant: the record times of the ROK endorsement and the adoption.
        events = self.events(
            plan_id,
            adopted.plan_version,
            event_types=["DecisionEndorsed", "DecisionAdopted"],
        )
        recorded = {e.plan_version: e.record_time for e in events}
        self.assertIn(endorsed.plan_version, recorded)
        self.assertIn(adopted.plan_version, recorded)
        self.assertLess(
            recorded[endorsed.plan_version].ToNanoseconds(),
            recorded[adopted.plan_version].ToNanoseconds(),
        )
        for version, personnel in (
            (endorsed.plan_version, 4000),
            (adopted.plan_version, 2500),
        ):
            at = queries_pb2.RecordPoint(time=recorded[version])
            posture = self.posture(plan_id, after_reduction, adopted.plan_version, at)
            self.assertEqual((posture.version, posture.us_personnel), (version, personnel))

        # As the plan stands now, the brigade is gone after its withdrawal date.
        gone = self.posture(plan_id, after_withdrawal, adopted.plan_version)
        self.assertEqual((gone.us_personnel, list(gone.elements)), (0, []))
        still_there = self.posture(
            plan_id,
            after_withdrawal,
            adopted.plan_version,
            queries_pb2.RecordPoint(version=endorsed.plan_version),
        )
        self.assertEqual(still_there.us_personnel, 4000)

    def test_5_watch_plan_delivers_each_new_event(self):
        plan_id = self.create_plan("Interop watch")
        self.register_brigade(plan_id, "2id-abct")
        current = self.plan(plan_id).head.version

        call = self.client.queries.WatchPlan(
            queries_pb2.WatchPlanRequest(plan_id=plan_id, from_version=current + 1),
            metadata=auth(AUDITORS),
            timeout=120,
        )
        received = queue.Queue()

        def follow():
            try:
                for envelope in call:
                    received.put(envelope)
            except grpc.RpcError as error:
                received.put(error)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        try:
            edits = []
            for side, token, level in ((types_pb2.SIDE_ROK, ROK, 52), (types_pb2.SIDE_US, US, 58)):
                command_id = str(uuid.uuid4())
                result = self.command(
                    "RecordCapabilityLevel",
                    commands_pb2.RecordCapabilityLevelRequest(
                        meta=meta(plan_id, command_id=command_id),
                        side=side,
                        area=types_pb2.CAPABILITY_AREA_MISSILE_DEFENSE,
                        level=level,
                        as_of=date(2026, 1, 1),
                    ),
                    token,
                )
                edits.append((command_id, result, side, level, token))

            # The stream sends exactly these events, in order, and nothing between them.
            for command_id, result, side, level, token in edits:
                envelope = received.get(timeout=DEADLINE)
                self.assertNotIsInstance(envelope, grpc.RpcError, envelope)
                self.assertEqual(envelope.plan_id, plan_id)
                self.assertEqual(envelope.plan_version, result.plan_version)
                self.assertEqual([envelope.event_id], list(result.event_ids))
                self.assertEqual(envelope.command_id, command_id)
                self.assertEqual(envelope.event_type, "CapabilityLevelRecorded")
                self.assertEqual(envelope.WhichOneof("payload"), "capability_level_recorded")
                payload = envelope.capability_level_recorded
                self.assertEqual((payload.side, payload.level), (side, level))
                self.assertEqual(envelope.actor.team, TEAMS[token])
            self.assertEqual(edits[0][1].plan_version, current + 1)
            self.assertEqual(edits[1][1].plan_version, current + 2)
        finally:
            call.cancel()
            follower.join(timeout=DEADLINE)
        self.assertFalse(follower.is_alive())

    def test_6_simulation_of_the_reference_plan_is_recorded(self):
        updates = list(
            self.client.simulation.Run(
                simulation_pb2.RunSimulationRequest(
                    spec=simulation_pb2.SimulationSpec(
                        plan_id=REFERENCE_PLAN, include_proposed=True, trials=300, seed=20240601
                    )
                ),
                metadata=auth(US),
                timeout=300,
            )
        )
        kinds = [u.WhichOneof("update") for u in updates]
        self.assertGreaterEqual(len(kinds), 2, kinds)
        self.assertEqual(kinds[-1], "result", kinds)
        self.assertEqual(set(kinds[:-1]), {"progress"}, kinds)
        done = [u.progress.trials_done for u in updates[:-1]]
        self.assertEqual(done, sorted(done))
        self.assertTrue(all(u.progress.trials == 300 for u in updates[:-1]))
        self.assertLessEqual(done[-1], 300)

        result = updates[-1].result
        self.assertEqual(result.plan_id, REFERENCE_PLAN)
        self.assertTrue(result.what_if)
        self.assertEqual((result.trials, result.seed), (300, 20240601))
        self.assertEqual(result.months, 96)
        self.assertEqual(len(result.monthly), 96)
        self.assertGreater(result.plan_version, 0)
        self.assertGreater(result.recorded_version, result.plan_version)
        self.assertEqual(result.actor.team, "us-force-planning")
        self.assertTrue(result.headline)

        kept = self.client.simulation.GetRun(
            simulation_pb2.GetRunRequest(run_id=result.run_id),
            metadata=auth(AUDITORS),
            timeout=DEADLINE,
        )
        self.assertEqual(kept.results_digest, result.results_digest)

        # The run is in the plan's history, as the caller.
        recorded = self.events(
            REFERENCE_PLAN, result.recorded_version, event_types=["SimulationRunRecorded"]
        )
        [event] = [e for e in recorded if e.simulation_run_recorded.run.run_id == result.run_id]
        self.assertEqual(event.plan_version, result.recorded_version)
        self.assertEqual(event.event_type, "SimulationRunRecorded")
        self.assertEqual(event.actor.team, "us-force-planning")
        run = event.simulation_run_recorded.run
        self.assertEqual(run.plan_version, result.plan_version)
        self.assertEqual((run.trials, run.seed, run.months), (300, 20240601, 96))
        self.assertTrue(run.what_if)
        self.assertEqual(run.inputs_digest, result.inputs_digest)
        self.assertEqual(run.results_digest, result.results_digest)
        head = self.plan(REFERENCE_PLAN).head
        self.assertGreaterEqual(head.version, result.recorded_version)


if __name__ == "__main__":
    unittest.main()
