"""The production endpoint locally: SageMaker's endpoint lifecycle (moto changes endpoints at once), the champion's
endpoint seed, and a traffic simulator that writes per-variant CloudWatch metrics while the state machine waits.

Bridges (each active only while a local runtime runs):
* Endpoint lifecycle (`EndpointLifecycle`), as SageMaker documents it: CreateEndpoint leaves the endpoint
  `Creating`, UpdateEndpoint and UpdateEndpointWeightsAndCapacities leave it `Updating` for a simulated duration
  (simulated time passes only in the state machine's Wait states and retry intervals, as `promotion.core.clock`); the
  new config, or the new `CurrentWeight`s, show only once it is `InService` again (`DesiredWeight` shows the
  request meanwhile). An update, a weight change or a delete sent while the endpoint is not `InService` is refused
  with SageMaker's ValidationException 'Cannot update in-progress endpoint "<arn>".' (the text AWS's own Kubernetes
  operator matches); weights for a variant the endpoint does not have are refused (moto's check, kept).
  `fail_next_update` makes a change fail: the endpoint goes back to `InService` on its previous config and
  weights, with a FailureReason, as SageMaker does when an update fails. `interfere` starts someone else's change
  just before the product's next call (the race between a DescribeEndpoint and an update). moto 5.2.5 implements
  no UpdateEndpoint at all; this is it. When an update completes, every variant of the new config must have model
  data SageMaker can download with the model's role (the object exists, the role may s3:GetObject it, checked by
  the runtime's `model_data_check`), or the update fails with SageMaker's 'Failed to download model data for
  container ...' FailureReason.
* Names: CreateModel and CreateEndpointConfig refuse a name already taken, with SageMaker's ValidationException
  'Cannot create already existing model "<arn>".' / '... endpoint configuration "<arn>".' (moto 5.2.5 replaces
  the first silently, which hid whether a retried step adopts only its own).
* Shadow variants: moto 5.2.5 drops CreateEndpointConfig's `ShadowProductionVariants`. Here the config keeps them
  (refused, as SageMaker does, beside more than one production variant or as more than one shadow), an update
  provisions them with the production variant (their model data checked alike), and DescribeEndpointConfig and
  DescribeEndpoint answer them. The simulator sends a shadow variant a copy of its weight's share of the production
  variant's requests: it answers nobody, and has its own per-variant metrics.
* CloudWatch percentiles (`p50`, `p99`) are not computed by moto's GetMetricData: they are, from the raw values
  put with PutMetricData.

The simulator plays the endpoint's callers: during every Wait of the execution (compressed locally, so it also
says how much simulated time passed) it splits requests between the variants by their current weights and
writes Invocations, Invocation5XXErrors, Invocation4XXErrors and ModelLatency for each, with the rates of the chosen
scenario (good, worse-errors, worse-latency, no-traffic, skewed-split).
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from local.hooks import Hooks

Scenario = Literal["good", "worse-errors", "worse-latency", "no-traffic", "skewed-split"]
SCENARIOS: tuple[str, ...] = ("good", "worse-errors", "worse-latency", "no-traffic", "skewed-split")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
REQUESTS_PER_SECOND = 100.0
# ModelLatency samples per variant and simulated minute (a PutMetricData datum holds at most 150 values): a look at
# a 15-minute bake reads 900 per variant, so the p99 ratio of two equal variants has a log-SD of about 0.06, over six
# of them from the 1.5x limit (120 per look, as before, left the noise alone failing a good challenger now and then),
# without storing every request in moto.
LATENCY_SAMPLES_PER_MINUTE = 60
MAX_VALUES_PER_DATUM = 150
# Simulated seconds an endpoint change takes. SageMaker takes minutes to create or update an endpoint (new
# instances) and seconds to a minute to apply new weights (a waiting step lets simulated time pass to the end).
CHANGE_SECONDS = {"create": 360.0, "update": 300.0, "weights": 30.0}
IN_PROGRESS_MESSAGE = 'Cannot update in-progress endpoint "{arn}".'
# DeleteEndpoint answers with the same text (aws/amazon-sagemaker-operator-for-k8s matches it for deletes).
DELETE_IN_PROGRESS_MESSAGE = IN_PROGRESS_MESSAGE


@dataclass
class PendingChange:
    """An endpoint change SageMaker is still applying: what the endpoint becomes at `ready_at` (or, with `failure`,
    what it stays on)."""

    kind: Literal["create", "update", "weights", "other"]  # other: someone else's change, nothing of ours
    ready_at: datetime
    config_name: str | None = None
    variants: list[dict[str, Any]] = field(default_factory=list)
    shadow_variants: list[dict[str, Any]] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    # Checked when the change completes (SageMaker downloads the models while it provisions the new config): why it
    # fails then, or None.
    verify: Callable[[], str | None] | None = None


# The endpoint's FailureReason when SageMaker cannot download a variant's model data (as CloudFormation and
# DescribeEndpoint report it); the container index is the variant's position in the config here.
MODEL_DATA_FAILURE = (
    'Failed to download model data for container "{container}" from URL: "{url}". Please ensure that there is an '
    "object located at the URL and that the role passed to CreateModel has permissions to download the object."
)


class EndpointLifecycle:
    """Creating/Updating/InService/Failed over simulated time, per endpoint; refusals are kept for tests."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds = {**CHANGE_SECONDS, **(seconds or {})}
        # (model's execution role ARN, ModelDataUrl) -> why SageMaker could not download it, or None: set by the
        # runtime (the object must exist and the role must be allowed s3:GetObject on it).
        self.model_data_check: Callable[[str, str], str | None] | None = None
        self.pending: dict[str, PendingChange] = {}
        self.failures: dict[str, list[str]] = {}
        self.refused: list[str] = []
        self.interference: dict[str, float] = {}
        # Called with the endpoint after each status change (local.sagemaker_events puts SageMaker's event).
        self.on_change: Callable[[Any], None] | None = None
        self._lock = threading.Lock()

    def interfere(self, endpoint: str, seconds: float = 240.0) -> None:
        """Just before the next change the product sends to `endpoint`, someone else's update starts and takes
        `seconds`: the product's call is refused as in-progress, as on AWS when a change races a DescribeEndpoint."""
        with self._lock:
            self.interference[endpoint] = seconds

    def fail_next_update(self, endpoint: str, reason: str) -> None:
        """The next change of `endpoint` (UpdateEndpoint or new weights) fails with `reason` once its time is up."""
        with self._lock:
            self.failures.setdefault(endpoint, []).append(reason)

    @staticmethod
    def _now() -> datetime:
        from promotion.core import clock

        return clock.now()

    def begin(self, endpoint: Any, change: PendingChange) -> None:
        with self._lock:
            queued = self.failures.get(endpoint.endpoint_name) or []
            if change.kind in ("update", "weights") and queued:
                change.failure = queued.pop(0)
            self.pending[endpoint.endpoint_name] = change
        endpoint.endpoint_status = "Creating" if change.kind == "create" else "Updating"
        self._changed(endpoint)

    def _changed(self, endpoint: Any) -> None:
        if self.on_change is not None:
            self.on_change(endpoint)

    def next_change(self) -> tuple[str, datetime] | None:
        """The endpoint whose pending change completes first, and when (None: nothing is changing)."""
        with self._lock:
            if not self.pending:
                return None
            name, change = min(self.pending.items(), key=lambda item: item[1].ready_at)
            return name, change.ready_at

    def settle(self, endpoint: Any, force: bool = False) -> None:
        """Finish the endpoint's pending change if its time has come (or `force`)."""
        with self._lock:
            change = self.pending.get(endpoint.endpoint_name)
            if change is None or (not force and self._now() < change.ready_at):
                return
            del self.pending[endpoint.endpoint_name]
        if change.failure is None and change.verify is not None:
            change.failure = change.verify()
        if change.failure is not None:
            for variant in endpoint.production_variants:  # desired weights fall back to what is served
                if "CurrentWeight" in variant:
                    variant["DesiredWeight"] = variant["CurrentWeight"]
            endpoint.failure_reason = change.failure
        elif change.kind == "weights":
            for variant in endpoint.production_variants:
                if variant["VariantName"] in change.weights:
                    variant["CurrentWeight"] = variant["DesiredWeight"] = change.weights[variant["VariantName"]]
            endpoint.failure_reason = None
        elif change.kind == "update":
            assert change.config_name is not None
            endpoint.endpoint_config_name = change.config_name
            endpoint.production_variants = endpoint._process_production_variants(change.variants)
            for variant, declared in zip(endpoint.production_variants, change.variants, strict=True):
                weight = float(declared.get("InitialVariantWeight", 1.0))
                variant["CurrentWeight"] = variant["DesiredWeight"] = weight
            endpoint.shadow_production_variants = endpoint._process_production_variants(change.shadow_variants)
            for variant, declared in zip(endpoint.shadow_production_variants, change.shadow_variants, strict=True):
                weight = float(declared.get("InitialVariantWeight", 1.0))
                variant["CurrentWeight"] = variant["DesiredWeight"] = weight
            endpoint.failure_reason = None
        endpoint.endpoint_status = "InService"
        self._changed(endpoint)

    def complete_now(self, endpoint_name: str) -> None:
        """The endpoint's pending change is done at its next DescribeEndpoint (a seeded champion starts InService)."""
        with self._lock:
            if endpoint_name in self.pending:
                self.pending[endpoint_name].ready_at = datetime.min.replace(tzinfo=self._now().tzinfo)

    def refuse_unless_in_service(self, endpoint: Any, message: str = IN_PROGRESS_MESSAGE) -> None:
        from moto.sagemaker.exceptions import ValidationError

        self.settle(endpoint)
        with self._lock:
            seconds = self.interference.pop(endpoint.endpoint_name, None)
        if seconds is not None and endpoint.endpoint_status == "InService":
            self.begin(endpoint, PendingChange(kind="other", ready_at=self._now() + timedelta(seconds=seconds)))
        if endpoint.endpoint_status != "InService":
            text = message.format(arn=endpoint.arn)
            self.refused.append(text)
            raise ValidationError(message=text)


@dataclass(frozen=True)
class VariantBehaviour:
    error_5xx: float
    error_4xx: float
    latency_ms: float


def behaviour(scenario: str, challenger: bool) -> VariantBehaviour:
    """How a variant serves in a scenario (the champion always serves at the base rates)."""
    base = VariantBehaviour(error_5xx=0.01, error_4xx=0.005, latency_ms=40.0)
    if not challenger:
        return base
    if scenario == "worse-errors":
        return VariantBehaviour(error_5xx=0.04, error_4xx=0.005, latency_ms=40.0)
    if scenario == "worse-latency":
        return VariantBehaviour(error_5xx=0.01, error_4xx=0.005, latency_ms=100.0)
    return base


class TrafficSimulator:
    """Writes the endpoints' per-variant metrics for the simulated time that passes during each Wait."""

    def __init__(self, sagemaker: Any, cloudwatch: Any, endpoints: list[str], scenario: str, seed: int = 7) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
        self.sagemaker = sagemaker
        self.cloudwatch = cloudwatch
        self.endpoints = endpoints
        self.scenario = scenario
        self.random = random.Random(seed)
        self.lifecycle = EndpointLifecycle()

    def on_wait(self, seconds: float) -> None:
        """`seconds` of simulated time pass: advance the domain's clock, then serve that much traffic."""
        from promotion.core import clock

        clock.advance(seconds)
        for endpoint in self.endpoints:
            try:
                described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
            except self.sagemaker.exceptions.ClientError:
                continue
            variants = described.get("ProductionVariants") or []
            shadows = described.get("ShadowProductionVariants") or []
            if len(variants) < 2 and not shadows:
                continue  # only a rollout (champion + challenger, or a champion and its shadow) is measured
            self._serve(endpoint, variants, seconds, shadows)

    def _serve(
        self, endpoint: str, variants: list[dict[str, Any]], seconds: float, shadows: list[dict[str, Any]] | None = None
    ) -> None:
        """Requests split by the production variants' weights; a shadow variant gets a copy of its weight's share of
        the production variant's requests (SageMaker samples them) and answers nobody, but has its own metrics."""
        total = 0.0 if self.scenario == "no-traffic" else REQUESTS_PER_SECOND * seconds
        weights = {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) for v in variants}
        champion = variants[0]["VariantName"]  # the rollout config lists the champion first
        from promotion.core import clock

        now = clock.now() - timedelta(seconds=1)  # within the simulated interval that just passed
        served = sum(weights.values()) or 1.0
        copies = {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) / served for v in shadows or []}
        for name, weight in [*((n, w / served) for n, w in weights.items()), *copies.items()]:
            is_challenger = name != champion
            share = weight * (0.5 if self.scenario == "skewed-split" and is_challenger else 1.0)
            requests = round(total * share)
            serving = behaviour(self.scenario, is_challenger)
            errors_5xx = self._binomial(requests, serving.error_5xx)
            errors_4xx = self._binomial(requests, serving.error_4xx)
            dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": name}]
            data: list[dict[str, Any]] = [
                {"MetricName": "Invocations", "Value": requests, "Unit": "Count"},
                {"MetricName": "Invocation5XXErrors", "Value": errors_5xx, "Unit": "Count"},
                {"MetricName": "Invocation4XXErrors", "Value": errors_4xx, "Unit": "Count"},
            ]
            if requests:
                samples = min(requests, LATENCY_SAMPLES_PER_MINUTE * max(1, math.ceil(seconds / 60)))
                latencies = [self.random.lognormvariate(0, 0.35) * serving.latency_ms * 1000 for _ in range(samples)]
                for first in range(0, samples, MAX_VALUES_PER_DATUM):
                    chunk = latencies[first : first + MAX_VALUES_PER_DATUM]
                    data.append({"MetricName": "ModelLatency", "Values": chunk, "Unit": "Microseconds"})
            self.cloudwatch.put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[{**datum, "Dimensions": dimensions, "Timestamp": now} for datum in data],
            )

    def _binomial(self, trials: int, probability: float) -> int:
        if trials <= 0:
            return 0
        if trials > 2000:  # normal approximation keeps long bakes cheap
            mean, spread = trials * probability, (trials * probability * (1 - probability)) ** 0.5
            return max(0, min(trials, round(self.random.gauss(mean, spread))))
        return sum(1 for _ in range(trials) if self.random.random() < probability)


def seed_endpoint(
    sagemaker: Any,
    endpoint: str,
    model_name: str,
    variant: str,
    config: str,
    image: str,
    model_url: str,
    role_arn: str,
    instance_type: str,
    data_capture: dict[str, Any] | None = None,
) -> None:
    """The champion serving alone on the production endpoint (capturing requests as `data_capture` says)."""
    sagemaker.create_model(
        ModelName=model_name, PrimaryContainer={"Image": image, "ModelDataUrl": model_url}, ExecutionRoleArn=role_arn
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0,
            }
        ],
        **({"DataCaptureConfig": data_capture} if data_capture is not None else {}),
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)


def endpoint_state(sagemaker: Any, endpoint: str) -> tuple[str, dict[str, float]] | None:
    """(endpoint config, variant -> served weight) of an endpoint, or None when it does not exist."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except sagemaker.exceptions.ClientError:
        return None
    weights = {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) for v in described.get("ProductionVariants", [])}
    return str(described["EndpointConfigName"]), weights


def endpoint_weights(sagemaker: Any, endpoint: str) -> dict[str, float]:
    """Variant -> current weight of an endpoint ({} when it does not exist)."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except sagemaker.exceptions.ClientError:
        return {}
    return {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) for v in described.get("ProductionVariants", [])}


def _patch(originals: dict[str, Any]) -> None:
    from moto.cloudwatch.models import Statistics
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    originals["statistic"] = Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Any:
        match = PERCENTILE.match(stat)
        if match is None or HOOKS.current is None:
            return originals["statistic"](self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = float(match.group(1)) / 100 * (len(values) - 1)
        low = int(rank)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (rank - low)

    originals["create_endpoint_config_response"] = SageMakerResponse.create_endpoint_config
    originals["config_response"] = FakeEndpointConfig.response_object
    originals["endpoint_response"] = FakeEndpoint.response_object
    originals["create_model"] = SageMakerModelBackend.create_model
    originals["create_endpoint_config"] = SageMakerModelBackend.create_endpoint_config
    originals["create_endpoint"] = SageMakerModelBackend.create_endpoint
    originals["describe_endpoint"] = SageMakerModelBackend.describe_endpoint
    originals["delete_endpoint"] = SageMakerModelBackend.delete_endpoint
    originals["weights"] = SageMakerModelBackend.update_endpoint_weights_and_capacities

    def lifecycle() -> EndpointLifecycle | None:
        return HOOKS.current.lifecycle if HOOKS.current is not None else None

    def find(self: Any, endpoint_name: str) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        return endpoint

    def _already(kind: str, resource: str, name: str, backend: Any) -> ValidationError:
        arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:{resource}/{name.lower()}"
        return ValidationError(message=f'Cannot create already existing {kind} "{arn}".')

    def create_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        # SageMaker refuses a second model of a name (moto 5.2.5 replaces the first): a retry must adopt its own.
        name = str(kwargs.get("model_name", args[0] if args else ""))
        if HOOKS.current is not None and name in self._models:
            raise _already("model", "model", name, self)
        return originals["create_model"](self, *args, **kwargs)

    def create_endpoint_config(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = str(kwargs.get("endpoint_config_name", args[0] if args else ""))
        if HOOKS.current is not None and name in self.endpoint_configs:
            raise _already("endpoint configuration", "endpoint-config", name, self)
        shadows = list(getattr(_REQUEST, "shadow_variants", None) or [])
        if HOOKS.current is not None and shadows:
            production = kwargs.get("production_variants") or []
            if len(shadows) > 1 or len(production) > 1:
                raise ValidationError(
                    message="An endpoint configuration with a shadow variant can have at most one production variant "
                    "and one shadow variant."
                )
        config = originals["create_endpoint_config"](self, *args, **kwargs)
        if HOOKS.current is not None and shadows:
            config.validate_production_variants(shadows)
            config.shadow_production_variants = shadows
        return config

    def create_endpoint_config_response(self: Any) -> Any:
        _REQUEST.shadow_variants = self._get_param("ShadowProductionVariants")
        try:
            return originals["create_endpoint_config_response"](self)
        finally:
            _REQUEST.shadow_variants = None

    def config_response(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = originals["config_response"].fget(self)
        if getattr(self, "shadow_production_variants", None):
            response["ShadowProductionVariants"] = self.shadow_production_variants
        return response

    def endpoint_response(self: Any) -> dict[str, Any]:
        response: dict[str, Any] = originals["endpoint_response"].fget(self)
        if getattr(self, "shadow_production_variants", None):
            response["ShadowProductionVariants"] = self.shadow_production_variants
        return response

    def create_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = originals["create_endpoint"](self, *args, **kwargs)
        if (tracker := lifecycle()) is not None:
            ready = tracker._now() + timedelta(seconds=tracker.seconds["create"])
            tracker.begin(endpoint, PendingChange(kind="create", ready_at=ready))
        return endpoint

    def describe_endpoint(self: Any, endpoint_name: str) -> Any:
        if (tracker := lifecycle()) is not None and endpoint_name in self.endpoints:
            tracker.settle(self.endpoints[endpoint_name])
        return originals["describe_endpoint"](self, endpoint_name)

    def delete_endpoint(self: Any, endpoint_name: str) -> None:
        if (tracker := lifecycle()) is not None:
            tracker.refuse_unless_in_service(find(self, endpoint_name), DELETE_IN_PROGRESS_MESSAGE)
        originals["delete_endpoint"](self, endpoint_name)

    def update_endpoint_backend(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = find(self, endpoint_name)
        config = self.endpoint_configs.get(endpoint_config_name)
        if config is None:
            arn = FakeEndpointConfig.arn_formatter(endpoint_config_name, self.account_id, self.region_name)
            raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
        tracker = lifecycle()
        if tracker is None:  # no runtime: at once, as before
            endpoint.endpoint_config_name = endpoint_config_name
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
            return str(endpoint.arn)
        tracker.refuse_unless_in_service(endpoint)
        ready = tracker._now() + timedelta(seconds=tracker.seconds["update"])
        shadows = list(getattr(config, "shadow_production_variants", None) or [])
        change = PendingChange(
            kind="update",
            ready_at=ready,
            config_name=endpoint_config_name,
            variants=list(config.production_variants),
            shadow_variants=shadows,
        )
        # SageMaker provisions every variant anew and downloads its model data: one it cannot load fails the update.
        change.verify = lambda: _model_data_failure(self, tracker, [*config.production_variants, *shadows])
        tracker.begin(endpoint, change)
        return str(endpoint.arn)

    def update_weights(self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]) -> str:
        tracker = lifecycle()
        if tracker is None:
            return str(originals["weights"](self, endpoint_name, desired_weights_and_capacities))
        endpoint = find(self, endpoint_name)
        tracker.refuse_unless_in_service(endpoint)
        served = {v["VariantName"]: dict(v) for v in endpoint.production_variants}
        names = [v["VariantName"] for v in endpoint.production_variants]
        originals["weights"](self, endpoint_name, desired_weights_and_capacities)  # moto's checks of the variants
        desired: dict[str, float] = {}
        for variant in endpoint.production_variants:  # back to what is served; Desired* shows the request
            asked = variant.get("DesiredWeight")
            variant.clear()
            variant.update(served[names[endpoint.production_variants.index(variant)]])
            if asked is not None and any(
                item.get("VariantName") == variant["VariantName"] for item in desired_weights_and_capacities
            ):
                variant["DesiredWeight"] = desired[variant["VariantName"]] = float(asked)
        ready = tracker._now() + timedelta(seconds=tracker.seconds["weights"])
        tracker.begin(endpoint, PendingChange(kind="weights", ready_at=ready, weights=desired))
        return str(endpoint.arn)

    def update_endpoint_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]
    SageMakerModelBackend.create_model = create_model  # type: ignore[method-assign]
    SageMakerModelBackend.create_endpoint_config = create_endpoint_config  # type: ignore[method-assign]
    SageMakerModelBackend.create_endpoint = create_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.describe_endpoint = describe_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.delete_endpoint = delete_endpoint  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint_weights_and_capacities = update_weights  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint = update_endpoint_backend  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_response  # type: ignore[attr-defined]
    SageMakerResponse.create_endpoint_config = create_endpoint_config_response  # type: ignore[method-assign]
    FakeEndpointConfig.response_object = property(config_response)  # type: ignore[method-assign,assignment]
    FakeEndpoint.response_object = property(endpoint_response)  # type: ignore[method-assign,assignment]


def _model_data_failure(backend: Any, tracker: EndpointLifecycle, variants: list[dict[str, Any]]) -> str | None:
    """Why the new config's instances could not load a variant's model, in SageMaker's words, or None."""
    if tracker.model_data_check is None:
        return None
    for index, variant in enumerate(variants, start=1):
        model = backend._models.get(variant.get("ModelName"))
        url = (getattr(model, "primary_container", None) or {}).get("ModelDataUrl") if model is not None else None
        if not url:
            continue
        if tracker.model_data_check(str(model.execution_role_arn), str(url)) is not None:
            return MODEL_DATA_FAILURE.format(container=f"container_{index}", url=url)
    return None


_REQUEST = threading.local()  # the CreateEndpointConfig request's ShadowProductionVariants (moto 5.2.5 drops them)
HOOKS: Hooks[TrafficSimulator] = Hooks(_patch)
