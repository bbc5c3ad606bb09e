"""The A/B rollout: the challenger earns live traffic stage by stage on the production endpoint.

DeployChallenger adds the challenger as a second production variant (weight 0) beside the champion; each stage
shifts the weights (ShiftTraffic), bakes, and EvaluateStage judges the challenger against the concurrent champion on
the endpoint's CloudWatch metrics with the anytime-valid gate (promotion.rollout.gate). PromoteChallenger makes the
challenger the single variant and RetireChampion removes the old variant's config and model. Stages, bake time,
looks and gates come from the catalog. Rollback puts the endpoint back on the champion alone
(promotion.production.restore).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.contract.catalog import Rollout as RolloutSettings
from promotion.contract.events import RELEASE_TAG
from promotion.contract.job_image import Images
from promotion.contract.names import (
    challenger_variant_name,
    endpoint_config_name,
    final_endpoint_config_name,
    model_name,
    shadow_endpoint_config_name,
)
from promotion.contract.state import (
    OperatorDecision,
    PipelineState,
    Rollout,
    RolloutAction,
    RolloutState,
    StageReport,
    required,
)
from promotion.core import clock
from promotion.core.errors import ArtifactChanged, CatalogError, PromotionError, ResourceNotOurs
from promotion.jobs.comparison import SKIPPED_COMPARISON
from promotion.monitoring.capture import data_capture_config
from promotion.production.read import describe_endpoint, served_weights
from promotion.rollout.artifacts import pin_artifact
from promotion.rollout.control import ControlRequest, OperatorRequest
from promotion.rollout.gate import (
    GateOutcome,
    GateSettings,
    SequentialState,
    StageObservation,
    VariantMetrics,
    evaluate_stage,
)
from promotion.rollout.weights import stage_weights

# Rollback's looks at one endpoint call (its 60-s loop): a config change (new instances) takes SageMaker minutes.
MAX_ENDPOINT_POLLS = 90
# SageMaker's transitional statuses: the endpoint takes no other change until it is InService again.
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
WEIGHT_TOLERANCE = 1e-6


class EndpointUpdateFailed(PromotionError):
    """The endpoint update failed or did not finish in time; the message says its status and reason."""


def rollout_settings(catalog: ModelCatalog) -> RolloutSettings:
    """The catalog's rollout section; CatalogError when it has none (removed while this execution rolls out)."""
    if catalog.rollout is None:
        raise CatalogError(
            f"model {catalog.id}'s catalog has no rollout section, but this execution is rolling out: was it removed "
            "since the rollout began?"
        )
    return catalog.rollout


def gate_settings(catalog: ModelCatalog, stage_index: int = 0) -> GateSettings:
    """The catalog's gates as one stage's gate settings: the harm that stage must rule out to pass is the larger of
    its absolute floor (`error_rate_tolerance`, shrunk stage by stage as its ratio is) and its rule-out ratio's
    excess over the champion's rate (never below the FAIL tolerance)."""
    settings = rollout_settings(catalog)
    gates = settings.gates
    fail_tolerance = GateSettings.model_fields["error_rate_abs_tolerance"].default
    return GateSettings(
        alpha=gates.alpha,
        beta=gates.beta,
        pass_abs_excess=max(settings.rule_out_floor(stage_index), fail_tolerance),
        pass_max_ratio=settings.rule_out_ratio(stage_index),
        min_latency_requests=gates.min_latency_requests,
        p99_latency_max_ratio=gates.max_p99_latency_ratio,
        min_challenger_requests=gates.min_requests,
        min_champion_requests=gates.min_requests,
        srm_alpha=gates.srm_alpha,
    )


def deploy_challenger(
    sagemaker: Any,
    s3: Any,
    bucket: str,
    catalog: ModelCatalog,
    state: PipelineState,
    role_arn: str,
    images: Images,
) -> Rollout:
    """Add the challenger beside the champion (weight 0) with UpdateEndpoint; SKIPPED when there is no endpoint.
    The challenger's model serves the release's pinned copy of the artifact the comparison evaluated
    (promotion.rollout.artifacts): ArtifactChanged when the training output changed since."""
    settings, claim, pipeline = catalog.rollout, state.claim, state.pipeline
    if settings is None:
        return Rollout(action=RolloutAction.SKIPPED, reason="the catalog has no rollout settings")
    endpoint = describe_endpoint(sagemaker, settings.endpoint_name)
    if endpoint is None:
        return Rollout(
            action=RolloutAction.SKIPPED,
            reason=f"endpoint {settings.endpoint_name} does not exist: nothing to roll out",
        )
    original = endpoint["EndpointConfigName"]
    variants = endpoint.get("ProductionVariants") or []
    if len(variants) != 1:
        raise EndpointUpdateFailed(
            f"endpoint {settings.endpoint_name} serves {len(variants)} variants; "
            "a rollout starts from the champion alone"
        )
    config = sagemaker.describe_endpoint_config(EndpointConfigName=original)
    champion = next(v for v in config["ProductionVariants"] if v["VariantName"] == variants[0]["VariantName"])
    challenger_model = model_name(claim.model, claim.release_id)
    challenger_variant = challenger_variant_name(claim.model, claim.release_id)
    rollout_config = endpoint_config_name(claim.model, claim.release_id)
    if pipeline.model_data_url is None:
        raise ArtifactChanged(f"the pipeline of release {claim.release_id} reported no model artifact to deploy")
    evaluated = state.comparison.challenger_sha256 if state.comparison is not None else None
    # A comparison that ran must name what it evaluated; a skipped one (no comparison settings) evaluated nothing,
    # and the training output is pinned as it is.
    ran = state.comparison is not None and state.comparison.status != SKIPPED_COMPARISON
    if ran and state.comparison is not None and state.comparison.decision is not None and evaluated is None:
        raise ArtifactChanged(
            f"the comparison report {state.comparison.report_uri} names no digest of the artifact it evaluated: "
            "what it judged cannot be pinned (a comparison image older than report version 2?)"
        )
    pinned = pin_artifact(s3, bucket, claim.model, claim.release_id, pipeline.model_data_url, evaluated)
    _create_if_absent(
        sagemaker.create_model,
        sagemaker.describe_model,
        ModelName=challenger_model,
        PrimaryContainer={"Image": images.resolve(settings.serving_image), "ModelDataUrl": pinned.url},
        ExecutionRoleArn=role_arn,
        Tags=[{"Key": RELEASE_TAG, "Value": claim.release_id}],
    )
    challenger = {
        "VariantName": challenger_variant,
        "ModelName": challenger_model,
        "InstanceType": settings.instance_type,
        "InitialInstanceCount": settings.initial_instance_count,
    }
    _create_if_absent(
        sagemaker.create_endpoint_config,
        sagemaker.describe_endpoint_config,
        EndpointConfigName=rollout_config,
        ProductionVariants=[{**champion, "InitialVariantWeight": 1.0}, {**challenger, "InitialVariantWeight": 0.0}],
        **_capture(catalog, bucket),
    )
    # What the rollout knows whether it begins in the shadow stage or live (weight 0).
    deployed: dict[str, Any] = {
        "action": RolloutAction.WAIT_ENDPOINT,
        "endpoint_name": settings.endpoint_name,
        "original_config": original,
        "rollout_config": rollout_config,
        "champion_variant": champion["VariantName"],
        "champion_model": champion["ModelName"],
        "challenger_variant": challenger_variant,
        "challenger_model": challenger_model,
        "model_data_url": pinned.url,
        "artifact_sha256": pinned.sha256,
        "stages": list(settings.stages),
        "looks_per_stage": max(1, round(settings.bake_minutes / settings.look_minutes)),
        "look_seconds": int(settings.look_minutes * 60),
    }
    if settings.shadow is not None:
        # The shadow stage first: the champion alone serves, the challenger gets a copy of the requests.
        shadow_config = shadow_endpoint_config_name(claim.model, claim.release_id)
        share = settings.shadow.sampling_percent / 100
        _create_if_absent(
            sagemaker.create_endpoint_config,
            sagemaker.describe_endpoint_config,
            EndpointConfigName=shadow_config,
            ProductionVariants=[{**champion, "InitialVariantWeight": 1.0}],
            ShadowProductionVariants=[{**challenger, "InitialVariantWeight": share}],
            **_capture(catalog, bucket),
        )
        sagemaker.update_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=shadow_config)
        return Rollout(
            **deployed,
            reason=(
                f"challenger {challenger_variant} deployed as the shadow of champion {champion['VariantName']} "
                f"({settings.shadow.sampling_percent:g} % of requests copied, none answered)"
            ),
            shadow_config=shadow_config,
            shadow_share=share,
            phase="shadow",
            weights={champion["VariantName"]: 1.0},
            expected_config=shadow_config,
            then=RolloutAction.BAKE,
        )
    sagemaker.update_endpoint(EndpointName=settings.endpoint_name, EndpointConfigName=rollout_config)
    return Rollout(
        **deployed,
        reason=f"challenger {challenger_variant} deployed beside champion {champion['VariantName']} at weight 0",
        weights={champion["VariantName"]: 1.0, challenger_variant: 0.0},
        expected_config=rollout_config,
        then=RolloutAction.SHIFT,
    )


def _capture(catalog: ModelCatalog, bucket: str) -> dict[str, Any]:
    """DataCaptureConfig for an endpoint config of a monitored model (promotion.monitoring), else nothing."""
    capture = data_capture_config(catalog, bucket)
    return {"DataCaptureConfig": capture} if capture is not None else {}


def _create_if_absent(create: Any, describe: Any, **request: Any) -> None:
    """Create the model or endpoint config, or adopt one of that name only if it is what was asked for (a retried
    step finds its own); anything else under the name is refused with ResourceNotOurs, never served."""
    try:
        create(**request)
    except ClientError as error:
        if "already exist" not in str(error).lower():
            raise
        key = "ModelName" if "ModelName" in request else "EndpointConfigName"
        existing = describe(**{key: request[key]})
        asked = {field: value for field, value in request.items() if field != "Tags"}
        differences = _differences(asked, existing, "")
        if differences:
            raise ResourceNotOurs(
                f"SageMaker {key.removesuffix('Name').lower()} {request[key]} already exists but is not the one this "
                f"release asked for ({'; '.join(differences[:5])}): it is not adopted"
            ) from error


def _differences(asked: Any, found: Any, path: str) -> list[str]:
    """Where `found` (a Describe answer) differs from the `asked` request fields (fields it adds are fine)."""
    if isinstance(asked, dict):
        if not isinstance(found, dict):
            return [f"{path or 'it'} is not an object"]
        return [d for name, value in asked.items() for d in _differences(value, found.get(name), f"{path}{name}.")]
    if isinstance(asked, list):
        if not isinstance(found, list) or len(found) != len(asked):
            return [f"{path.rstrip('.')}: {len(asked)} asked, {len(found) if isinstance(found, list) else 0} found"]
        return [d for i, (a, f) in enumerate(zip(asked, found, strict=True)) for d in _differences(a, f, f"{path}{i}.")]
    if isinstance(asked, float | int) and not isinstance(asked, bool) and isinstance(found, float | int):
        return [] if abs(float(asked) - float(found)) <= WEIGHT_TOLERANCE else [f"{path.rstrip('.')}: {found}"]
    return [] if asked == found else [f"{path.rstrip('.')}: {found!r}, not {asked!r}"]


def same_weights(left: dict[str, float], right: dict[str, float]) -> bool:
    return set(left) == set(right) and all(abs(left[name] - right[name]) <= WEIGHT_TOLERANCE for name in left)


def check_endpoint(sagemaker: Any, rollout: Rollout, now: datetime | None = None) -> Rollout:
    """Where the last endpoint change stands (SageMaker's event runs this, promotion.jobs.callbacks); once InService,
    confirm the endpoint serves the config and the weights it asked for (an update that failed leaves the endpoint
    InService on the old ones, with a FailureReason), then go on with `then` (the first stage, the stage's bake, or
    retiring the champion)."""
    endpoint_name = required(rollout.endpoint_name, "$.rollout.endpoint_name")
    endpoint = describe_endpoint(sagemaker, endpoint_name) or {}
    status = endpoint.get("EndpointStatus", "Missing")
    polls = rollout.polls + 1
    if status in IN_PROGRESS:  # not settled yet: the waiting step's timeout bounds how long (promotion.jobs.callbacks)
        return rollout.model_copy(update={"endpoint_status": status, "polls": polls})
    if status != "InService":
        raise EndpointUpdateFailed(
            f"endpoint {rollout.endpoint_name} is {status}: {endpoint.get('FailureReason', 'no reason given')}"
        )
    config, weights = endpoint.get("EndpointConfigName"), served_weights(endpoint)
    if config != rollout.expected_config or not same_weights(weights, rollout.weights):
        raise EndpointUpdateFailed(
            f"endpoint {rollout.endpoint_name} is InService on {config} with weights {weights}, not the requested "
            f"{rollout.expected_config} with {rollout.weights}: the update failed "
            f"({endpoint.get('FailureReason') or 'no FailureReason given'})"
        )
    if rollout.then is None:
        raise EndpointUpdateFailed(f"endpoint {rollout.endpoint_name}: nothing to do after the update (no `then`)")
    update: dict[str, Any] = {"endpoint_status": status, "polls": 0, "action": rollout.then, "then": None}
    if rollout.then == RolloutAction.BAKE:
        # The stage counts from when its weights are served, not from when they were asked for.
        update["stage_started_at"] = now or clock.now()
    return rollout.model_copy(update=update)


def shift_traffic(sagemaker: Any, rollout: Rollout) -> Rollout:
    """Ask for the current stage's weights (they sum to 1; the challenger's share only grows); the stage's bake
    starts once SageMaker serves them (check_endpoint, on SageMaker's event)."""
    endpoint, champion, challenger = _variants(rollout)
    if rollout.phase == "shadow":
        # The shadow stage passed: the A/B config, the challenger a production variant at weight 0; the first
        # stage's weights follow once SageMaker serves it (then=SHIFT).
        config = required(rollout.rollout_config, "$.rollout.rollout_config")
        sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        return rollout.model_copy(
            update={
                "action": RolloutAction.WAIT_ENDPOINT,
                "then": RolloutAction.SHIFT,
                "phase": "live",
                "expected_config": config,
                "polls": 0,
                "reason": f"shadow stage passed: challenger {challenger} joins the endpoint at weight 0",
                "weights": {champion: 1.0, challenger: 0.0},
                "stage_started_at": None,
                "looks": 0,
                "extensions": 0,
                "gate_state": None,
            }
        )
    champion_weight, challenger_weight = stage_weights(rollout.stages)[rollout.stage_index]
    sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": champion, "DesiredWeight": champion_weight},
            {"VariantName": challenger, "DesiredWeight": challenger_weight},
        ],
    )
    percent = rollout.stages[rollout.stage_index]
    return rollout.model_copy(
        update={
            "action": RolloutAction.WAIT_ENDPOINT,
            "then": RolloutAction.BAKE,
            "polls": 0,
            "reason": f"stage {rollout.stage_index + 1}/{len(rollout.stages)}: challenger at {percent:g} %",
            "weights": {champion: champion_weight, challenger: challenger_weight},
            "stage_started_at": None,
            "looks": 0,
            "extensions": 0,
            "gate_state": None,
        }
    )


def _variants(rollout: Rollout) -> tuple[str, str, str]:
    """The endpoint and the champion's and challenger's variant names DeployChallenger recorded."""
    return (
        required(rollout.endpoint_name, "$.rollout.endpoint_name"),
        required(rollout.champion_variant, "$.rollout.champion_variant"),
        required(rollout.challenger_variant, "$.rollout.challenger_variant"),
    )


def _next_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def variant_metrics(
    cloudwatch: Any, endpoint: str, variant: str, start: datetime, end: datetime, *, count_4xx: bool = False
) -> VariantMetrics:
    """Cumulative Invocations and 5XX (and 4XX when the gate counts them) and the ModelLatency p99 (microseconds ->
    ms) of one variant: only what the gate decides on, since GetMetricData is priced per metric requested (each
    look reads two variants; the p50 and uncounted 4XX would add two thirds to the promotion's CloudWatch cost)."""

    def query(query_id: str, metric: str, stat: str) -> dict[str, Any]:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                },
                "Period": max(60, int((end - start).total_seconds()) // 60 * 60 or 60),
                "Stat": stat,
            },
        }

    queries = [
        query("invocations", "Invocations", "Sum"),
        query("errors5xx", "Invocation5XXErrors", "Sum"),
        query("p99", "ModelLatency", "p99"),
    ]
    if count_4xx:
        queries.append(query("errors4xx", "Invocation4XXErrors", "Sum"))
    response = cloudwatch.get_metric_data(
        MetricDataQueries=queries,
        StartTime=start,
        EndTime=end,
    )
    values = {result["Id"]: list(result.get("Values") or []) for result in response["MetricDataResults"]}

    def total(key: str) -> int:
        return round(sum(values.get(key, [])))

    def worst(key: str) -> float | None:
        found = values.get(key) or []
        return max(found) / 1000.0 if found else None

    return VariantMetrics(
        invocations=total("invocations"),
        errors_5xx=min(total("errors5xx"), total("invocations")),
        errors_4xx=min(total("errors4xx"), total("invocations")),
        latency_p50_ms=None,
        latency_p99_ms=worst("p99"),
    )


def champion_reference(previous: dict[str, Any] | None, stage: VariantMetrics) -> VariantMetrics:
    """What the 100 % stage compares the challenger with: the champion's requests and errors over every stage it
    shared (its error rate is its own, whatever the split, so the stages add up), and the p50/p99 of the last one
    (percentiles of separate windows do not add). The more the reference holds, the smaller the harm the last stage
    can rule out against it; the last shared stage alone ends as soon as its own bound is met."""
    if previous is None:
        return stage
    earlier = VariantMetrics.model_validate(previous)
    return stage.model_copy(
        update={
            "invocations": earlier.invocations + stage.invocations,
            "errors_5xx": earlier.errors_5xx + stage.errors_5xx,
            "errors_4xx": earlier.errors_4xx + stage.errors_4xx,
        }
    )


def evaluate_rollout_stage(
    cloudwatch: Any,
    catalog: ModelCatalog,
    rollout: Rollout,
    now: datetime | None = None,
    request: OperatorRequest | None = None,
) -> Rollout:
    """One look at the current stage: the gate's verdict, and what the state machine does next.

    An operator's say comes first: the answer AwaitOperator was completed with (`rollout.operator`, applied once), or
    else a request the control record holds (`request`, promotion.rollout.control). An abort rolls back without a
    look; otherwise the look is taken, and a FAIL or INVALID verdict rolls back whatever was asked (the guardrail
    holds). A pause holds the stage's weights (HOLD), a promote-now promotes, a resume of a paused stage goes on with
    the gate where it stopped, a resume of an inconclusive stage accepts it."""
    settings = rollout_settings(catalog)
    moment = now or clock.now()
    answer, held = rollout.operator, rollout.hold
    cleared: dict[str, Any] = {"operator": None, "hold": None, "hold_seconds": None}
    if answer is not None and answer.decision == "expired":
        waited = f"no operator answered within {settings.hold_hours:g} h of the rollout being held ({held})"
        if settings.on_hold_expiry == "rollback":
            return rollout.model_copy(
                update={**cleared, "action": RolloutAction.ROLLBACK, "reason": f"{waited}: on_hold_expiry rollback"}
            )
        answer = OperatorDecision(decision="resume", by="on_hold_expiry", reason=f"{waited}: on_hold_expiry continue")
    if answer is not None and answer.decision == "abort":
        reason = f"aborted by {answer.by} ({answer.identity}) while held ({held}): {answer.reason}"
        return rollout.model_copy(update={**cleared, "action": RolloutAction.ROLLBACK, "reason": reason})
    if answer is None and request is not None and request.action == ControlRequest.ABORT:
        reason = f"{stage_label(rollout)}: {request.says()}"
        return rollout.model_copy(update={**cleared, "action": RolloutAction.ROLLBACK, "reason": reason})
    update, champion = _look(cloudwatch, catalog, rollout, moment)
    guardrail_failed = update["action"] == RolloutAction.ROLLBACK and update.get("failed", False)
    update.pop("failed", None)
    stage = stage_label(rollout)
    asked, who = _operator_say(answer, request)
    if guardrail_failed:
        if asked is not None:
            update["reason"] += f"; the {asked} by {who} is not carried out: the guardrail failed"
    elif asked == "promote-now":
        update = {**_kept(update), "action": RolloutAction.PROMOTE}
        update["reason"] = f"{stage} promoted now by {who}; this look's guardrail held ({update['reason']})"
    elif answer is None and request is not None and request.action == ControlRequest.PAUSE:
        update = {**_kept(update), "action": RolloutAction.HOLD, "hold": "paused"}
        update["reason"] = f"{stage} paused by {who}; weights held (last look: {update['reason']})"
    elif asked == "resume" and held == "inconclusive" and update["action"] not in _ADVANCING:
        update = {**_kept(update), **_advance(rollout, champion)}
        update["reason"] = f"{stage} accepted although inconclusive, by {who} (last look: {update['reason']})"
    elif asked == "resume":
        update["reason"] = f"{stage} resumed by {who}; {update['reason']}"
    if update["action"] == RolloutAction.HOLD:
        update["hold_seconds"] = int(settings.hold_hours * 3600)
    if asked is not None:  # the look's report says what the operator's say did
        *earlier, look = update["history"]
        update["history"] = [*earlier, look.model_copy(update={"operator": update["reason"]})]
    return rollout.model_copy(update={**cleared, **update})


def stage_label(rollout: Rollout) -> str:
    """How reasons name the current stage: `shadow stage` or `stage k (p %)`."""
    if rollout.phase == "shadow":
        return f"shadow stage ({(rollout.shadow_share or 0) * 100:g} % of requests copied)"
    return f"stage {rollout.stage_index + 1} ({rollout.stages[rollout.stage_index]:g} %)"


def _operator_say(answer: OperatorDecision | None, request: OperatorRequest | None) -> tuple[str | None, str]:
    """(what an operator asked of this look, who and why), from the hold's answer or else the pending request."""
    if answer is not None:
        return answer.decision, f"{answer.by} ({answer.identity}): {answer.reason}"
    if request is not None:
        return request.action.command, f"{request.by} ({request.identity}): {request.reason}"
    return None, ""


_ADVANCING = (RolloutAction.NEXT_STAGE, RolloutAction.PROMOTE)
_LOOK_FIELDS = ("looks", "gate_state", "reason", "history")


def _kept(update: dict[str, Any]) -> dict[str, Any]:
    """A look's record (its count, the gate's state, its report) without what its verdict would have done."""
    return {name: update[name] for name in _LOOK_FIELDS if name in update}


def _advance(rollout: Rollout, champion: VariantMetrics) -> dict[str, Any]:
    """The next stage, or PROMOTE after the last one; the champion's counts join the 100 % stage's reference. After
    the shadow stage, the first live stage (ShiftTraffic puts the challenger on the endpoint first)."""
    if rollout.phase == "shadow":
        return {"action": RolloutAction.NEXT_STAGE}
    if rollout.stage_index + 1 >= len(rollout.stages):
        return {"action": RolloutAction.PROMOTE}
    return {
        "action": RolloutAction.NEXT_STAGE,
        "stage_index": rollout.stage_index + 1,
        "reference_champion": champion_reference(rollout.reference_champion, champion).model_dump(mode="json"),
    }


def _look(
    cloudwatch: Any, catalog: ModelCatalog, rollout: Rollout, moment: datetime
) -> tuple[dict[str, Any], VariantMetrics]:
    """The gate's verdict on the stage now, as the Rollout fields it changes (`failed` marks a FAIL or INVALID
    verdict), and the champion's counts it was judged against."""
    settings = rollout_settings(catalog)
    endpoint, champion_variant, challenger_variant = _variants(rollout)
    stage_started_at = required(rollout.stage_started_at, "$.rollout.stage_started_at")
    # CloudWatch aggregates by minute: the stage counts from the first whole minute after its weights changed, so
    # no request served at the previous stage's weights is counted (that would fake a sample-ratio mismatch).
    start = _next_minute(stage_started_at)
    end = max(moment, start + timedelta(minutes=1))
    if rollout.phase == "shadow":  # a copy of `shadow_share` of the champion's requests: its share of both
        copied = rollout.shadow_share or 1.0
        share = copied / (1 + copied)
    else:
        share = rollout.weights[challenger_variant]
    stage_gate = gate_settings(catalog, rollout.stage_index)
    count_4xx = stage_gate.count_4xx_as_errors
    challenger = variant_metrics(cloudwatch, endpoint, challenger_variant, start, end, count_4xx=count_4xx)
    if share >= 1.0 and rollout.reference_champion is not None:
        # At 100 % the champion serves nothing: the challenger is judged against the champion's shared stages.
        champion = VariantMetrics.model_validate(rollout.reference_champion)
    else:
        champion = variant_metrics(cloudwatch, endpoint, champion_variant, start, end, count_4xx=count_4xx)
    look = rollout.looks + 1
    final = look >= rollout.looks_per_stage * (1 + rollout.extensions)
    baked_minutes = (moment - stage_started_at).total_seconds() / 60
    prior = SequentialState.model_validate(rollout.gate_state) if rollout.gate_state else None
    verdict = evaluate_stage(
        StageObservation(challenger_share=share, champion=champion, challenger=challenger),
        stage_gate,
        final_look=final,
        prior=prior,
        may_pass=baked_minutes >= settings.shortest_bake_minutes,
    )
    error_test, srm, latency = verdict.error_rate, verdict.srm, verdict.latency
    shadow = rollout.phase == "shadow"
    report = StageReport(
        stage=0 if shadow else rollout.stage_index + 1,
        challenger_percent=0.0 if shadow else rollout.stages[rollout.stage_index],
        look=look,
        outcome=verdict.outcome.value,
        reason=verdict.reason,
        champion_requests=champion.invocations,
        challenger_requests=challenger.invocations,
        champion_error_rate=verdict.champion.error_rate,
        challenger_error_rate=verdict.challenger.error_rate,
        p99_ratio=latency.p99_ratio if latency else None,
        always_valid_p_value=error_test.always_valid_p_value if error_test else None,
        cs_lower=error_test.cs_lower if error_test else None,
        cs_upper=error_test.cs_upper if error_test else None,
        fail_margin=error_test.fail_margin if error_test else None,
        pass_margin=error_test.pass_margin if error_test else None,
        baked_minutes=round(baked_minutes, 2),
        srm_p_value=srm.p_value if srm else None,
    )
    # Every look is reported; the most recent 48 are kept so the execution document stays far below 256 KB.
    update: dict[str, Any] = {
        "looks": look,
        "gate_state": verdict.state.model_dump(mode="json"),
        "reason": verdict.reason,
        "history": [*rollout.history, report][-48:],
    }
    if verdict.outcome in (GateOutcome.FAIL, GateOutcome.INVALID):
        update["action"] = RolloutAction.ROLLBACK
        update["failed"] = True
        update["reason"] = f"{stage_label(rollout)} {verdict.outcome.value}: {verdict.reason}"
    elif verdict.outcome == GateOutcome.PASS:
        update.update(_advance(rollout, champion))
    elif not final:
        update["action"] = RolloutAction.BAKE
    elif rollout.extensions < settings.max_bake_extensions:
        update["action"] = RolloutAction.BAKE
        update["extensions"] = rollout.extensions + 1
        update["reason"] = (
            f"inconclusive after {look} looks; bake extended ({rollout.extensions + 1}/{settings.max_bake_extensions})"
        )
    elif settings.on_inconclusive == "hold":
        update["action"] = RolloutAction.HOLD
        update["hold"] = "inconclusive"
        update["reason"] = (
            f"{stage_label(rollout)} still INCONCLUSIVE after {settings.max_bake_extensions} bake extensions: held "
            f"for an operator ({verdict.reason})"
        )
    else:
        update["action"] = RolloutAction.ROLLBACK
        update["reason"] = (
            f"{stage_label(rollout)} still INCONCLUSIVE after {settings.max_bake_extensions} bake extensions: "
            f"{verdict.reason}"
        )
    return update, champion


def promote_challenger(sagemaker: Any, catalog: ModelCatalog, state: RolloutState, *, bucket: str) -> Rollout:
    """Make the challenger the single (champion) variant of the endpoint (its requests captured when the catalog
    monitors the model)."""
    rollout, claim = state.rollout, state.claim
    settings = rollout_settings(catalog)
    endpoint, _, challenger_variant = _variants(rollout)
    challenger_model = required(rollout.challenger_model, "$.rollout.challenger_model")
    final_config = final_endpoint_config_name(claim.model, claim.release_id)
    _create_if_absent(
        sagemaker.create_endpoint_config,
        sagemaker.describe_endpoint_config,
        EndpointConfigName=final_config,
        ProductionVariants=[
            {
                "VariantName": challenger_variant,
                "ModelName": challenger_model,
                "InstanceType": settings.instance_type,
                "InitialInstanceCount": settings.initial_instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
        **_capture(catalog, bucket),
    )
    sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=final_config)
    return rollout.model_copy(
        update={
            "action": RolloutAction.WAIT_ENDPOINT,
            "then": RolloutAction.DONE,
            "expected_config": final_config,
            "final_config": final_config,
            "reason": f"challenger {challenger_variant} is the endpoint's only variant",
            "weights": {challenger_variant: 1.0},
            "polls": 0,
        }
    )


def retire_champion(sagemaker: Any, rollout: Rollout) -> Rollout:
    """Once the endpoint serves the new champion alone, delete the A/B endpoint config the rollout used.

    The old champion's model and endpoint config are kept: they are what Rollback (if publishing fails) and an
    operator's rollback to the previous release put back on the endpoint."""
    if rollout.action != RolloutAction.DONE:
        return rollout
    for config in (rollout.rollout_config, rollout.shadow_config):
        if config:
            _delete_if_present(sagemaker.delete_endpoint_config, EndpointConfigName=config)
    kept = f"{rollout.champion_model} / {rollout.original_config}"
    return rollout.model_copy(
        update={"reason": f"{rollout.reason}; A/B config deleted, previous champion kept for rollback ({kept})"}
    )


def _delete_if_present(delete: Any, **request: Any) -> None:
    try:
        delete(**request)
    except ClientError as error:
        if "Could not find" not in str(error):
            raise
