"""The SageMaker Model Registry as AWS runs it, where moto 5.2.5 differs, while a local runtime runs.

* Who: moto records a fixed fake Studio user profile as CreatedBy/LastModifiedBy and no IAM identity. SageMaker
  records the principal it authenticated: `IamIdentity.Arn` is the caller's assumed-role session ARN
  (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) with its `PrincipalId` (API reference, UserContext and
  IamIdentity). Here it is the principal the local IAM enforcement says made the call (the account root when none).
* Update: moto's UpdateModelPackage clears the approval status, the approval description and the metadata the
  request leaves out, and replaces CustomerMetadataProperties wholesale. SageMaker changes only what the request
  names and adds/overwrites the named metadata keys (CustomerMetadataPropertiesToRemove removes keys).
* Idempotency: CreateModelPackage with a ClientToken already used in the group returns that package, not a second.
* GetCallerIdentity (STS) answers with the same principal (moto answers a fixed `user/moto`): `promote` prints who
  it decided as.
* Model lifecycle: moto 5.2.5 ignores `ModelLifeCycle` (SageMaker's staging construct: Stage, StageStatus,
  StageDescription) in UpdateModelPackage and never answers it in DescribeModelPackage. Here UpdateModelPackage keeps
  it, refused with SageMaker's ValidationException when Stage or StageStatus is missing or breaks the API's pattern
  (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`) or the description is over 1,024 characters, and DescribeModelPackage and the
  state change event carry it ("Get event notifications for ModelLifeCycle").
* Events: SageMaker puts a `SageMaker Model Package State Change` event on the account's default bus when a package
  is created or changed ("Events that Amazon SageMaker AI sends to Amazon EventBridge"); moto puts none. The event's
  detail is the package as DescribeModelPackage answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from local.hooks import Hooks

STATE_CHANGE = "SageMaker Model Package State Change"


@dataclass(frozen=True)
class RegistryBridge:
    """Who the current caller is (an STS assumed-role ARN, or None for the account owner)."""

    caller: Callable[[], tuple[str, str] | None]  # (role ARN, session) of the acting principal, or None


def _patch(originals: dict[str, Any]) -> None:
    from moto.sts.models import STSBackend

    originals["caller"] = STSBackend.get_caller_identity
    STSBackend.get_caller_identity = _caller_identity  # type: ignore[method-assign]
    originals["create"] = SageMakerModelBackend.create_model_package
    originals["update"] = SageMakerModelBackend.update_model_package
    SageMakerModelBackend.create_model_package = _create  # type: ignore[method-assign,assignment]
    SageMakerModelBackend.update_model_package = _update  # type: ignore[method-assign]
    originals["update_response"] = SageMakerResponse.update_model_package
    originals["package_response"] = ModelPackage.gen_response_object
    SageMakerResponse.update_model_package = _update_response  # type: ignore[method-assign]
    ModelPackage.gen_response_object = _package_response  # type: ignore[method-assign]


HOOKS: Hooks[RegistryBridge] = Hooks(_patch)
_ORIGINALS = HOOKS.originals


_LIFECYCLE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_REQUEST = threading.local()  # the ModelLifeCycle of the UpdateModelPackage request being answered


def _update_response(self: SageMakerResponse) -> Any:
    """moto's UpdateModelPackage, with the request's ModelLifeCycle handed to the backend (`_update`)."""
    _REQUEST.lifecycle = self._get_param("ModelLifeCycle") if HOOKS.current is not None else None
    try:
        return _ORIGINALS["update_response"](self)
    finally:
        _REQUEST.lifecycle = None


def _checked_lifecycle(lifecycle: dict[str, Any]) -> dict[str, str]:
    for name in ("Stage", "StageStatus"):
        value = lifecycle.get(name)
        if not isinstance(value, str) or not _LIFECYCLE_NAME.match(value):
            raise ValidationError(
                f"1 validation error detected: Value '{value}' at 'modelLifeCycle.{name[0].lower()}{name[1:]}' "
                "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
    description = lifecycle.get("StageDescription")
    if description is not None and len(str(description)) > 1024:
        raise ValidationError(
            "1 validation error detected: Value at 'modelLifeCycle.stageDescription' failed to satisfy constraint: "
            "Member must have length less than or equal to 1024"
        )
    return {name: str(value) for name, value in lifecycle.items() if value is not None}


def _package_response(self: ModelPackage) -> dict[str, Any]:
    response: dict[str, Any] = _ORIGINALS["package_response"](self)
    lifecycle = getattr(self, "model_life_cycle", None)
    if lifecycle:
        response["ModelLifeCycle"] = dict(lifecycle)
    return response


def _user_context(backend: SageMakerModelBackend, bridge: RegistryBridge) -> dict[str, Any]:
    caller = bridge.caller()
    if caller is None:
        return {"IamIdentity": {"Arn": f"arn:aws:iam::{backend.account_id}:root", "PrincipalId": backend.account_id}}
    return {"IamIdentity": _identity(backend.account_id, caller)}


def _caller_identity(self: Any, access_key_id: str, region: str) -> tuple[str, str, str]:
    bridge = HOOKS.current
    caller = bridge.caller() if bridge is not None else None
    if bridge is None or caller is None:
        return tuple(_ORIGINALS["caller"](self, access_key_id, region))
    account = caller[0].split(":")[4]
    identity = _identity(account, caller)
    return identity["PrincipalId"], identity["Arn"], account


def _identity(account: str, caller: tuple[str, str]) -> dict[str, str]:
    role_arn, session = caller
    role = role_arn.rsplit("/", 1)[-1]
    role_id = "AROA" + hashlib.sha256(role_arn.encode()).hexdigest()[:17].upper()
    return {"Arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "PrincipalId": f"{role_id}:{session}"}


def _emit(backend: SageMakerModelBackend, package: ModelPackage) -> None:
    detail = package.gen_response_object()
    events_backends[backend.account_id][backend.region_name].put_events(
        [
            {
                "Source": "aws.sagemaker",
                "DetailType": STATE_CHANGE,
                "Detail": json.dumps(detail, default=_json_default),
                "Resources": [package.arn],
                "EventBusName": "default",
            }
        ]
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)  # SageMaker's events carry epoch milliseconds
    return str(value)


def _create(self: SageMakerModelBackend, **request: Any) -> str:
    bridge = HOOKS.current
    if bridge is None:
        return str(_ORIGINALS["create"](self, **request))
    group, token = request.get("model_package_group_name"), request.get("client_token")
    if group and token:
        for package in self.model_packages.values():
            if package.model_package_group_name == group and package.client_token == token:
                return str(package.arn)
    arn = str(_ORIGINALS["create"](self, **request))
    package = self.model_packages[arn]
    package.created_by = _user_context(self, bridge)
    package.last_modified_by = package.created_by
    package.last_modified_time = package.creation_time
    _emit(self, package)
    return arn


def _update(
    self: SageMakerModelBackend,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str],
    additional_inference_specifications_to_add: list[Any] | None,
) -> str:
    bridge = HOOKS.current
    if bridge is None:
        return str(
            _ORIGINALS["update"](
                self,
                model_package_arn,
                model_approval_status,
                approval_description,
                customer_metadata_properties,
                customer_metadata_properties_to_remove,
                additional_inference_specifications_to_add,
            )
        )
    package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
    if package is None:  # moto's own refusal
        return str(_ORIGINALS["update"](self, model_package_arn, None, None, None, [], None))
    lifecycle = getattr(_REQUEST, "lifecycle", None)
    if lifecycle is not None:
        package.model_life_cycle = _checked_lifecycle(lifecycle)  # type: ignore[attr-defined]
    if model_approval_status is not None:
        package.set_model_approval_status(model_approval_status)
    if approval_description is not None:
        package.approval_description = approval_description
    if customer_metadata_properties:
        package.customer_metadata_properties = {
            **(package.customer_metadata_properties or {}),
            **customer_metadata_properties,
        }
    for key in customer_metadata_properties_to_remove or []:
        (package.customer_metadata_properties or {}).pop(key, None)
    if additional_inference_specifications_to_add:
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.last_modified_time = datetime.now(UTC)
    package.last_modified_by = _user_context(self, bridge)
    _emit(self, package)
    return str(package.arn)
