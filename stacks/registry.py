"""The SageMaker Model Registry groups candidates are registered in: one package group per catalog model.

Approvers decide by changing a candidate package's status in its group (promotion.intake.registry); the group is the
resource their policy is scoped to, so the stack owns it."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from promotion.contract.catalog import ModelCatalog

# The nag acknowledgment of every grant on package_arns.
PACKAGES_REASON = (
    "Candidates of the catalogs' own package groups only (model-package/<group>/<version>); SageMaker numbers the "
    "versions as candidates are registered."
)


def _sagemaker_arn(resource: str) -> str:
    return f"arn:{cdk.Aws.PARTITION}:sagemaker:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:{resource}"


def _groups(catalogs: Mapping[str, ModelCatalog]) -> list[str]:
    return sorted({catalog.model_package_group for catalog in catalogs.values()})


def package_group_arns(catalogs: Mapping[str, ModelCatalog]) -> list[str]:
    """The catalogs' package groups, in both spellings when a name has capitals: the Service Authorization
    Reference gives the name as written, SageMaker's other ARNs write names in lower case."""
    names = sorted({name for group in _groups(catalogs) for name in (group, group.lower())})
    return [_sagemaker_arn(f"model-package-group/{name}") for name in names]


def package_arns(catalogs: Mapping[str, ModelCatalog]) -> list[str]:
    """Every package of the catalogs' groups: a versioned package is model-package/<group in lower case>/<version>."""
    return [_sagemaker_arn(f"model-package/{group.lower()}/*") for group in _groups(catalogs)]


class ModelRegistry(Construct):
    """`groups[model id]`: the model's `AWS::SageMaker::ModelPackageGroup`."""

    def __init__(self, scope: Construct, construct_id: str, *, catalogs: Mapping[str, ModelCatalog]) -> None:
        super().__init__(scope, construct_id)
        self.groups: dict[str, sagemaker.CfnModelPackageGroup] = {}
        for model_id, catalog in sorted(catalogs.items()):
            self.groups[model_id] = sagemaker.CfnModelPackageGroup(
                self,
                "".join(part.capitalize() for part in model_id.split("-")) + "Group",
                model_package_group_name=catalog.model_package_group,
                model_package_group_description=(
                    f"Candidates of {model_id} from its tuning jobs; approve one by setting its status to Approved "
                    "(approvers: the catalog's approval.approvers)"
                )[:1024],
            )
