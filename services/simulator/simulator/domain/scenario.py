"""A scenario: seed, duration, rate shape, weighted action mix with think times, faults, workers and audit.

Scenarios are YAML files; these models are their schema. Every model forbids unknown keys, so a typo is an
error naming the key and its line (see `simulator.scenario_io`), never a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from quartet_contracts.schemas.planning import PlanRequested
from quartet_contracts.schemas.training import TrainingRequested

JobKindName = Literal["training", "planning"]
Target = Literal["training", "planning", "any"]
GarbageTarget = Literal["training", "planning", "rental", "any"]
GarbageFlavour = Literal["bytes", "not_json", "schema"]


class Model(BaseModel):
    """Base of every scenario part: unknown keys are errors, values are immutable once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---- rate shapes -------------------------------------------------------------------------------------


class ConstantRate(Model):
    """The same number of actions every second."""

    shape: Literal["constant"] = "constant"
    per_second: float = Field(gt=0, le=100_000)


class RampRate(Model):
    """From `from` to `to` actions per second, linearly over `over_s` (default: the whole run), then level."""

    shape: Literal["ramp"]
    start: float = Field(alias="from", ge=0, le=100_000)
    end: float = Field(alias="to", ge=0, le=100_000)
    over_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _moves(self) -> RampRate:
        if self.start == 0 and self.end == 0:
            raise ValueError("a ramp from 0 to 0 sends nothing")
        return self


class BurstRate(Model):
    """`base` actions per second, with bursts of `burst` per second lasting `length_s` every `every_s`."""

    shape: Literal["bursts"]
    base: float = Field(ge=0, le=100_000)
    burst: float = Field(gt=0, le=100_000)
    every_s: float = Field(gt=0)
    length_s: float = Field(gt=0)
    first_at_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> BurstRate:
        if self.length_s > self.every_s:
            raise ValueError(f"length_s ({self.length_s:g}) must not exceed every_s ({self.every_s:g})")
        return self


Rate = Annotated[ConstantRate | RampRate | BurstRate, Field(discriminator="shape")]


# ---- actions -----------------------------------------------------------------------------------------


class ThinkTime(Model):
    """A user's pause before each step: uniform on [min_s, max_s], or exponential with mean `mean_s`."""

    distribution: Literal["uniform", "exponential"] = "uniform"
    min_s: float = Field(default=0.0, ge=0, le=3600)
    max_s: float = Field(default=0.0, ge=0, le=3600)
    mean_s: float = Field(default=1.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _ordered(self) -> ThinkTime:
        if self.max_s < self.min_s:
            raise ValueError(f"max_s ({self.max_s:g}) is below min_s ({self.min_s:g})")
        return self


class PoolEntry(Model):
    """What every pool entry has: its weight, and whether its result is a large one the audit counts apart."""

    weight: float = Field(default=1.0, gt=0)
    large: bool = Field(
        default=False,
        description="The spec's result is larger than the broker's message limit (it travels by claim-check); "
        "the audit reports these jobs on their own.",
    )


class TrainingPoolEntry(PoolEntry):
    """One training job spec of the pool, picked with probability proportional to `weight`."""

    spec: TrainingRequested


class PlanningPoolEntry(PoolEntry):
    """One planning job spec of the pool, picked with probability proportional to `weight`."""

    spec: PlanRequested


class JobAction(Model):
    """Submit a job drawn from the pool; with `vary_seed` each job gets its own seed (fresh work, no cache hit)."""

    weight: float = Field(gt=0)
    think_time: ThinkTime = ThinkTime()
    vary_seed: bool = True


class TrainingAction(JobAction):
    """Submit a training job."""

    action: Literal["training"]
    pool: list[TrainingPoolEntry] = Field(min_length=1, max_length=1000)


class PlanningAction(JobAction):
    """Submit a path-planning job."""

    action: Literal["planning"]
    pool: list[PlanningPoolEntry] = Field(min_length=1, max_length=1000)


class RentalAction(Model):
    """A tenant's journey over the rental manager's HTTP API (search, viewing, application, lease, bills, repair).

    A share of the viewings is booked with a RequestViewing command on `rental.commands` instead, some of those
    published twice: the rental manager's inbox must apply each command exactly once.
    """

    action: Literal["rental"]
    weight: float = Field(gt=0)
    think_time: ThinkTime = ThinkTime()
    pay_bills: bool = True
    request_repair: float = Field(default=0.5, ge=0, le=1, description="Chance the tenant asks for a repair.")
    viewings_via_commands: float = Field(default=0.5, ge=0, le=1, description="Share of viewings booked by command.")
    duplicate_commands: float = Field(default=0.2, ge=0, le=1, description="Share of commands published twice.")


Action = Annotated[TrainingAction | PlanningAction | RentalAction, Field(discriminator="action")]


# ---- faults ------------------------------------------------------------------------------------------


class DuplicateFault(Model):
    """Publish `fraction` of the jobs a second time with the same job id (the same CloudEvent, byte for byte)."""

    kind: Literal["duplicate"]
    fraction: float = Field(gt=0, le=1)
    target: Target = "any"
    delay: ThinkTime = ThinkTime(min_s=0.0, max_s=5.0)


def _all_flavours() -> list[GarbageFlavour]:
    return ["bytes", "not_json", "schema"]


class GarbageFault(Model):
    """Publish garbage onto the jobs topics (and rental.commands): `fraction` of the actions, or `count` messages."""

    kind: Literal["garbage"]
    fraction: float | None = Field(default=None, gt=0, le=1)
    count: int | None = Field(default=None, ge=1, le=1_000_000)
    target: GarbageTarget = "any"
    flavours: list[GarbageFlavour] = Field(default_factory=_all_flavours, min_length=1)

    @model_validator(mode="after")
    def _amount(self) -> GarbageFault:
        if (self.fraction is None) == (self.count is None):
            raise ValueError("give exactly one of fraction or count")
        return self


class KillWorkerFault(Model):
    """SIGKILL one live worker process of `target` at `at_s` (the supervisor restarts it)."""

    kind: Literal["kill_worker"]
    at_s: float = Field(ge=0)
    target: Target = "any"


class BrokerRestartFault(Model):
    """Stop the Kafka broker at `at_s`, keep it down for `down_s`, start it again."""

    kind: Literal["broker_restart"]
    at_s: float = Field(ge=0)
    down_s: float = Field(default=5.0, ge=0, le=600)


class RedisOutageFault(Model):
    """Stop Redis at `at_s`, keep it down for `down_s`, start it again (its contents are lost)."""

    kind: Literal["redis_outage"]
    at_s: float = Field(ge=0)
    down_s: float = Field(default=10.0, ge=0, le=3600)


class SlowConsumerFault(Model):
    """Make `target`'s workers slow for `duration_s`: frozen (SIGSTOP) `duty` of every `period_s`, then resumed."""

    kind: Literal["slow_consumer"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=3600)
    target: Target = "any"
    duty: float = Field(default=0.7, gt=0, lt=1)
    period_s: float = Field(default=1.0, gt=0, le=60)


class PauseWorkerFault(Model):
    """Freeze one worker of `target` (SIGSTOP, or a Docker pause) for `duration_s`, then let it run on.

    Longer than the consumer's session timeout, this is the classic zombie: a stalled process (a long GC or VM
    pause) whose partitions went to another worker while it slept, and which wakes up mid-transaction.
    """

    kind: Literal["pause_worker"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=3600)
    target: Target = "any"


# ---- cluster faults (a multi-node Kafka cluster with a fault proxy in front of each node) ----------------

TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")]
NodeChoice = int | Literal["any"]


class BrokerChoice(Model):
    """Which broker a fault strikes: a node id, `any` (drawn from the seed), or the leader of `topic`'s partitions."""

    node: NodeChoice = Field(default="any", description="A node id (1-based), or any.")
    topic: TopicName | None = Field(
        default=None,
        description="Strike the node leading the most of this topic's partitions when the fault fires (the name "
        "without SIMULATOR_TOPIC_PREFIX or SIMULATOR_RENTAL_TOPIC_PREFIX, e.g. training.results).",
    )

    @model_validator(mode="after")
    def _one_way(self) -> BrokerChoice:
        if isinstance(self.node, int) and self.node < 1:
            raise ValueError(f"node {self.node} is not a node id (they start at 1)")
        if self.node != "any" and self.topic is not None:
            raise ValueError("give a node or a topic, not both")
        return self


class KillBrokerFault(BrokerChoice):
    """SIGKILL one Kafka node at `at_s` (no controlled shutdown), start it again `down_s` later."""

    kind: Literal["kill_broker"]
    at_s: float = Field(ge=0)
    down_s: float = Field(default=10.0, ge=0, le=600)


class KillLeaderFault(Model):
    """SIGKILL the node leading the most of `topic`'s partitions (found in the metadata when it fires), start it
    again `down_s` later."""

    kind: Literal["kill_leader"]
    at_s: float = Field(ge=0)
    topic: TopicName
    down_s: float = Field(default=10.0, ge=0, le=600)


class RestartClusterFault(Model):
    """A clean rolling restart: each node in turn stopped and started again, the next only once no partition is
    under-replicated (or `sync_timeout_s` passed, which fails the fault)."""

    kind: Literal["restart_cluster"]
    at_s: float = Field(ge=0)
    sync_timeout_s: float = Field(default=120.0, gt=0, le=600)


class PartitionFault(BrokerChoice):
    """Cut a network partition for `duration_s` through the fault proxies, then heal it.

    `isolate: broker` black-holes one node's proxy both ways: the clients and the other nodes' replica fetches
    cannot reach it (the controllers' own connections do not cross the proxies). `isolate: worker` cuts one managed
    worker of `target` (its first slot, which then bootstraps on the nodes' side listeners) off from every node.
    """

    kind: Literal["partition"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=3600)
    isolate: Literal["broker", "worker"] = "broker"
    target: Target = "any"

    @model_validator(mode="after")
    def _fits(self) -> PartitionFault:
        if self.isolate == "worker" and (self.node != "any" or self.topic is not None):
            raise ValueError("a worker partition takes a target (the worker kind), not a node or topic")
        if self.isolate == "broker" and self.target != "any":
            raise ValueError("a broker partition takes a node or topic, not a target")
        return self


class LatencyFault(BrokerChoice):
    """Add `ms` of latency (± `jitter_ms`) to everything one node sends through its proxy, for `duration_s`."""

    kind: Literal["latency"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=3600)
    ms: int = Field(ge=1, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)


class BandwidthFault(BrokerChoice):
    """Limit what one node sends through its proxy to `kib_per_s` KiB/s, for `duration_s`."""

    kind: Literal["bandwidth"]
    at_s: float = Field(ge=0)
    duration_s: float = Field(gt=0, le=3600)
    kib_per_s: int = Field(ge=1, le=10_000_000)


CLUSTER_FAULTS = (KillBrokerFault, KillLeaderFault, RestartClusterFault, PartitionFault, LatencyFault, BandwidthFault)
ClusterFault = KillBrokerFault | KillLeaderFault | RestartClusterFault | PartitionFault | LatencyFault | BandwidthFault


Fault = Annotated[
    DuplicateFault
    | GarbageFault
    | KillWorkerFault
    | BrokerRestartFault
    | RedisOutageFault
    | SlowConsumerFault
    | PauseWorkerFault
    | ClusterFault,
    Field(discriminator="kind"),
]
WORKER_FAULTS = (KillWorkerFault, SlowConsumerFault, PauseWorkerFault)
TIMED_FAULTS = (BrokerRestartFault, RedisOutageFault, *WORKER_FAULTS, *CLUSTER_FAULTS)
TimedFault = (
    KillWorkerFault | BrokerRestartFault | RedisOutageFault | SlowConsumerFault | PauseWorkerFault | ClusterFault
)


# ---- workers, rental and audit ------------------------------------------------------------------------


class WorkerPool(Model):
    """Worker processes of one kind the simulator starts, supervises and restarts itself."""

    count: int = Field(default=1, ge=0, le=32)
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for these workers.")
    render_plots: bool = Field(default=False, description="Plots cost time the audit does not need.")


class Workers(Model):
    """Managed workers per kind; none (the default) means the running system's workers do the work."""

    training: WorkerPool | None = None
    planning: WorkerPool | None = None
    restart_delay_s: float = Field(default=1.0, ge=0, le=60)
    ready_timeout_s: float = Field(default=90.0, gt=0, le=600)


class RentalSetup(Model):
    """The landlords and houses the rental journeys play on, created at the start of the run."""

    landlords: int = Field(default=2, ge=1, le=100)
    houses_per_landlord: int = Field(default=3, ge=1, le=100)
    lease_months: tuple[int, int] = (6, 12)
    start_within_days: int = Field(
        default=1460,
        ge=1,
        le=3650,
        description="Leases that need no repair start within this many days; the fewer, the more overlap.",
    )


class AuditOptions(Model):
    """How the audit waits for the system to settle and what it holds the run to."""

    settle_timeout_s: float = Field(default=180.0, gt=0, le=7200)
    lag_interval_s: float = Field(default=1.0, gt=0, le=60)
    aborted_probe_interval_s: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="How often a probe is written onto each results topic in a transaction that is then aborted "
        "(its reading would be an aborted read); 0: never.",
    )
    expect_success: bool = Field(default=True, description="A failed outcome for a pool job fails the audit.")
    foreign_results: Literal["fail", "ignore"] = Field(
        default="fail", description="Results for job ids this run never sent: fail the audit, or only count them."
    )


class Scenario(Model):
    """A reproducible workload: the same seed always yields the same plan."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(ge=0, le=2**63 - 1)
    duration_s: float = Field(gt=0, le=24 * 3600)
    rate: Rate
    arrivals: Literal["poisson", "uniform"] = "poisson"
    max_actions: int | None = Field(default=None, ge=1, le=10_000_000)
    mix: list[Action] = Field(min_length=1, max_length=50)
    faults: list[Fault] = Field(default_factory=list, max_length=10_000)
    workers: Workers = Workers()
    rental: RentalSetup = RentalSetup()
    audit: AuditOptions = AuditOptions()

    def kinds(self) -> list[JobKindName]:
        """The job kinds the mix submits, in a fixed order."""
        present = {a.action for a in self.mix}
        order: tuple[JobKindName, ...] = ("training", "planning")
        return [k for k in order if k in present]

    def has_rental(self) -> bool:
        """True when the mix includes rental journeys."""
        return any(isinstance(a, RentalAction) for a in self.mix)

    def timed_faults(self) -> list[tuple[int, TimedFault]]:
        """The faults that happen at a moment, with their index in `faults`."""
        return [(i, f) for i, f in enumerate(self.faults) if isinstance(f, TIMED_FAULTS)]

    def cluster_faults(self) -> list[tuple[int, ClusterFault]]:
        """The faults that need a Kafka cluster behind fault proxies, with their index in `faults`."""
        return [(i, f) for i, f in enumerate(self.faults) if isinstance(f, CLUSTER_FAULTS)]

    def partitioned_workers(self) -> set[JobKindName]:
        """The worker kinds a worker partition may cut off (both with `any`)."""
        kinds = set(self.kinds())
        wanted: set[JobKindName] = set()
        for _, fault in self.cluster_faults():
            if isinstance(fault, PartitionFault) and fault.isolate == "worker":
                wanted |= kinds if fault.target == "any" else kinds & {fault.target}
        return wanted

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Cross-field mistakes pydantic cannot see field by field, each with the location it concerns."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        kinds = set(self.kinds())
        for i, fault in enumerate(self.faults):
            at = getattr(fault, "at_s", None)
            if at is not None and at >= self.duration_s:
                out.append(
                    (("faults", i, "at_s"), f"{at:g} s is not inside the run (duration_s is {self.duration_s:g})")
                )
            target = getattr(fault, "target", "any")
            if target == "rental" and not self.has_rental():
                out.append((("faults", i, "target"), "the mix has no rental journeys"))
            elif target not in ("any", "rental") and target not in kinds:
                out.append((("faults", i, "target"), f"the mix submits no {target} jobs"))
            if isinstance(fault, DuplicateFault) and not kinds:
                out.append((("faults", i, "kind"), "duplicate needs training or planning jobs in the mix"))
            if isinstance(fault, GarbageFault) and not kinds and not self.has_rental():
                out.append((("faults", i, "kind"), "garbage needs jobs or rental journeys in the mix"))
        return out
