"""From an API call to the IAM requests AWS authorizes for it: the action (IAM's name, which is not always the
operation's), every resource ARN the action is checked against, and the request's condition keys.

The ARN formats come from policy_sentry's copy of the IAM Service Authorization Reference (`arn_for`): this module
only says which API parameter fills which placeholder of the reference's format (`TableName`, `EndpointName`...).
Where AWS authorizes more than the operation's own action, that is written out with its source:

* S3: HeadObject is authorized as s3:GetObject; a VersionId makes it s3:GetObjectVersion (DeleteObject:
  s3:DeleteObjectVersion); ListObjects(V2) is s3:ListBucket with the s3:prefix key; ListObjectVersions is
  s3:ListBucketVersions; HeadBucket is s3:ListBucket (S3 API reference, "Permissions" of each operation).
* SageMaker: names in ARNs are lower case; Create* with Tags also needs sagemaker:AddTags; a role in the request
  (RoleArn, ExecutionRoleArn) needs iam:PassRole with iam:PassedToService = sagemaker.amazonaws.com; UpdateEndpoint
  and CreateEndpoint are checked on the endpoint and on the endpoint config (Service Authorization Reference).
* Step Functions: SendTaskSuccess/Failure/Heartbeat list no resource type in the reference, yet AWS checks a
  callback token against the state machine that issued it (its AccessDenied names `stateMachine:<name>`, and a
  grant on that ARN works: aws-cdk PR #8486, NOAA-OWP/hydrovis#837); modelled as AWS behaves.
* SNS to a topic with a customer managed key: the publisher also needs kms:GenerateDataKey and kms:Decrypt on it
  (SNS developer guide, "Encryption at rest"), with kms:ViaService = sns.<region>.amazonaws.com.

A call this module has no rule for raises `UnmappedOperation`: the local runtime refuses to guess, so a new call in
the product's code must be mapped (and so reviewed) before it runs locally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote

from local.iam.policy import ContextValue

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")
PASSED_TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}


class UnmappedOperation(LookupError):
    """An API call the local authorization has no IAM mapping for."""


@dataclass(frozen=True)
class Need:
    """One IAM request an API call makes: `action` on the resource the reference's format builds from `fields`
    (or `resource`, when the caller knows the ARN), with extra condition keys."""

    action: str
    fields: Mapping[str, str] = field(default_factory=dict)
    resource: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)


@cache
def _formats(action: str) -> tuple[str, ...]:
    from policy_sentry.querying.actions import get_action_data

    service, _, name = action.partition(":")
    data = get_action_data(service, name)
    entries = data.get(service) if isinstance(data, dict) else None
    if not entries:
        raise UnmappedOperation(f"{action} is not an action of the IAM Service Authorization Reference")
    return tuple(dict.fromkeys(str(entry["resource_arn_format"]) for entry in entries))


def action_exists(action: str) -> bool:
    try:
        _formats(action)
    except UnmappedOperation:
        return False
    return True


def arn_for(action: str, fields: Mapping[str, str], *, region: str, account: str) -> list[str]:
    """The resource ARNs the reference gives `action` whose placeholders `fields` fill: every such resource type is
    authorized; an action with no resource type (or none that fits) is authorized on `*`."""
    known = {"Partition": "aws", "Region": region, "Account": account, **fields}
    fitting: list[tuple[frozenset[str], str]] = []
    for template in _formats(action):
        if template == "*":
            continue
        names = frozenset(_PLACEHOLDER.findall(template))
        if all(name in known for name in names) and any(name in fields for name in names):
            fitting.append((names, template))
    # The most specific format wins over one whose placeholders it includes: a Query on an index is authorized on
    # the index (table/T/index/I), not on the table as well.
    arns = [
        _PLACEHOLDER.sub(lambda match: known[match.group(1)], template)
        for names, template in fitting
        if not any(names < other for other, _ in fitting)
    ]
    return arns or ["*"]


def _tags(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    tags = params.get("Tags") or []
    context: dict[str, ContextValue] = {f"aws:RequestTag/{t['Key']}": str(t["Value"]) for t in tags}
    if tags:
        context["aws:TagKeys"] = [str(t["Key"]) for t in tags]
    return context


def _s3_object(action: str, versioned_action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    def needs(p: Mapping[str, Any]) -> list[Need]:
        chosen = versioned_action if p.get("VersionId") else action
        return [Need(chosen, {"BucketName": p["Bucket"], "ObjectName": p["Key"]})]

    return needs


def _s3_list(action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    def needs(p: Mapping[str, Any]) -> list[Need]:
        context: dict[str, ContextValue] = {"s3:prefix": str(p.get("Prefix", ""))}
        if p.get("Delimiter"):
            context["s3:delimiter"] = str(p["Delimiter"])
        return [Need(action, {"BucketName": p["Bucket"]}, context=context)]

    return needs


def _s3_put(p: Mapping[str, Any]) -> list[Need]:
    needs = [Need("s3:PutObject", {"BucketName": p["Bucket"], "ObjectName": p["Key"]})]
    if p.get("Tagging"):
        needs.append(Need("s3:PutObjectTagging", {"BucketName": p["Bucket"], "ObjectName": p["Key"]}))
    return needs


def _s3_copy(p: Mapping[str, Any]) -> list[Need]:
    """CopyObject: read the source (s3:GetObject, s3:GetObjectVersion for a version), write the destination
    (S3 API reference, CopyObject, "Permissions")."""
    source = p["CopySource"]
    if isinstance(source, Mapping):
        bucket, key, version = str(source["Bucket"]), str(source["Key"]), source.get("VersionId")
    else:
        path, _, query = unquote(str(source)).lstrip("/").partition("?versionId=")
        (bucket, _, key), version = path.partition("/"), query or None
    read = "s3:GetObjectVersion" if version else "s3:GetObject"
    return [Need(read, {"BucketName": bucket, "ObjectName": key}), *_s3_put(p)]


def _ssm_one(action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    def needs(p: Mapping[str, Any]) -> list[Need]:
        return [Need(action, {"ParameterNameWithoutLeadingSlash": str(p["Name"]).lstrip("/")})]

    return needs


def _ssm_many(action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    def needs(p: Mapping[str, Any]) -> list[Need]:
        return [Need(action, {"ParameterNameWithoutLeadingSlash": str(n).lstrip("/")}) for n in p["Names"]]

    return needs


def _ssm_put(p: Mapping[str, Any]) -> list[Need]:
    fields = {"ParameterNameWithoutLeadingSlash": str(p["Name"]).lstrip("/")}
    needs = [Need("ssm:PutParameter", fields)]
    if p.get("Tags"):
        needs.append(Need("ssm:AddTagsToResource", fields, context=_tags(p)))
    return needs


def _ssm_by_path(p: Mapping[str, Any]) -> list[Need]:
    fields = {"ParameterNameWithoutLeadingSlash": str(p["Path"]).strip("/")}
    return [Need("ssm:GetParametersByPath", fields, context={"ssm:Recursive": str(bool(p.get("Recursive"))).lower()})]


def _projected(p: Mapping[str, Any]) -> list[str]:
    """The top-level attribute names a ProjectionExpression asks for (`#n` resolved through the names map)."""
    names = p.get("ExpressionAttributeNames") or {}
    found = []
    for part in str(p.get("ProjectionExpression") or "").split(","):
        token = part.strip().split(".", 1)[0].split("[", 1)[0]
        if token:
            found.append(str(names.get(token, token)))
    return found


def _table(action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    """A table (or index) action, with DynamoDB's fine-grained access keys: dynamodb:Select (the request's Select,
    else SPECIFIC_ATTRIBUTES with a projection and ALL_ATTRIBUTES without) and dynamodb:Attributes (the projected
    attribute names; absent without a projection, so a ForAllValues condition needs the Select condition too)."""

    def needs(p: Mapping[str, Any]) -> list[Need]:
        fields = {"TableName": str(p["TableName"])}
        if p.get("IndexName"):
            fields["IndexName"] = str(p["IndexName"])
        context: dict[str, ContextValue] = {}
        # dynamodb:LeadingKeys, the partition key value of an item request: the product's table's partition key is
        # `pk` (stacks/storage.py), the only table the runtime's IAM-checked callers touch.
        item = p.get("Key") or p.get("Item")
        partition = item.get(PARTITION_KEY) if isinstance(item, dict) else None
        if isinstance(partition, dict) and "S" in partition:
            context["dynamodb:LeadingKeys"] = [str(partition["S"])]
        if action in _READS:
            projected = _projected(p)
            context["dynamodb:Select"] = str(
                p.get("Select") or ("SPECIFIC_ATTRIBUTES" if projected else "ALL_ATTRIBUTES")
            )
            if projected:
                context["dynamodb:Attributes"] = projected
        return [Need(action, fields, context=context)]

    return needs


PARTITION_KEY = "pk"
_READS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:BatchGetItem"}


def _sagemaker(action: str, *names: tuple[str, str], tags: bool = False, role: str | None = None):  # type: ignore[no-untyped-def]
    """A SageMaker action on the resources named by the given (API parameter, reference placeholder) pairs."""

    def needs(p: Mapping[str, Any]) -> list[Need]:
        fields = {placeholder: str(p[param]).lower() for param, placeholder in names if p.get(param)}
        found = [Need(action, fields, context=_tags(p) if tags else {})]
        if tags and p.get("Tags"):  # the tags go on the resource created (the first one named)
            created = {names[0][1]: fields[names[0][1]]}
            found.append(Need("sagemaker:AddTags", created, context=_tags(p)))
        if role is not None and p.get(role):
            found.append(Need("iam:PassRole", resource=str(p[role]), context=PASSED_TO_SAGEMAKER))
        return found

    return needs


def _tuning_job(p: Mapping[str, Any]) -> list[Need]:
    """CreateHyperParameterTuningJob: the job (and its tags), and the training jobs' role passed to SageMaker."""
    found: list[Need] = _sagemaker(
        "sagemaker:CreateHyperParameterTuningJob",
        ("HyperParameterTuningJobName", "HyperParameterTuningJobName"),
        tags=True,
    )(p)
    for definition in [p.get("TrainingJobDefinition"), *(p.get("TrainingJobDefinitions") or [])]:
        if definition and definition.get("RoleArn"):
            found.append(Need("iam:PassRole", resource=str(definition["RoleArn"]), context=PASSED_TO_SAGEMAKER))
    return found


def _execution(action: str) -> Callable[[Mapping[str, Any]], list[Need]]:
    return lambda p: [Need(action, resource=str(p["executionArn"]))]


def _put_events(p: Mapping[str, Any]) -> list[Need]:
    needs = []
    for entry in p["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        context: dict[str, ContextValue] = {
            "events:source": str(entry.get("Source", "")),
            "events:detail-type": str(entry.get("DetailType", "")),
        }
        if bus.startswith("arn:"):
            needs.append(Need("events:PutEvents", resource=bus, context=context))
        else:
            needs.append(Need("events:PutEvents", {"EventBusName": bus}, context=context))
    return needs


# (botocore service name, operation) -> the IAM requests it makes.
RULES: dict[tuple[str, str], Callable[[Mapping[str, Any]], list[Need]]] = {
    ("s3", "GetObject"): _s3_object("s3:GetObject", "s3:GetObjectVersion"),
    ("s3", "HeadObject"): _s3_object("s3:GetObject", "s3:GetObjectVersion"),
    ("s3", "PutObject"): _s3_put,
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "DeleteObject"): _s3_object("s3:DeleteObject", "s3:DeleteObjectVersion"),
    ("s3", "ListObjectsV2"): _s3_list("s3:ListBucket"),
    ("s3", "ListObjects"): _s3_list("s3:ListBucket"),
    ("s3", "ListObjectVersions"): _s3_list("s3:ListBucketVersions"),
    ("s3", "HeadBucket"): lambda p: [Need("s3:ListBucket", {"BucketName": p["Bucket"]})],
    ("ssm", "GetParameter"): _ssm_one("ssm:GetParameter"),
    ("ssm", "GetParameterHistory"): _ssm_one("ssm:GetParameterHistory"),
    ("ssm", "DeleteParameter"): _ssm_one("ssm:DeleteParameter"),
    ("ssm", "GetParameters"): _ssm_many("ssm:GetParameters"),
    ("ssm", "DeleteParameters"): _ssm_many("ssm:DeleteParameters"),
    ("ssm", "GetParametersByPath"): _ssm_by_path,
    ("ssm", "PutParameter"): _ssm_put,
    ("dynamodb", "GetItem"): _table("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _table("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _table("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _table("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _table("dynamodb:Query"),
    ("dynamodb", "Scan"): _table("dynamodb:Scan"),
    ("sagemaker", "DescribeHyperParameterTuningJob"): _sagemaker(
        "sagemaker:DescribeHyperParameterTuningJob", ("HyperParameterTuningJobName", "HyperParameterTuningJobName")
    ),
    ("sagemaker", "DescribeTrainingJob"): _sagemaker(
        "sagemaker:DescribeTrainingJob", ("TrainingJobName", "TrainingJobName")
    ),
    ("sagemaker", "CreateTrainingJob"): _sagemaker(
        "sagemaker:CreateTrainingJob", ("TrainingJobName", "TrainingJobName"), tags=True, role="RoleArn"
    ),
    ("sagemaker", "StopTrainingJob"): _sagemaker("sagemaker:StopTrainingJob", ("TrainingJobName", "TrainingJobName")),
    ("sagemaker", "CreateProcessingJob"): _sagemaker(
        "sagemaker:CreateProcessingJob", ("ProcessingJobName", "ProcessingJobName"), tags=True, role="RoleArn"
    ),
    ("sagemaker", "CreateHyperParameterTuningJob"): _tuning_job,
    ("sagemaker", "DescribeMlflowTrackingServer"): _sagemaker(
        "sagemaker:DescribeMlflowTrackingServer", ("TrackingServerName", "MlflowTrackingServerName")
    ),
    ("sagemaker", "DescribeProcessingJob"): _sagemaker(
        "sagemaker:DescribeProcessingJob", ("ProcessingJobName", "ProcessingJobName")
    ),
    ("sagemaker", "CreateModel"): _sagemaker(
        "sagemaker:CreateModel", ("ModelName", "ModelName"), tags=True, role="ExecutionRoleArn"
    ),
    ("sagemaker", "DeleteModel"): _sagemaker("sagemaker:DeleteModel", ("ModelName", "ModelName")),
    ("sagemaker", "DescribeModel"): _sagemaker("sagemaker:DescribeModel", ("ModelName", "ModelName")),
    ("sagemaker", "CreateEndpointConfig"): _sagemaker(
        "sagemaker:CreateEndpointConfig", ("EndpointConfigName", "EndpointConfigName"), tags=True
    ),
    ("sagemaker", "DescribeEndpointConfig"): _sagemaker(
        "sagemaker:DescribeEndpointConfig", ("EndpointConfigName", "EndpointConfigName")
    ),
    ("sagemaker", "DeleteEndpointConfig"): _sagemaker(
        "sagemaker:DeleteEndpointConfig", ("EndpointConfigName", "EndpointConfigName")
    ),
    ("sagemaker", "DescribeEndpoint"): _sagemaker("sagemaker:DescribeEndpoint", ("EndpointName", "EndpointName")),
    ("sagemaker", "CreateEndpoint"): _sagemaker(
        "sagemaker:CreateEndpoint",
        ("EndpointName", "EndpointName"),
        ("EndpointConfigName", "EndpointConfigName"),
        tags=True,
    ),
    ("sagemaker", "UpdateEndpoint"): _sagemaker(
        "sagemaker:UpdateEndpoint", ("EndpointName", "EndpointName"), ("EndpointConfigName", "EndpointConfigName")
    ),
    ("sagemaker", "UpdateEndpointWeightsAndCapacities"): _sagemaker(
        "sagemaker:UpdateEndpointWeightsAndCapacities", ("EndpointName", "EndpointName")
    ),
    ("sagemaker", "DeleteEndpoint"): _sagemaker("sagemaker:DeleteEndpoint", ("EndpointName", "EndpointName")),
    ("sagemaker", "CreateModelPackage"): lambda p: [
        # Into a group: authorized on the group (its name lower case in the ARN); the version does not exist yet.
        Need("sagemaker:CreateModelPackage", {"ModelPackageGroupName": str(p["ModelPackageGroupName"]).lower()})
    ],
    ("sagemaker", "UpdateModelPackage"): lambda p: [
        Need("sagemaker:UpdateModelPackage", resource=_package_arn(str(p["ModelPackageArn"])))
    ],
    ("sagemaker", "DescribeModelPackage"): lambda p: [
        Need("sagemaker:DescribeModelPackage", resource=_package_arn(str(p["ModelPackageName"])))
    ],
    ("sagemaker", "CreateModelPackageGroup"): _sagemaker(
        "sagemaker:CreateModelPackageGroup", ("ModelPackageGroupName", "ModelPackageGroupName")
    ),
    # GetCallerIdentity needs no permission: AWS answers it even when an explicit deny covers it (STS API reference).
    ("sts", "GetCallerIdentity"): lambda p: [],
    ("events", "PutEvents"): _put_events,
    ("sns", "Publish"): lambda p: [Need("sns:Publish", resource=str(p["TopicArn"]))],
    ("sns", "Subscribe"): lambda p: [Need("sns:Subscribe", resource=str(p["TopicArn"]))],
    ("stepfunctions", "DescribeExecution"): _execution("states:DescribeExecution"),
    ("stepfunctions", "GetExecutionHistory"): _execution("states:GetExecutionHistory"),
    ("stepfunctions", "StartExecution"): lambda p: [Need("states:StartExecution", resource=str(p["stateMachineArn"]))],
    ("stepfunctions", "StopExecution"): _execution("states:StopExecution"),
    ("cloudwatch", "GetMetricData"): lambda p: [Need("cloudwatch:GetMetricData")],
    ("cloudwatch", "GetMetricStatistics"): lambda p: [Need("cloudwatch:GetMetricStatistics")],
    ("cloudwatch", "PutMetricData"): lambda p: [
        Need("cloudwatch:PutMetricData", context={"cloudwatch:namespace": str(p["Namespace"])})
    ],
    ("sqs", "SendMessage"): lambda p: [Need("sqs:SendMessage", resource=_queue_arn(str(p["QueueUrl"])))],
    ("lambda", "Invoke"): lambda p: [_invoke(p)],
}
# Task tokens: authorized against the issuing state machine, which only the runtime can tell (see module docstring).
TASK_TOKEN_OPERATIONS = {
    "SendTaskSuccess": "states:SendTaskSuccess",
    "SendTaskFailure": "states:SendTaskFailure",
    "SendTaskHeartbeat": "states:SendTaskHeartbeat",
}


def _invoke(p: Mapping[str, Any]) -> Need:
    """Invoke names a function by name or ARN, optionally qualified: the qualified ARN is what is authorized."""
    name = str(p["FunctionName"])
    qualifier = f":{p['Qualifier']}" if p.get("Qualifier") else ""
    if name.startswith("arn:"):
        return Need("lambda:InvokeFunction", resource=name + qualifier)
    return Need("lambda:InvokeFunction", {"FunctionName": name + qualifier})


def _package_arn(name_or_arn: str) -> str:
    """Model package calls take a name or an ARN; this product always passes the ARN (a versioned package has no
    name of its own), which is what is authorized."""
    if not name_or_arn.startswith("arn:"):
        raise UnmappedOperation(f"model package {name_or_arn!r}: the local mapping needs the package's ARN")
    return name_or_arn


def _queue_arn(url: str) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name>
    parts = url.rstrip("/").split("/")
    region = parts[2].split(".")[1]
    return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"


def needs_for(service: str, operation: str, params: Mapping[str, Any]) -> list[Need]:
    rule = RULES.get((service, operation))
    if rule is None:
        raise UnmappedOperation(
            f"the local runtime has no IAM mapping for {service}:{operation}; add it to local/iam/actions.py"
        )
    return rule(params)
