"""The step functions: runtime, sizing, tracing, environment, log groups, and the two layers' contents."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from promotion.contract.catalog import load_catalogs, parse_catalog
from tests.infra.conftest import SECOND_MODEL, Synth

pytestmark = pytest.mark.xdist_group("infra")

STEPS = {
    "start_drift_checks",
    "act_on_drift_check",
    "claim_promotion",
    "validate_candidate",
    "await_approval",
    "check_data_quality",
    "backup_production",
    "write_parameters",
    "write_config",
    "trigger_pipeline",
    "compare_with_champion",
    "deploy_challenger",
    "shift_traffic",
    "evaluate_stage",
    "await_operator",
    "promote_challenger",
    "retire_champion",
    "rollback",
    "publish_result",
    "approval_decision",
    "rollback_request",
    "operator_control",
    "clean_retired",
    "resume_waiting_step",
}
ENVIRONMENT = {
    "CONFIG_BUCKET",
    "PROMOTION_TABLE",
    "JOB_IMAGE_URI",
    "CATALOG_DIR",
    "EVENT_BUS_NAME",
    "NOTIFICATION_TOPIC_ARN",
    "TRAINING_ROLE_ARNS",
    "TUNING_ROLE_ARNS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}


def props(synth: Synth, logical_id: str) -> dict[str, Any]:
    return dict(synth.template["Resources"][logical_id]["Properties"])


def test_one_function_per_step(functions_by_step: dict[str, str]) -> None:
    assert set(functions_by_step) == STEPS


def test_runtime_sizing_and_tracing(synth: Synth, functions_by_step: dict[str, str]) -> None:
    for step, logical_id in functions_by_step.items():
        function = props(synth, logical_id)
        assert function["Runtime"] == "python3.14", step
        assert function["Handler"] == "handler.handler", step
        assert function["Architectures"] == ["x86_64"], step
        assert function["MemorySize"] == 256, step
        assert function["Timeout"] == (
            120 if step in ("rollback", "rollback_request", "clean_retired", "start_drift_checks") else 60
        ), step
        assert function["TracingConfig"] == {"Mode": "Active"}, step


def test_environment_is_the_contracts(synth: Synth, functions_by_step: dict[str, str]) -> None:
    from promotion.core.observability import NAMESPACE, SERVICE  # the names the handlers' Powertools objects use

    for step, logical_id in functions_by_step.items():
        variables = props(synth, logical_id)["Environment"]["Variables"]
        assert set(variables) == ENVIRONMENT, step
        assert variables["CATALOG_DIR"] == "/opt/catalog"
        assert variables["POWERTOOLS_SERVICE_NAME"] == SERVICE
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE


def test_each_function_logs_to_its_own_log_group_with_retention(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    groups = []
    for step, logical_id in functions_by_step.items():
        group_id = props(synth, logical_id)["LoggingConfig"]["LogGroup"]["Ref"]
        assert props(synth, group_id)["RetentionInDays"] > 0, step
        groups.append(group_id)
    assert len(set(groups)) == len(groups)


def layer_dirs(synth: Synth) -> dict[str, Any]:
    """Layer description -> its staged asset directory."""
    return {
        layer["Properties"]["Description"]: synth.outdir / layer["Metadata"]["aws:asset:path"]
        for layer in synth.resources("AWS::Lambda::LayerVersion").values()
    }


def test_every_function_has_the_dependency_and_promotion_layers(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    layers = set(synth.resources("AWS::Lambda::LayerVersion"))
    assert len(layers) == 2
    for step, logical_id in functions_by_step.items():
        assert {ref["Ref"] for ref in props(synth, logical_id)["Layers"]} == layers, step
    for layer in synth.resources("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_promotion_layer_ships_the_package_and_the_validated_catalogs(synth: Synth) -> None:
    (promotion,) = [path for description, path in layer_dirs(synth).items() if "domain package" in description]
    package = promotion / "python" / "promotion"
    for concern in ("core", "contract", "claim", "intake", "production", "jobs", "rollout", "result"):
        assert (package / concern / "__init__.py").is_file(), concern
    assert (package / "contract" / "catalog.py").is_file()
    # What ships is what runs: the bench's price model and poll analysis stay in bench/, out of the layer.
    assert "def find_poll_loops" not in (package / "result" / "cost.py").read_text()
    assert not list(package.rglob("cost_model.py"))
    assert not list(promotion.rglob("__pycache__"))
    shipped = load_catalogs(promotion / "catalog")
    assert set(shipped) == {"fraud-detection", SECOND_MODEL}
    assert shipped == load_catalogs(synth.models_dir)
    # Re-dumped from the validated model (aliases kept, e.g. thresholds.pass), not copied.
    document = yaml.safe_load((promotion / "catalog" / "fraud-detection.yaml").read_text())
    assert "pass" in document["thresholds"]
    assert parse_catalog(document, "fraud-detection.yaml") == shipped["fraud-detection"]


def test_dependencies_layer_is_built_for_the_lambda_runtime(synth: Synth) -> None:
    (deps,) = [path for description, path in layer_dirs(synth).items() if "Third-party" in description]
    packages = {path.name for path in (deps / "python").iterdir()}
    assert {"pydantic", "pydantic_core", "yaml", "aws_lambda_powertools"} <= packages
    # Compiled wheels for CPython 3.14 on manylinux x86_64, whatever Python runs the synth.
    assert list((deps / "python" / "pydantic_core").glob("*cpython-314-x86_64-linux-gnu.so"))
    assert not (deps / ".requirements.sha256").exists()
