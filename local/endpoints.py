"""The production endpoint locally: the two moto gaps a rollout needs, the champion's endpoint seed, and a traffic
simulator that writes per-variant CloudWatch metrics while the state machine waits.

Bridges (each active only while a local runtime runs):
* `UpdateEndpoint` is not implemented by moto 5.2.5: the endpoint takes the new endpoint config's variants and
  weights at once (InService), as SageMaker does after its update completes.
* CloudWatch percentiles (`p50`, `p99`) are not computed by moto's GetMetricData: they are, from the raw values
  put with PutMetricData.

The simulator plays the endpoint's callers: during every Wait of the execution (compressed locally, so it also
says how much simulated time passed) it splits requests between the variants by their current weights and
writes Invocations, Invocation5XXErrors, Invocation4XXErrors and ModelLatency for each, with the rates of the chosen
scenario (good, worse-errors, worse-latency, no-traffic, skewed-split).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from local.hooks import Hooks

Scenario = Literal["good", "worse-errors", "worse-latency", "no-traffic", "skewed-split"]
SCENARIOS: tuple[str, ...] = ("good", "worse-errors", "worse-latency", "no-traffic", "skewed-split")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")
REQUESTS_PER_SECOND = 100.0
LATENCY_SAMPLES = 120  # per variant and wait: enough for a stable p99 in moto without storing every request


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

    def on_wait(self, seconds: float) -> None:
        """`seconds` of simulated time pass: advance the domain's clock, then serve that much traffic."""
        from promotion import clock

        clock.advance(seconds)
        for endpoint in self.endpoints:
            try:
                described = self.sagemaker.describe_endpoint(EndpointName=endpoint)
            except self.sagemaker.exceptions.ClientError:
                continue
            variants = described.get("ProductionVariants") or []
            if len(variants) < 2:
                continue  # only a rollout (champion + challenger) is measured
            self._serve(endpoint, variants, seconds)

    def _serve(self, endpoint: str, variants: list[dict[str, Any]], seconds: float) -> None:
        total = 0.0 if self.scenario == "no-traffic" else REQUESTS_PER_SECOND * seconds
        weights = {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) for v in variants}
        champion = variants[0]["VariantName"]  # the rollout config lists the champion first
        from promotion import clock

        now = clock.now() - timedelta(seconds=1)  # within the simulated interval that just passed
        for name, weight in weights.items():
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
                latencies = [
                    self.random.lognormvariate(0, 0.35) * serving.latency_ms * 1000
                    for _ in range(min(requests, LATENCY_SAMPLES))
                ]
                data.append({"MetricName": "ModelLatency", "Values": latencies, "Unit": "Microseconds"})
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
) -> None:
    """The champion serving alone on the production endpoint."""
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
    )
    sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)


def endpoint_weights(sagemaker: Any, endpoint: str) -> dict[str, float]:
    """Variant -> current weight of an endpoint ({} when it does not exist)."""
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except sagemaker.exceptions.ClientError:
        return {}
    return {v["VariantName"]: float(v.get("CurrentWeight") or 0.0) for v in described.get("ProductionVariants", [])}


def _patch(originals: dict[str, Any]) -> None:
    from moto.cloudwatch.models import Statistics
    from moto.sagemaker.models import SageMakerModelBackend
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

    def update_endpoint_backend(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints[endpoint_name]
        config = self.endpoint_configs[endpoint_config_name]
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        for variant, declared in zip(endpoint.production_variants, config.production_variants, strict=True):
            weight = float(declared.get("InitialVariantWeight", 1.0))
            variant["CurrentWeight"] = variant["DesiredWeight"] = weight
        endpoint.endpoint_status = "InService"
        return str(endpoint.arn)

    def update_endpoint_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    Statistics.get_statistics_for_type = get_statistics_for_type  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint = update_endpoint_backend  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_response  # type: ignore[attr-defined]


HOOKS: Hooks[TrafficSimulator] = Hooks(_patch)
