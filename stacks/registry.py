"""The SageMaker Model Registry groups candidates are registered in: one package group per catalog model.

Approvers decide by changing a candidate package's status in its group (promotion.registry); the group is the
resource their policy is scoped to, so the stack owns it."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from promotion.catalog import ModelCatalog


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
