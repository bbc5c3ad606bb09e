"""The SageMaker execution roles, one set per catalog model: the production pipeline's jobs (training, the comparison,
the endpoint's model) and the data scientists' tuning jobs. A job of one model cannot read or write another's
production artifacts or reports, and a tuning job cannot write production artifacts or reports at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from promotion.contract.job_image import ECR_IMAGE, PROJECT_IMAGE
from promotion.contract.names import TRAINING_JOB_LOG_GROUP, TUNING_PREFIX
from stacks.nag import acknowledge, acknowledge_wildcard_resources

TRAINING_LOG_GROUP = TRAINING_JOB_LOG_GROUP
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> (`bucket`, `some/prefix/`)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class TrainingRole(Construct):
    """Role SageMaker assumes for a model's jobs. `purpose="pipeline"`: the jobs the promotion starts (the
    pipeline's training job, the comparison processing job, the endpoint's model): read the train/validation/holdout
    data and model artifacts, write the output prefix, log to /aws/sagemaker/*, pull the images. `purpose="tuning"`:
    the data scientists' tuning jobs: read the train/validation data, write only the artifact bucket's tuning/
    prefix, log, pull the training image."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalogs: Mapping[str, ModelCatalog],
        purpose: Literal["pipeline", "tuning"] = "pipeline",
    ) -> None:
        super().__init__(scope, construct_id)
        tuning = purpose == "tuning"
        models = ", ".join(sorted(catalogs))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=(
                f"Execution role of the SageMaker tuning jobs of {models}"
                if tuning
                else f"Execution role of the promotion pipeline's SageMaker jobs of {models}"
            )[:1000],
        )
        partition, region, account = cdk.Aws.PARTITION, cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID

        reads: dict[str, set[str]] = defaultdict(set)
        writes: dict[str, set[str]] = defaultdict(set)
        for catalog in catalogs.values():
            for uri in (catalog.training.train_data, catalog.training.validation_data):
                bucket, prefix = split_s3_uri(uri)
                reads[bucket].add(prefix)
            bucket, prefix = split_s3_uri(catalog.training.output_path)
            if tuning:
                writes[bucket].add(TUNING_PREFIX)
                continue
            writes[bucket].add(prefix)
            if catalog.comparison is not None:
                # The comparison job reads the holdout and both models' artifacts (the champion's may sit under the
                # tuning jobs' output, so the whole artifact bucket of the catalog is readable).
                holdout_bucket, holdout_prefix = split_s3_uri(catalog.comparison.holdout_data)
                reads[holdout_bucket].add(holdout_prefix)
                reads[bucket].add("")

        data_objects = [
            f"arn:{partition}:s3:::{b}/{p}*" for b, prefixes in sorted(reads.items()) for p in sorted(prefixes)
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(sid="ReadTrainingData", actions=["s3:GetObject"], resources=data_objects)
        )
        for index, (bucket, prefixes) in enumerate(sorted(reads.items())):
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"ListTrainingData{index}",
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{partition}:s3:::{bucket}"],
                    conditions={"StringLike": {"s3:prefix": sorted({f"{p}*" for p in prefixes})}},
                )
            )
        output_objects = [
            f"arn:{partition}:s3:::{b}/{p}*" for b, prefixes in sorted(writes.items()) for p in sorted(prefixes)
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteModelArtifacts", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=output_objects
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            data_objects + output_objects,
            "Training data and model artifacts are whole S3 prefixes named in the model catalogs "
            "(training.train_data/validation_data/output_path); objects under them are created by other jobs.",
        )

        log_groups = [
            f"arn:{partition}:logs:{region}:{account}:log-group:{group}"
            for group in ((TRAINING_LOG_GROUP,) if tuning else (TRAINING_LOG_GROUP, PROCESSING_LOG_GROUP))
        ]
        log_streams = [f"{group}:log-stream:*" for group in log_groups]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="TrainingLogGroup",
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=log_groups,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteTrainingLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=log_streams,
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            log_streams,
            "SageMaker names one log stream per job and instance (<job>/algo-N-<timestamp>) under "
            "/aws/sagemaker/TrainingJobs and /aws/sagemaker/ProcessingJobs; the stream names are not known in advance.",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PublishTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
            )
        )

        # Images other than the project's (whose pull is granted by stacks.job_image): ECR URIs with {region}.
        repositories = sorted(
            {
                f"arn:{partition}:ecr:{region}:{m['account']}:repository/{m['repository']}"
                for catalog in catalogs.values()
                for image in (
                    catalog.training.image,
                    catalog.comparison.image if catalog.comparison and not tuning else PROJECT_IMAGE,
                    catalog.rollout.serving_image if catalog.rollout and not tuning else PROJECT_IMAGE,
                )
                if image != PROJECT_IMAGE and (m := ECR_IMAGE.match(image))
            }
        )
        if repositories:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="PullCatalogImages",
                    actions=["ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer"],
                    resources=repositories,
                )
            )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only ecr:GetAuthorizationToken (granted with the job image's pull) and cloudwatch:PutMetricData "
            "(conditioned on the SageMaker training namespace) use Resource '*': neither action supports "
            "resource-level permissions.",
        )
