"""Least privilege: own roles, no managed policies, no wildcard actions, resources scoped by the catalogs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import SECOND_MODEL, Synth, as_list, flat, function_role, machine, role_statements

pytestmark = pytest.mark.xdist_group("infra")

# Actions that support no resource-level permissions; the only ones allowed on Resource "*".
UNSCOPED_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "ecr:GetAuthorizationToken",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
MODELS = ("fraud-detection", SECOND_MODEL)
PARAMETER_WRITERS = ("write_parameters", "rollback", "rollback_request")
PARAMETER_READERS = ("backup_production", *PARAMETER_WRITERS)


def all_statements(synth: Synth) -> list[dict[str, Any]]:
    statements = []
    for resource in synth.template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            statements.extend(props["PolicyDocument"]["Statement"])
        elif resource["Type"] == "AWS::IAM::Role":
            statements.extend(s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"])
    return statements


def granted(statements: list[dict[str, Any]], action: str) -> list[str]:
    """Flattened resources on which `action` is allowed."""
    return [
        flat(resource)
        for s in statements
        if s["Effect"] == "Allow" and action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def step_statements(synth: Synth, functions_by_step: dict[str, str], step: str) -> list[dict[str, Any]]:
    return role_statements(synth, function_role(synth, functions_by_step[step]))


def test_no_wildcard_actions_anywhere(synth: Synth) -> None:
    """No allow has a wildcard action (the chat channels' guardrail denies everything: that is its point)."""
    statements = all_statements(synth)
    assert len(statements) > 50
    for statement in statements:
        if statement["Effect"] == "Deny":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*") and "*" not in action, statement


def test_resource_star_only_for_actions_without_resource_scoping(synth: Synth) -> None:
    for statement in all_statements(synth):
        if "*" in as_list(statement["Resource"]) and statement["Effect"] == "Allow":
            assert set(as_list(statement["Action"])) <= UNSCOPED_ACTIONS, statement


def test_put_metric_data_is_limited_to_a_namespace(synth: Synth) -> None:
    for statement in all_statements(synth):
        if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
            assert statement["Condition"]["StringEquals"]["cloudwatch:namespace"] in (
                "ModelPromotion",
                "/aws/sagemaker/TrainingJobs",
            )


def test_no_aws_managed_policies_and_one_role_per_function(synth: Synth, functions_by_step: dict[str, str]) -> None:
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id
    roles = [function_role(synth, logical_id) for logical_id in functions_by_step.values()]
    assert len(roles) == len(set(roles)) == len(functions_by_step) == 24


def test_pass_role_only_for_the_training_role_to_sagemaker(synth: Synth, functions_by_step: dict[str, str]) -> None:
    passers = []
    # Monitoring passes the monitored model's roles only (churn is not monitored): its drift checks run with the
    # pipeline role, its retraining with the tuning role.
    monitoring = {"start_drift_checks": ["<TrainingFraudDetection"], "act_on_drift_check": ["<TuningFraudDetection"]}
    for step, function in functions_by_step.items():
        for statement in step_statements(synth, functions_by_step, step):
            if "iam:PassRole" in as_list(statement["Action"]):
                passers.append(step)
                passed = sorted(flat(role) for role in as_list(statement["Resource"]))
                # each model's pipeline role (its jobs and endpoint model), never a tuning role but drift's retraining
                expected = monitoring.get(step, ["<TrainingChurn", "<TrainingFraudDetection"])
                assert [role.split("Role", 1)[0] for role in passed] == expected, step
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}, (
                    function
                )
    # PromoteChallenger reuses the challenger model DeployChallenger created: it passes no role (the IAM survey).
    assert sorted(passers) == [
        "act_on_drift_check",
        "check_data_quality",
        "compare_with_champion",
        "deploy_challenger",
        "start_drift_checks",
        "trigger_pipeline",
    ]
    for statement in all_statements(synth):
        if "iam:PassRole" in as_list(statement["Action"]):
            assert "Condition" in statement


def test_each_catalog_prefix_reaches_exactly_the_parameter_roles(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    for step in functions_by_step:
        statements = step_statements(synth, functions_by_step, step)
        writes = granted(statements, "ssm:PutParameter")
        reads = granted(statements, "ssm:GetParametersByPath")
        for model in MODELS:
            has_write = any(r.endswith(f":parameter/{model}/hyperparameters/*") for r in writes)
            has_read = any(r.endswith(f":parameter/{model}/hyperparameters") for r in reads)
            assert has_write == (step in PARAMETER_WRITERS), (step, model)
            assert has_read == (step in PARAMETER_READERS), (step, model)
        assert all(":parameter/" in r and r.endswith("/hyperparameters/*") for r in writes), step


def test_config_objects_and_prefixes_are_scoped_per_model(synth: Synth, functions_by_step: dict[str, str]) -> None:
    write_config = granted(step_statements(synth, functions_by_step, "write_config"), "s3:PutObject")
    bucket = next(r.split("/")[0] for r in write_config)
    assert sorted(write_config) == sorted(
        [
            f"{bucket}/production-model-config.yaml",
            f"{bucket}/{SECOND_MODEL}-model-config.yaml",
            f"{bucket}/archive/fraud-detection/*/promoted-config.yaml",
            f"{bucket}/archive/{SECOND_MODEL}/*/promoted-config.yaml",
        ]
    )
    # Restores trust the backup records: only BackupProduction writes under archive/ beyond promoted configs.
    for step in functions_by_step:
        archive_writes = [
            r
            for r in granted(step_statements(synth, functions_by_step, step), "s3:PutObject")
            if "/archive/" in r and not r.endswith("/promoted-config.yaml")
        ]
        assert bool(archive_writes) == (step == "backup_production"), (step, archive_writes)
    reports = granted(step_statements(synth, functions_by_step, "publish_result"), "s3:PutObject")
    assert sorted(reports) == sorted(f"{bucket}/reports/{model}/*" for model in MODELS)


def test_training_jobs_are_scoped_by_model_id(synth: Synth, functions_by_step: dict[str, str]) -> None:
    statements = step_statements(synth, functions_by_step, "trigger_pipeline")
    jobs = granted(statements, "sagemaker:CreateTrainingJob")
    assert sorted(j.rsplit(":", 1)[1] for j in jobs) == sorted(f"training-job/{model}-*" for model in MODELS)
    assert granted(statements, "sagemaker:AddTags") == jobs
    describe = granted(step_statements(synth, functions_by_step, "validate_candidate"), "sagemaker:DescribeTrainingJob")
    assert any(r.endswith(":training-job/*") for r in describe)
    tuning = granted(
        step_statements(synth, functions_by_step, "validate_candidate"), "sagemaker:DescribeHyperParameterTuningJob"
    )
    assert [r.rsplit(":", 1)[1] for r in tuning] == ["hyper-parameter-tuning-job/*"]


# Who may complete a waiting task: the approval path, and the steps that wait for SageMaker with the function that
# takes SageMaker's events (promotion.jobs.callbacks). Only the approval path heartbeats.
TASK_ANSWERERS = {
    "approval_decision",
    "check_data_quality",
    "trigger_pipeline",
    "compare_with_champion",
    "deploy_challenger",
    "shift_traffic",
    "promote_challenger",
    "resume_waiting_step",
}
# Holds of a rollout are only ever answered with SendTaskSuccess (the operator's decision is the output): by the
# operator control function, and by AwaitOperator itself when a request came in as it began to hold.
HOLD_ANSWERERS = {"operator_control", "await_operator"}


def test_only_the_waits_answer_tasks_and_only_the_promotion_machines(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    name = machine(synth)["Properties"]["StateMachineName"]
    promotion_machine = [f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:{name}"]
    for step in functions_by_step:
        statements = step_statements(synth, functions_by_step, step)
        expected = promotion_machine if step in TASK_ANSWERERS else []
        succeeds = promotion_machine if step in TASK_ANSWERERS | HOLD_ANSWERERS else []
        assert granted(statements, "states:SendTaskSuccess") == succeeds, step
        assert granted(statements, "states:SendTaskFailure") == expected, step
        heartbeat = promotion_machine if step == "approval_decision" else []
        assert granted(statements, "states:SendTaskHeartbeat") == heartbeat, step


def test_events_and_notifications_only_where_the_contract_says(synth: Synth, functions_by_step: dict[str, str]) -> None:
    for step in functions_by_step:
        statements = step_statements(synth, functions_by_step, step)
        put_events = granted(statements, "events:PutEvents")
        publish = granted(statements, "sns:Publish")
        assert bool(put_events) == (step in ("await_approval", "publish_result")), step
        assert bool(publish) == (
            step in ("await_approval", "await_operator", "publish_result", "act_on_drift_check")
        ), step
        assert all(r.startswith("<ProductBus") for r in put_events)
        if publish:  # the topic is KMS-encrypted: publishers need its key
            assert granted(statements, "kms:GenerateDataKey") == granted(statements, "kms:Decrypt")


def job_role(synth: Synth, prefix: str) -> tuple[str, list[dict[str, Any]]]:
    (role_id,) = [k for k in synth.resources("AWS::IAM::Role") if k.startswith(prefix) and "Role" in k]
    role = synth.template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    return role_id, role_statements(synth, role_id)


@pytest.mark.parametrize("model", ["fraud-detection", "churn"])
def test_each_models_pipeline_role_reaches_only_that_models_data_artifacts_and_reports(
    synth: Synth, model: str
) -> None:
    """One pipeline role per model: its comparison job cannot write a report of another model (the comparison's
    check trusts the report), nor read or write another model's artifacts; as the endpoint model's role it reads
    only its own model's pinned release artifacts."""
    name = "".join(part.capitalize() for part in model.split("-"))
    _, statements = job_role(synth, f"Training{name}")
    # A monitored model's endpoint model writes its captured requests (SageMaker's data capture, with this role),
    # and its drift checks read them back; churn is not monitored.
    captured = [r for r in granted(statements, "s3:GetObject") if "/capture/" in r]
    assert captured == [r for r in granted(statements, "s3:PutObject") if "/capture/" in r]
    if model == "fraud-detection":
        (capture,) = captured
        assert capture.startswith("<StorageConfigBucket") and capture.endswith(f".Arn>/capture/{model}/*")
    else:
        assert captured == []
    statements = [s for s in statements if s.get("Sid") != "CaptureRequests"]
    reads = sorted(granted(statements, "s3:GetObject"))
    # the champion release's training data profile (the data-quality job's reference), then the pinned artifacts
    releases, profiles, *data = reads
    assert profiles.startswith("<StorageConfigBucket") and profiles.endswith(
        f".Arn>/reports/{model}/*/data-quality/profile.json"
    )
    assert releases.startswith("<StorageConfigBucket") and releases.endswith(f".Arn>/releases/{model}/*")
    assert data == sorted(
        [f"arn:<AWS::Partition>:s3:::{model}-data/{prefix}/*" for prefix in ("train", "validation", "holdout")]
        + [f"arn:<AWS::Partition>:s3:::{model}-models/*"]
    )
    writes = sorted(granted(statements, "s3:PutObject"))
    assert len(writes) == 2, writes
    assert writes[0].startswith("<StorageConfigBucket") and writes[0].endswith(f".Arn>/reports/{model}/*")
    assert writes[1] == f"arn:<AWS::Partition>:s3:::{model}-models/production/*"


@pytest.mark.parametrize("model", ["fraud-detection", "churn"])
def test_each_models_tuning_role_writes_only_tuning_outputs(synth: Synth, model: str) -> None:
    name = "".join(part.capitalize() for part in model.split("-"))
    _, statements = job_role(synth, f"Tuning{name}")
    assert sorted(granted(statements, "s3:GetObject")) == sorted(
        f"arn:<AWS::Partition>:s3:::{model}-data/{prefix}/*" for prefix in ("train", "validation")
    )
    assert granted(statements, "s3:PutObject") == [f"arn:<AWS::Partition>:s3:::{model}-models/tuning/*"]
    assert granted(statements, "logs:PutLogEvents") == [
        "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:log-stream:*"
    ]


def test_training_role_reads_data_writes_output_of_its_catalog(synth: Synth) -> None:
    _, statements = job_role(synth, "TrainingFraudDetection")
    assert granted(statements, "logs:PutLogEvents") == [
        "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/TrainingJobs:log-stream:*",
        "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws/sagemaker/ProcessingJobs:log-stream:*",
    ]
    # The jobs and the endpoint run the stack's job image: pulled from the bootstrap's container-assets repository
    # of the deployment's own region (SageMaker pulls from no other region), and from nowhere else.
    (repository,) = granted(statements, "ecr:BatchGetImage")
    assert repository == (
        "arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/"
        "cdk-hnb659fds-container-assets-<AWS::AccountId>-<AWS::Region>"
    )
    assert granted(statements, "ecr:GetAuthorizationToken") == ["*"]


def test_sagemaker_models_and_endpoint_configs_are_created_and_deleted_only_under_the_products_names(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """Not model/* or endpoint-config/*: a step can create or delete only names promotion.contract.names gives (for
    both catalogs), and only the rollback window's cleanup deletes a model (the previous champion's, once a rollback
    can no longer need it)."""
    statements = all_statements(synth)
    prefix = "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
    models = sorted(f"{prefix}model/{name}" for name in ("churn-model-*", "fraud-detection-model-*"))
    assert sorted(set(granted(statements, "sagemaker:CreateModel"))) == models
    assert sorted(set(granted(statements, "sagemaker:DeleteModel"))) == models
    deleters = [
        step
        for step in functions_by_step
        if granted(step_statements(synth, functions_by_step, step), "sagemaker:DeleteModel")
    ]
    assert deleters == ["clean_retired"]
    configs = sorted(f"{prefix}endpoint-config/{name}" for name in ("churn-config-*", "fraud-detectio*-config-*"))
    for action in ("sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig"):
        assert sorted(set(granted(statements, action))) == configs, action


def test_only_deploy_challenger_writes_release_artifacts_and_reads_the_training_outputs(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """The pinned copy the endpoint serves (releases/<model>/<release-id>/model.tar.gz) is written by one step."""
    writers = [
        step
        for step in functions_by_step
        if any("/releases/" in r for r in granted(step_statements(synth, functions_by_step, step), "s3:PutObject"))
    ]
    assert writers == ["deploy_challenger"]
    statements = step_statements(synth, functions_by_step, "deploy_challenger")
    assert sorted(r.split(".Arn>")[-1] for r in granted(statements, "s3:PutObject")) == [
        f"/releases/{model}/*" for model in sorted(MODELS)
    ]
    assert sorted(granted(statements, "s3:GetObject")) == [
        f"arn:<AWS::Partition>:s3:::{model}-models/production/*" for model in sorted(MODELS)
    ]


# What the people's managed policies (stacks/people.py) may do: the one change (a package's status or lifecycle in
# the Model Registry) and reads. `promote plan` adds reads only: the tuning and training jobs, the production
# parameters and the champion's config.
PEOPLE_ACTIONS = {
    "sagemaker:UpdateModelPackage",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:DescribeTrainingJob",
    "ssm:GetParametersByPath",
    "s3:GetObject",
    "s3:ListBucket",
    "dynamodb:Query",
    "dynamodb:Scan",
    "cloudformation:DescribeStacks",
}


@pytest.mark.parametrize("policy", ["ApproversPolicy", "OperatorsPolicy"])
def test_people_change_only_model_packages_and_otherwise_read(synth: Synth, policy: str) -> None:
    (document,) = [
        resource["Properties"]["PolicyDocument"]
        for logical_id, resource in synth.resources("AWS::IAM::ManagedPolicy").items()
        if policy in logical_id
    ]
    statements = document["Statement"]
    actions = {action for statement in statements for action in as_list(statement["Action"])}
    assert actions <= PEOPLE_ACTIONS, actions - PEOPLE_ACTIONS
    assert {"sagemaker:DescribeHyperParameterTuningJob", "ssm:GetParametersByPath"} <= actions  # promote plan
    updates = [s for s in statements if "sagemaker:UpdateModelPackage" in as_list(s["Action"])]
    assert all(":model-package/" in flat(resource) for s in updates for resource in as_list(s["Resource"]))
    (parameters,) = [s for s in statements if "ssm:GetParametersByPath" in as_list(s["Action"])]
    assert sorted(flat(r).rsplit(":parameter/", 1)[1] for r in as_list(parameters["Resource"])) == [
        "churn/hyperparameters",
        "fraud-detection/hyperparameters",
    ]
    reads = [s for s in statements if {"dynamodb:Query", "dynamodb:Scan"} & set(as_list(s["Action"]))]
    assert all("dynamodb:Attributes" in json.dumps(s.get("Condition", {})) for s in reads)  # never a task token


def test_only_publish_result_reaches_the_named_mlflow_server_and_only_for_a_record(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """churn's catalog names a SageMaker managed MLflow server: PublishResult finds its URL and writes one record's
    calls there; no other function reaches it, and no MLflow action is granted beyond that server."""
    from tests.infra.conftest import TRACKING_SERVER

    for step in functions_by_step:
        statements = step_statements(synth, functions_by_step, step)
        describe = granted(statements, "sagemaker:DescribeMlflowTrackingServer")
        mlflow = {
            action
            for statement in statements
            for action in as_list(statement["Action"])
            if action.startswith("sagemaker-mlflow:")
        }
        if step == "publish_result":
            assert describe == [TRACKING_SERVER]
            assert mlflow == {
                "sagemaker-mlflow:GetExperimentByName",
                "sagemaker-mlflow:CreateExperiment",
                "sagemaker-mlflow:SearchRuns",
                "sagemaker-mlflow:CreateRun",
                "sagemaker-mlflow:LogBatch",
                "sagemaker-mlflow:UpdateRun",
            }
            assert granted(statements, "sagemaker-mlflow:LogBatch") == [TRACKING_SERVER]
        else:
            assert (describe, mlflow) == ([], set()), step


def test_monitoring_starts_only_drift_checks_and_retraining_of_monitored_models(
    synth: Synth, functions_by_step: dict[str, str]
) -> None:
    """StartDriftChecks creates processing jobs named <model>-drift-* only; ActOnDriftCheck reads those and creates
    tuning jobs under the model's name prefix only; neither reaches churn, which is not monitored."""
    starts = step_statements(synth, functions_by_step, "start_drift_checks")
    assert granted(starts, "sagemaker:CreateProcessingJob") == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/fraud-detection-drift-*"
    ]
    assert granted(starts, "sagemaker:CreateHyperParameterTuningJob") == []
    acts = step_statements(synth, functions_by_step, "act_on_drift_check")
    assert granted(acts, "sagemaker:DescribeProcessingJob") == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:processing-job/fraud-detection-drift-*"
    ]
    assert granted(acts, "sagemaker:CreateHyperParameterTuningJob") == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:hyper-parameter-tuning-job/fraud-detection-*"
    ]
    assert granted(acts, "sagemaker:CreateProcessingJob") == []
    # the table only for the monitored models' retraining records (RETRAIN#<model>), by partition key
    (records,) = [s for s in acts if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert sorted(as_list(records["Action"])) == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
    assert records["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["RETRAIN#fraud-detection"]}}
    for step in functions_by_step:
        if step != "act_on_drift_check":
            assert (
                granted(step_statements(synth, functions_by_step, step), "sagemaker:CreateHyperParameterTuningJob")
                == []
            ), step
