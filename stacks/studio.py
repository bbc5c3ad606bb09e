"""An optional SageMaker Studio domain for the data scientists, with their least-privilege execution role.

Not part of the default synth: `app.py` builds it only with the context `studio=true`
(`cdk synth -c studio=true`, or `CDK_CONTEXT_JSON='{"studio": true}' python app.py`). Synthesize it into its own
folder (`CDK_OUTDIR=cdk.out/studio`) so the local runtime's cdk.out keeps only the promotion stack.

The execution role may, and may only:
- read the catalogs' data (training.train_data, training.validation_data, comparison.holdout_data prefixes);
- write and read back tuning outputs under `s3://<models bucket>/tuning/` (the launcher's default output path);
  the production prefix (training.output_path) stays the promotion pipeline's own;
- read the promotion's objects of the catalog models in the config bucket (configs, archive/<model>/,
  reports/<model>/);
- read the production hyperparameters (ssm:GetParameter(s), GetParametersByPath under each model's prefix);
- see the catalogs' candidates in the Model Registry and decide on them (a decision counts only when the identity
  SageMaker records is one of the catalog's approvers);
- with the context `tuningRoleArn` (a stack output TuningRoleArn<Model>): launch, watch and stop tuning jobs tagged
  `promotion:model=<catalog id>` and pass that role to SageMaker;
- with the context `mlflowTrackingServerArn`: use that SageMaker managed MLflow tracking server.

Context: `busName` (the product bus), `configBucketName`, `studioVpcId`, `studioSubnetIds` (a list), `tuningRoleArn`,
`mlflowTrackingServerArn`, `studioDomainName`. Without a config bucket name, VPC or subnets the stack takes them as
CloudFormation parameters at deploy time. The domain is VPC-only (no direct internet access from the apps) and its
storage is encrypted with a customer managed key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from promotion.contract.catalog import ModelCatalog
from promotion.contract.events import MODEL_TAG
from promotion.contract.names import TUNING_PREFIX
from stacks.nag import acknowledge, acknowledge_wildcard_resources
from stacks.registry import PACKAGES_REASON, package_arns, package_group_arns
from stacks.storage import ARCHIVE_PREFIX, REPORTS_PREFIX
from stacks.training import split_s3_uri

DEFAULT_DOMAIN_NAME = "model-promotion-data-science"
# Studio's apps mount the domain's EFS volume (NFS) and talk to each other on the high ports, inside the group.
NFS_PORT = 2049
APP_PORTS = (8192, 65535)


class StudioExecutionRole(Construct):
    """The role Studio's apps (JupyterLab, code editor) run as: what a data scientist's notebook may do."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalogs: Mapping[str, ModelCatalog],
        bus_name: str,
        config_bucket_name: str,
        tuning_role_arn: str | None = None,
        mlflow_tracking_server_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Execution role of the data scientists' SageMaker Studio apps (promotion product)",
        )
        self._catalogs = dict(sorted(catalogs.items()))
        partition, region, account = cdk.Aws.PARTITION, cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID
        self._partition = partition

        data: dict[str, set[str]] = defaultdict(set)
        models: set[str] = set()
        for catalog in self._catalogs.values():
            uris = [catalog.training.train_data, catalog.training.validation_data]
            if catalog.comparison is not None:
                uris.append(catalog.comparison.holdout_data)
            for uri in uris:
                bucket, prefix = split_s3_uri(uri)
                data[bucket].add(prefix)
            models.add(split_s3_uri(catalog.training.output_path)[0])
        data_objects = self._read_prefixes("CatalogData", data)
        tuning_objects = [f"arn:{partition}:s3:::{bucket}/{TUNING_PREFIX}*" for bucket in sorted(models)]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteTuningOutputs",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=tuning_objects,
            )
        )
        self._list_prefixes("TuningOutputs", {bucket: {TUNING_PREFIX} for bucket in models})
        acknowledge_wildcard_resources(
            self.role,
            data_objects + tuning_objects,
            "Training, validation and holdout data and tuning outputs are whole S3 prefixes named in the model "
            "catalogs; the objects under them are written by other jobs and not known in advance.",
        )

        config_prefixes = {
            *(catalog.config.key for catalog in self._catalogs.values()),
            *(f"{prefix}{model}/" for prefix in (ARCHIVE_PREFIX, REPORTS_PREFIX) for model in self._catalogs),
        }
        config_objects = self._read_prefixes("PromotionRecords", {config_bucket_name: config_prefixes})
        acknowledge_wildcard_resources(
            self.role,
            config_objects,
            "The config bucket keeps one archive/<model>/ and reports/<model>/ prefix per release; the objects are "
            "written by the promotion flow, so they are granted per catalog model prefix.",
        )

        parameters = [
            f"arn:{partition}:ssm:{region}:{account}:parameter{path}"
            for catalog in self._catalogs.values()
            for path in (catalog.parameter_store.prefix, f"{catalog.parameter_store.prefix}/*")
        ]
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadProductionHyperparameters",
                actions=["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                resources=parameters,
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            parameters,
            "One parameter per hyperparameter under each model's Parameter Store prefix (catalog "
            "parameter_store.prefix); the names come from the catalog's schema and may grow.",
        )

        # Studio's Model Registry: see the catalogs' candidates and decide on them. A decision counts only when the
        # identity SageMaker records (this role, session "SageMaker", or a user profile's own execution role) is one
        # of the catalog's approvers.
        packages = package_arns(catalogs)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DecideOnCandidates",
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                    "sagemaker:ListModelPackages",
                ],
                resources=packages,
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="SeeCandidateGroups",
                actions=["sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"],
                resources=package_group_arns(catalogs),
            )
        )
        acknowledge_wildcard_resources(self.role, packages, PACKAGES_REASON)
        if tuning_role_arn:
            self._tuning_jobs(tuning_role_arn)
        if mlflow_tracking_server_arn:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseTrackingServer",
                    actions=["sagemaker-mlflow:*"],
                    resources=[mlflow_tracking_server_arn],
                )
            )
            acknowledge(
                self.role,
                "AwsSolutions-IAM5[Action::sagemaker-mlflow:*]",
                "Every sagemaker-mlflow action (log, search, read runs and artifacts) on the one tracking server "
                "named in the context; the MLflow client uses most of them and they touch nothing else.",
            )

    def _read_prefixes(self, name: str, prefixes: Mapping[str, set[str]]) -> list[str]:
        """GetObject under each prefix (a key without a trailing slash is one object) and ListBucket on them."""
        objects = sorted(
            f"arn:{self._partition}:s3:::{bucket}/{prefix}{'*' if prefix.endswith('/') or not prefix else ''}"
            for bucket, bucket_prefixes in prefixes.items()
            for prefix in bucket_prefixes
        )
        self.role.add_to_policy(iam.PolicyStatement(sid=f"Read{name}", actions=["s3:GetObject"], resources=objects))
        self._list_prefixes(name, prefixes)
        return objects

    def _list_prefixes(self, name: str, prefixes: Mapping[str, set[str]]) -> None:
        for index, (bucket, bucket_prefixes) in enumerate(sorted(prefixes.items())):
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"List{name}{index}",
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{self._partition}:s3:::{bucket}"],
                    conditions={"StringLike": {"s3:prefix": sorted(f"{p}*" for p in bucket_prefixes)}},
                )
            )

    def _tuning_jobs(self, tuning_role_arn: str) -> None:
        """Launch (promotion_toolkit.launcher), watch and stop tuning jobs of the catalog models only."""
        stack = cdk.Stack.of(self)
        jobs = stack.format_arn(
            service="sagemaker",
            resource="hyper-parameter-tuning-job",
            resource_name="*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        training_jobs = stack.format_arn(
            service="sagemaker",
            resource="training-job",
            resource_name="*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        model_ids = list(self._catalogs)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="LaunchCatalogTuningJobs",
                actions=["sagemaker:CreateHyperParameterTuningJob", "sagemaker:AddTags"],
                resources=[jobs],
                conditions={"StringEquals": {f"aws:RequestTag/{MODEL_TAG}": model_ids}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WatchCatalogTuningJobs",
                actions=[
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                ],
                resources=[jobs],
                conditions={"StringEquals": {f"aws:ResourceTag/{MODEL_TAG}": model_ids}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCatalogTrainingJobs",
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[training_jobs],
                conditions={"StringEquals": {f"aws:ResourceTag/{MODEL_TAG}": model_ids}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PassTuningRole",
                actions=["iam:PassRole"],
                resources=[tuning_role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            [jobs, training_jobs],
            f"Tuning job names are chosen at launch; every grant on them is conditioned on the {MODEL_TAG} tag naming "
            "a catalog model (request tag on create, resource tag after), and SageMaker copies the tuning job's tags "
            "to the training jobs it starts.",
        )


class StudioStack(cdk.Stack):
    """A VPC-only SageMaker Studio domain (IAM auth, storage under a customer managed key) and its execution role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalogs: Mapping[str, ModelCatalog],
        bus_name: str,
        config_bucket_name: str | None = None,
        vpc_id: str | None = None,
        subnet_ids: Sequence[str] | str | None = None,
        tuning_role_arn: str | None = None,
        mlflow_tracking_server_arn: str | None = None,
        domain_name: str = DEFAULT_DOMAIN_NAME,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        if not catalogs:
            raise ValueError("the Studio stack needs at least one model catalog")
        if config_bucket_name is None:
            config_bucket_name = cdk.CfnParameter(
                self,
                "ConfigBucketName",
                description="The promotion stack's config bucket (its ConfigBucketName output)",
            ).value_as_string
        if vpc_id is None:
            vpc_id = cdk.CfnParameter(
                self, "StudioVpcId", type="AWS::EC2::VPC::Id", description="VPC of the Studio domain"
            ).value_as_string
        if isinstance(subnet_ids, str):  # `cdk synth -c studioSubnetIds=subnet-a,subnet-b` gives one string
            subnet_ids = [subnet for subnet in subnet_ids.split(",") if subnet.strip()]
        if not subnet_ids:
            subnet_ids = cdk.CfnParameter(
                self,
                "StudioSubnetIds",
                type="List<AWS::EC2::Subnet::Id>",
                description="Private subnets of the Studio domain (with a route to the AWS APIs they use)",
            ).value_as_list

        self.execution = StudioExecutionRole(
            self,
            "Execution",
            catalogs=catalogs,
            bus_name=bus_name,
            config_bucket_name=config_bucket_name,
            tuning_role_arn=tuning_role_arn,
            mlflow_tracking_server_arn=mlflow_tracking_server_arn,
        )
        self.key = kms.Key(
            self,
            "StorageKey",
            description="Encrypts the Studio domain's EFS home folders and spaces",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.security_group = ec2.CfnSecurityGroup(
            self,
            "AppsSecurityGroup",
            group_description="Studio apps: NFS to the domain volume and app-to-app traffic inside this group only",
            vpc_id=vpc_id,
        )
        for name, (low, high) in (("Nfs", (NFS_PORT, NFS_PORT)), ("Apps", APP_PORTS)):
            ec2.CfnSecurityGroupIngress(
                self,
                f"{name}FromGroup",
                group_id=self.security_group.attr_group_id,
                source_security_group_id=self.security_group.attr_group_id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                description=f"{name} traffic between the group's own members",
            )
        groups = [self.security_group.attr_group_id]
        self.domain = sagemaker.CfnDomain(
            self,
            "Domain",
            domain_name=domain_name,
            auth_mode="IAM",
            app_network_access_type="VpcOnly",
            vpc_id=vpc_id,
            subnet_ids=list(subnet_ids),
            kms_key_id=self.key.key_arn,
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.execution.role.role_arn, security_groups=groups
            ),
            default_space_settings=sagemaker.CfnDomain.DefaultSpaceSettingsProperty(
                execution_role=self.execution.role.role_arn, security_groups=groups
            ),
        )
        for name, value, description in (
            ("DomainId", self.domain.attr_domain_id, "The Studio domain"),
            ("ExecutionRoleArn", self.execution.role.role_arn, "Execution role of the data scientists' apps"),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)
