"""The project's SageMaker job image (jobs/Dockerfile) as a CDK Docker image asset.

`cdk synth` only stages jobs/ into the cloud assembly (no Docker needed); `cdk deploy` builds the image for
linux/amd64 and pushes it to the CDK bootstrap's container-assets repository in the deployment's own account and
region, the only place SageMaker pulls from. Its URI (tagged with the content hash of jobs/) reaches the Lambdas as
JOB_IMAGE_URI, and the SageMaker execution role may pull it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

# Not part of the image: caches and notebook checkpoints. The directory holds only what the jobs run; the data
# scientists' toolkit lives outside it (toolkit/), so it needs no exclusion here.
EXCLUDED = ["**/__pycache__", "**/*.pyc", "**/.ipynb_checkpoints", "**/.mypy_cache", "**/.ruff_cache"]


class JobImage(Construct):
    """The image every SageMaker job and the endpoint of a catalog with `image: project` run."""

    def __init__(self, scope: Construct, construct_id: str, *, directory: Path) -> None:
        super().__init__(scope, construct_id)
        if not (directory / "Dockerfile").is_file():
            raise ValueError(f"the job image needs {directory}/Dockerfile")
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(directory),
            platform=ecr_assets.Platform.LINUX_AMD64,  # SageMaker's ml.* CPU instances are x86_64
            exclude=EXCLUDED,
        )
        self.image_uri = self.asset.image_uri

    def grant_pull(self, role: iam.IGrantable) -> None:
        """SageMaker pulls the image with the job's (or the model's) execution role."""
        self.asset.repository.grant_pull(role)
