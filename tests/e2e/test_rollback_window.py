"""The rollback window end to end: within the catalog's `rollout.rollback_window_hours` after a promotion, the
previous champion's model and endpoint config are kept and an operator's rollback restores them with one endpoint
update; after it, the hourly cleanup (the stack's scheduled rule, delivered as EventBridge would) deletes them, and a
rollback is refused before anything is written."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from local.runtime import LocalRuntime
from promotion.production.config import parse_config
from promotion.result.audit import read_audit_record
from tests.e2e.conftest import event
from tests.e2e.test_flood import held_runtime

MODEL = "fraud-detection"
WINDOW = timedelta(hours=72)  # models/fraud-detection.yaml: rollout.rollback_window_hours


def promoted(runtime: LocalRuntime) -> tuple[dict[str, Any], datetime, str, list[str]]:
    """A promotion over the seeded champion (on the held stack: the quick two-stage rollout, the catalog's 72-hour
    window): (production before, when it was promoted, the previous champion's endpoint config, its models)."""
    result = runtime.run(event(), seed=True)
    assert result.outcome == "PROMOTED", result.cause
    assert result.production_before is not None and result.production_after is not None
    release = parse_config(result.production_after.config or "").release_id
    audit = read_audit_record(runtime.clients.dynamodb, runtime.table_name, MODEL, release)
    assert audit is not None
    previous = str(result.production_before.endpoint_config)
    variants = runtime.clients.sagemaker.describe_endpoint_config(EndpointConfigName=previous)["ProductionVariants"]
    return result.production_before.model_dump(), audit.recorded_at, previous, [v["ModelName"] for v in variants]


def of_model(cleanup: dict[str, Any]) -> dict[str, Any]:
    """The cleanup's result for fraud-detection (the stack has other models)."""
    found: dict[str, Any] = next(one for one in cleanup["models"] if one["model"] == MODEL)
    return found


def config_exists(runtime: LocalRuntime, name: str) -> bool:
    return any(
        c["EndpointConfigName"] == name for c in runtime.clients.sagemaker.list_endpoint_configs()["EndpointConfigs"]
    )


def test_within_the_window_the_previous_champion_is_kept_and_a_rollback_restores_it(tmp_path: Path) -> None:
    with held_runtime(tmp_path) as runtime:
        before, at, previous, _ = promoted(runtime)
        (cleanup,) = runtime.fire_schedule("RetiredChampionCleanup", at + WINDOW - timedelta(minutes=1))
        kept = config_exists(runtime, previous)
        (rolled_back,) = runtime.request_rollback(MODEL, "FPR doubled")
        after = runtime.production_snapshot(MODEL).model_dump()
        # Rolled back, the endpoint serves the previous champion again: a later cleanup deletes none of it.
        (later,) = runtime.fire_schedule("RetiredChampionCleanup", at + WINDOW + timedelta(hours=5))
        still = config_exists(runtime, previous)
    assert of_model(cleanup)["deleted"] == [] and "kept for a rollback until" in of_model(cleanup)["reason"]
    assert kept
    assert rolled_back["status"] == "SUCCEEDED", rolled_back
    assert after == before  # parameters, config and the endpoint on the previous champion's config and weights
    assert of_model(later)["deleted"] == [] and still


def test_after_the_window_the_cleanup_deletes_it_and_a_rollback_is_refused(tmp_path: Path) -> None:
    with held_runtime(tmp_path) as runtime:
        _, at, previous, models = promoted(runtime)
        serving = runtime.production_snapshot(MODEL)
        (cleanup,) = runtime.fire_schedule("RetiredChampionCleanup", at + WINDOW + timedelta(minutes=1))
        gone = not config_exists(runtime, previous)
        left = {m["ModelName"] for m in runtime.clients.sagemaker.list_models()["Models"]}
        (again,) = runtime.fire_schedule("RetiredChampionCleanup", at + WINDOW + timedelta(hours=1))
        (refused,) = runtime.request_rollback(MODEL, "too late")
        after = runtime.production_snapshot(MODEL)
        status = runtime.clients.sagemaker.describe_endpoint(EndpointName="fraud-detection-prod")["EndpointStatus"]
    done = of_model(cleanup)
    assert status == "InService"
    assert previous in done["deleted"] and gone
    # The previous champion (a release the product named) is gone, config and model; what serves now is untouched.
    assert set(models) <= set(done["deleted"]) and not set(models) & left
    assert "kept" not in done["reason"]
    assert "already gone" in of_model(again)["reason"]
    assert refused["status"] == "FAILED" and refused["error"] == "RollbackRefused"
    assert f"({previous}) was deleted after the 72-hour rollback window" in refused["cause"]
    assert after == serving  # nothing written
