"""Building the stack's resources in moto from the synthesized template.

Every resource gets a deterministic, readable physical name (the template's own name property when it sets one,
else the logical id in lower case without CDK's hash suffix). Names and ARNs are computed first, for every
resource, so tokens resolve whatever order the template lists them in; then buckets, tables, topics, queues,
buses, log groups, parameters, state machines and rules are created through ordinary boto3 calls on moto.
IAM roles, policies and Lambda permissions are only named in moto; `local.iam` reads them from the template and
enforces them on every call. Lambda functions are
described, not created in moto: the local runtime invokes their handlers in process (see `local.lambdas`).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.errors import SetupError
from local.template import StackTemplate
from local.tokens import Physical, Resolver, TokenError

_CDK_HASH_SUFFIX = re.compile(r"[0-9A-F]{8}$")

# (name property, maximum length) per resource type; types not listed use the logical id and 64 characters.
_NAME_PROPERTY: dict[str, tuple[str, int]] = {
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Lambda::LayerVersion": ("LayerName", 140),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
    "AWS::IAM::Policy": ("PolicyName", 128),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::SSM::Parameter": ("Name", 1011),
    "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupName", 63),
}


class WorldError(SetupError):
    """The template asks for something the local world cannot build."""


@dataclass(frozen=True)
class FunctionSpec:
    """One `AWS::Lambda::Function` of the template, resolved: what the in-process runtime needs to invoke it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    memory_mb: int
    timeout_s: int
    role_arn: str | None = None  # the execution role the handler's AWS calls are authorized as
    log_group: str | None = None  # where the Lambda service writes the function's logs (with that role)
    tracing: bool = False  # active X-Ray tracing: the service sends trace segments with that role


@dataclass
class World:
    """The stack as it exists in moto: physical names, the resolver over them, and the resolved specs."""

    stack: StackTemplate
    account: str
    region: str
    physical: dict[str, Physical]
    resolver: Resolver
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # by logical id
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # state machine ARN -> resolved definition
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> type, for resources only named

    def state_machine_arn(self) -> str:
        """The promotion state machine: the only one, or the one the stack output StateMachineArn names (the
        product's other machine carries out operators' rollback requests)."""
        if len(self.state_machines) == 1:
            return next(iter(self.state_machines.values()))
        output = self.stack.body.get("Outputs", {}).get("StateMachineArn", {}).get("Value")
        logical_id = output.get("Ref") if isinstance(output, dict) else None
        if logical_id not in self.state_machines:
            raise WorldError(
                f"the stack has {len(self.state_machines)} state machines and no output StateMachineArn naming one"
            )
        return self.state_machines[logical_id]


def find_function(functions: dict[str, FunctionSpec], reference: str) -> FunctionSpec | None:
    """The function an invocation names: ARN (qualified or not) or function name."""
    name = reference.split(":function:", 1)[1] if ":function:" in reference else reference
    name = name.split(":", 1)[0]
    return next((spec for spec in functions.values() if spec.name == name), None)


def _derived_name(logical_id: str, max_length: int, taken: set[str]) -> str:
    """Lower-case logical id without CDK's 8-hex-digit hash suffix, unless that would collide."""
    trimmed = _CDK_HASH_SUFFIX.sub("", logical_id) if len(logical_id) > 8 else logical_id
    for candidate in (trimmed or logical_id, logical_id):
        name = re.sub(r"[^a-z0-9-]", "-", candidate.lower())[:max_length]
        if name not in taken:
            return name
    raise WorldError(f"cannot find a unique physical name for {logical_id}")


def _physical(resource_type: str, name: str, properties: dict[str, Any], account: str, region: str) -> Physical:
    """Ref value and attributes CloudFormation would give a resource of this type and name."""
    arn_prefix = f"arn:aws:{{}}:{region}:{account}"
    if resource_type == "AWS::S3::Bucket":
        return Physical(
            name,
            {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            },
        )
    if resource_type == "AWS::DynamoDB::Table":
        arn = f"{arn_prefix.format('dynamodb')}:table/{name}"
        return Physical(name, {"Arn": arn, "StreamArn": f"{arn}/stream/local"})
    if resource_type == "AWS::SNS::Topic":
        arn = f"{arn_prefix.format('sns')}:{name}"
        return Physical(arn, {"TopicArn": arn, "TopicName": name})
    if resource_type == "AWS::SQS::Queue":
        url = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
        return Physical(url, {"Arn": f"{arn_prefix.format('sqs')}:{name}", "QueueName": name, "QueueUrl": url})
    if resource_type == "AWS::Events::EventBus":
        return Physical(name, {"Arn": f"{arn_prefix.format('events')}:event-bus/{name}", "Name": name})
    if resource_type == "AWS::Events::Rule":
        bus = properties.get("EventBusName")
        bus_part = "" if bus in (None, "default") else f"{bus}/"
        return Physical(name, {"Arn": f"{arn_prefix.format('events')}:rule/{bus_part}{name}"})
    if resource_type == "AWS::StepFunctions::StateMachine":
        arn = f"{arn_prefix.format('states')}:stateMachine:{name}"
        return Physical(arn, {"Arn": arn, "Name": name})
    if resource_type == "AWS::Lambda::Function":
        return Physical(name, {"Arn": f"{arn_prefix.format('lambda')}:function:{name}"})
    if resource_type == "AWS::Lambda::LayerVersion":
        return Physical(f"{arn_prefix.format('lambda')}:layer:{name}:1")
    if resource_type == "AWS::IAM::Role":
        return Physical(name, {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": f"AROA{name.upper()[:16]}"})
    if resource_type == "AWS::IAM::ManagedPolicy":
        arn = f"arn:aws:iam::{account}:policy/{name}"
        return Physical(arn, {"PolicyArn": arn})
    if resource_type == "AWS::Logs::LogGroup":
        return Physical(name, {"Arn": f"{arn_prefix.format('logs')}:log-group:{name}:*"})
    if resource_type == "AWS::KMS::Key":
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{account}/{region}/{name}"))
        return Physical(key_id, {"Arn": f"{arn_prefix.format('kms')}:key/{key_id}", "KeyId": key_id})
    if resource_type == "AWS::SSM::Parameter":
        return Physical(
            name, {"Type": str(properties.get("Type", "String")), "Value": str(properties.get("Value", ""))}
        )
    if resource_type == "AWS::SageMaker::ModelPackageGroup":
        # SageMaker writes the name in lower case in the ARN.
        return Physical(
            name, {"ModelPackageGroupArn": f"{arn_prefix.format('sagemaker')}:model-package-group/{name.lower()}"}
        )
    service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "local"
    return Physical(name, {"Arn": f"{arn_prefix.format(service)}:{name}"})


def name_resources(stack: StackTemplate, account: str, region: str) -> dict[str, Physical]:
    """Physical names for every resource. Name properties may use tokens, so resolve them in passes."""
    physical: dict[str, Physical] = {}
    taken: set[str] = set()
    pending = dict(stack.resources)
    while pending:
        progressed = False
        resolver = Resolver(physical, account=account, region=region, stack_name=stack.name)
        for logical_id, resource in list(pending.items()):
            resource_type = resource.get("Type", "")
            properties = resource.get("Properties", {}) or {}
            name_property, max_length = _NAME_PROPERTY.get(resource_type, ("", 64))
            try:
                explicit = resolver.resolve(properties.get(name_property)) if name_property else None
                if resource_type == "AWS::Events::Rule" and "EventBusName" in properties:
                    properties = {**properties, "EventBusName": resolver.resolve(properties["EventBusName"])}
            except TokenError:
                continue
            if explicit:
                name = str(explicit)
            elif resource_type == "AWS::Logs::LogGroup":
                name = "/local/" + _derived_name(logical_id, max_length - 7, taken)
            else:
                name = _derived_name(logical_id, max_length, taken)
                if resource_type == "AWS::SQS::Queue" and str(properties.get("FifoQueue")).lower() == "true":
                    name = name[: max_length - 5] + ".fifo"
            taken.add(name)
            physical[logical_id] = _physical(resource_type, name, properties, account, region)
            del pending[logical_id]
            progressed = True
        if not progressed:
            raise WorldError(f"cannot name {', '.join(sorted(pending))}: their names depend on each other")
    return physical


class WorldBuilder:
    """Creates the template's resources in moto (through boto3 clients the caller made inside the mock)."""

    def __init__(self, stack: StackTemplate, clients: Any, *, account: str, region: str) -> None:
        self.stack = stack
        self.clients = clients
        physical = name_resources(stack, account, region)
        self.world = World(
            stack=stack,
            account=account,
            region=region,
            physical=physical,
            resolver=Resolver(physical, account=account, region=region, stack_name=stack.name),
        )

    def _name(self, logical_id: str) -> str:
        resource_type = self.stack.resources[logical_id]["Type"]
        physical = self.world.physical[logical_id]
        if resource_type in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"):
            return physical.attributes.get("TopicName") or physical.attributes["Name"]
        if resource_type == "AWS::SQS::Queue":
            return physical.attributes["QueueName"]
        return physical.ref

    def _properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.world.resolver.resolve(self.stack.resources[logical_id].get("Properties", {}))
        return properties or {}

    def build(self) -> World:
        creators = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::SQS::Queue": self._queue,
            "AWS::Events::EventBus": self._bus,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::SSM::Parameter": self._parameter,
            "AWS::SageMaker::ModelPackageGroup": self._package_group,
            "AWS::Lambda::Function": self._function,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::Events::Rule": self._rule,
        }
        # Rules last: their targets must exist. The rest in template order.
        order = [*creators][:-1]
        for resource_type in [*order, "AWS::Events::Rule"]:
            for logical_id in self.stack.of_type(resource_type):
                creators[resource_type](logical_id)
        for logical_id, resource in self.stack.resources.items():
            if resource.get("Type") not in creators:
                self.world.skipped[logical_id] = resource.get("Type", "")
        return self.world

    def _bucket(self, logical_id: str) -> None:
        props, name, s3 = self._properties(logical_id), self._name(logical_id), self.clients.s3
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            # CloudFormation says ServerSideEncryptionByDefault where the API says ApplyServerSideEncryptionByDefault.
            rules = [
                {("Apply" + k if k == "ServerSideEncryptionByDefault" else k): v for k, v in rule.items()}
                for rule in encryption
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=_booleans(props["PublicAccessBlockConfiguration"])
            )

    def _table(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        request: dict[str, Any] = {
            "TableName": self._name(logical_id),
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
        }
        if props.get("BillingMode") == "PAY_PER_REQUEST" or "ProvisionedThroughput" not in props:
            request["BillingMode"] = "PAY_PER_REQUEST"
        else:
            request["ProvisionedThroughput"] = _integers(props["ProvisionedThroughput"])
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                request[key] = [_integers(index) for index in props[key]]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        self.clients.dynamodb.create_table(**request)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            self.clients.dynamodb.update_time_to_live(
                TableName=request["TableName"], TimeToLiveSpecification=_booleans(ttl)
            )

    def _topic(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        attributes = {"FifoTopic": "true"} if str(props.get("FifoTopic")).lower() == "true" else {}
        self.clients.sns.create_topic(Name=self._name(logical_id), Attributes=attributes)

    def _queue(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        keys = ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout", "MessageRetentionPeriod")
        attributes = {key: str(props[key]).lower() for key in keys if key in props}
        self.clients.sqs.create_queue(QueueName=self._name(logical_id), Attributes=attributes)

    def _bus(self, logical_id: str) -> None:
        self.clients.events.create_event_bus(Name=self._name(logical_id))

    def _log_group(self, logical_id: str) -> None:
        self.clients.logs.create_log_group(logGroupName=self._name(logical_id))

    def _parameter(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        self.clients.ssm.put_parameter(
            Name=self._name(logical_id), Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
        )

    def _package_group(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        self.clients.sagemaker.create_model_package_group(
            ModelPackageGroupName=self._name(logical_id),
            ModelPackageGroupDescription=str(props.get("ModelPackageGroupDescription", "")),
        )

    def _function(self, logical_id: str) -> None:
        resource = self.stack.resources[logical_id]
        props = self._properties(logical_id)
        code_dir = self.stack.asset_dir(logical_id, resource.get("Properties", {}).get("Code"))
        if code_dir is None or not code_dir.is_dir():
            raise WorldError(f"{logical_id}: no staged code asset in {self.stack.assembly_dir} (inline code?)")
        layer_dirs = []
        for layer in props.get("Layers", []):
            layer_id = next((lid for lid, p in self.world.physical.items() if p.ref == layer), None)
            if layer_id is None:
                continue  # a public layer (e.g. Powertools): its packages come from the local virtual environment
            layer_props = self.stack.resources[layer_id].get("Properties", {})
            layer_dir = self.stack.asset_dir(layer_id, layer_props.get("Content"))
            if layer_dir is not None and layer_dir.is_dir():
                layer_dirs.append(layer_dir)
        physical = self.world.physical[logical_id]
        self.world.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=physical.ref,
            arn=physical.attributes["Arn"],
            handler=props.get("Handler", "handler.handler"),
            code_dir=code_dir,
            environment={k: str(v) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
            layer_dirs=tuple(layer_dirs),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            role_arn=str(props["Role"]) if props.get("Role") else None,
            log_group=str((props.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{physical.ref}"),
            tracing=(props.get("TracingConfig") or {}).get("Mode") == "Active",
        )

    def _state_machine(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        if "DefinitionString" in props:
            definition = str(props["DefinitionString"])
        elif "Definition" in props:
            definition = json.dumps(props["Definition"])
        else:
            raise WorldError(f"{logical_id}: only DefinitionString or Definition are supported locally")
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        arn = self.world.physical[logical_id].ref
        role_arn = props.get("RoleArn") or f"arn:aws:iam::{self.world.account}:role/local-state-machine"
        self.clients.stepfunctions.create_state_machine(
            name=self._name(logical_id),
            definition=definition,
            roleArn=role_arn,
            type=props.get("StateMachineType", "STANDARD"),
        )
        self.world.state_machines[logical_id] = arn
        self.world.definitions[arn] = json.loads(definition)

    def _rule(self, logical_id: str) -> None:
        props = self._properties(logical_id)
        name = self._name(logical_id)
        bus = props.get("EventBusName", "default")
        request: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = props["EventPattern"]
            request["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            request["ScheduleExpression"] = props["ScheduleExpression"]
        self.clients.events.put_rule(**request)
        if props.get("Targets"):
            self.clients.events.put_targets(Rule=name, EventBusName=bus, Targets=props["Targets"])


def _booleans(value: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation allows "true"/"false" strings where the API wants booleans."""
    return {
        k: (v.lower() == "true" if isinstance(v, str) and v.lower() in ("true", "false") else v)
        for k, v in value.items()
    }


def _integers(value: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation allows numeric strings in throughput settings where the API wants integers."""
    fixed: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            fixed[key] = _integers(item)
        elif isinstance(item, str) and item.isdigit():
            fixed[key] = int(item)
        else:
            fixed[key] = item
    return fixed
