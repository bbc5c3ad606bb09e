"""Reading production as it is now: the model's Parameter Store values and its config object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from promotion.contract.catalog import ModelCatalog
from promotion.core.errors import aws_error_code, aws_error_message


@dataclass(frozen=True)
class ConfigObject:
    """The production config's exact bytes and S3 version, or `body is None` when there is none."""

    body: bytes | None
    version_id: str | None = None


@dataclass(frozen=True)
class StoredParameter:
    value: str
    type: str


def read_parameters(ssm: Any, catalog: ModelCatalog) -> dict[str, StoredParameter]:
    """Every parameter under the model's prefix (not only the schema's), so a restore can delete extras."""
    found: dict[str, StoredParameter] = {}
    paginator = ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=catalog.parameter_store.prefix, Recursive=True, WithDecryption=False):
        for parameter in page.get("Parameters", []):
            found[parameter["Name"]] = StoredParameter(value=parameter["Value"], type=parameter["Type"])
    return found


def read_config(s3: Any, bucket: str, key: str) -> ConfigObject:
    """The current config object, or an empty ConfigObject when the key does not exist."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if aws_error_code(error) == "NoSuchKey":  # GetObject names it (HeadObject would answer a bare 404)
            return ConfigObject(body=None)
        raise
    return ConfigObject(body=response["Body"].read(), version_id=response.get("VersionId"))


@dataclass(frozen=True)
class EndpointState:
    """Which endpoint config the model's endpoint serves and each variant's current weight."""

    name: str
    config_name: str
    weights: dict[str, float]


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist (SageMaker answers ValidationException)."""
    try:
        return dict(sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as error:
        if aws_error_code(error) == "ValidationException" and "Could not find" in aws_error_message(error):
            return None
        raise


def served_weights(endpoint: dict[str, Any]) -> dict[str, float]:
    """Variant -> the weight it serves with now (`CurrentWeight`; `DesiredWeight` is only what was asked). Both
    are optional in DescribeEndpoint's answer: an endpoint still being created lists no variants, and a variant
    SageMaker reports without a current weight serves nothing yet."""
    return {v["VariantName"]: float(v.get("CurrentWeight", 0.0)) for v in endpoint.get("ProductionVariants", [])}


def read_endpoint(sagemaker: Any, catalog: ModelCatalog) -> EndpointState | None:
    """The model's production endpoint, or None when the catalog has no rollout or the endpoint does not exist."""
    if catalog.rollout is None or sagemaker is None:
        return None
    endpoint = describe_endpoint(sagemaker, catalog.rollout.endpoint_name)
    if endpoint is None:
        return None
    return EndpointState(
        name=catalog.rollout.endpoint_name,
        config_name=endpoint["EndpointConfigName"],
        weights=served_weights(endpoint),
    )
