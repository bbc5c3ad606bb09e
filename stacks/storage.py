"""Where promotions keep state: the config bucket (production config, archive, decision reports) and the table
(idempotency claims, per-model locks, approval tokens, audit trail)."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from promotion.contract.names import ARCHIVE_PREFIX, REPORTS_PREFIX, capture_prefix
from stacks.nag import acknowledge

TTL_ATTRIBUTE = "expires_at"


class PromotionStorage(Construct):
    """The versioned, encrypted, TLS-only config bucket (with its access-log bucket) and the promotion table."""

    def __init__(
        self, scope: Construct, construct_id: str, *, capture_retention_days: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        # SageMaker's data capture of each monitored model's requests: kept for its catalog's retention, then deleted
        # (requests are customers' data; the drift checks read only the last window).
        capture_rules = [
            s3.LifecycleRule(
                id=f"capture-{model_id}",
                prefix=f"{capture_prefix(model_id)}/",
                expiration=cdk.Duration.days(days),
                noncurrent_version_expiration=cdk.Duration.days(1),
            )
            for model_id, days in sorted((capture_retention_days or {}).items())
        ]

        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=cdk.Duration.days(365),
                    noncurrent_version_expiration=cdk.Duration.days(30),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This is the server access log bucket of the config bucket; logging it into itself would loop.",
        )

        self.config_bucket = s3.Bucket(
            self,
            "ConfigBucket",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="config-bucket/",
            lifecycle_rules=[
                # Archived releases are what rollback restores: keep current versions, age them to IA.
                s3.LifecycleRule(
                    id="archive",
                    prefix=ARCHIVE_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=cdk.Duration.days(90)
                        )
                    ],
                    noncurrent_version_expiration=cdk.Duration.days(365),
                ),
                s3.LifecycleRule(
                    id="reports",
                    prefix=REPORTS_PREFIX,
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=cdk.Duration.days(90)
                        )
                    ],
                    noncurrent_version_expiration=cdk.Duration.days(365),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)
                ),
                *capture_rules,
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        self.table = dynamodb.Table(
            self,
            "PromotionTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=TTL_ATTRIBUTE,
            # The audit trail outlives the stack.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
