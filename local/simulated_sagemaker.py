"""SageMaker and simulated time in the local runtime: the endpoints and their callers (traffic), the jobs run
locally, SageMaker's state-change events, and the clock that moves to the next thing SageMaker has pending while an
execution waits for it (hours of rollout in milliseconds)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from local import endpoints, sagemaker_events, sagemaker_jobs
from local.live_stack import Clients

if TYPE_CHECKING:
    from local.iam.identities import Identities
    from promotion.contract.catalog import ModelCatalog


class SimulatedSageMaker:
    """The SageMaker side of one runtime: `activate` routes moto's SageMaker through it, `deactivate` undoes that."""

    def __init__(
        self,
        clients: Clients,
        iam: Identities | None,
        *,
        endpoint_names: list[str],
        scenario: str,
        traffic_seed: int,
        event_delivery: sagemaker_events.EventDelivery,
        jobs_dir: Path,
        cache_dir: Path,
        project_image: str | None,
    ) -> None:
        self.clients, self.iam = clients, iam
        self.event_delivery = event_delivery
        self.traffic = endpoints.TrafficSimulator(
            clients.sagemaker, clients.cloudwatch, endpoint_names, scenario, seed=traffic_seed
        )
        self.traffic.lifecycle.model_data_check = self.model_data_check
        self.traffic.lifecycle.on_change = sagemaker_events.endpoint_changed
        self.jobs = sagemaker_jobs.LocalJobs(
            clients.s3,
            jobs_dir,
            cache_dir=cache_dir,
            authorize=iam.authorize_job if iam is not None else None,
            side_effects=iam.job_side_effects if iam is not None else None,
            project_image=project_image,
        )
        self._advance_lock = threading.Lock()

    def activate(self) -> None:
        sagemaker_jobs.HOOKS.activate(self.jobs)
        sagemaker_events.HOOKS.activate(self.event_delivery)
        endpoints.HOOKS.activate(self.traffic)

    def deactivate(self) -> None:
        sagemaker_jobs.HOOKS.deactivate(self.jobs)
        sagemaker_events.HOOKS.deactivate(self.event_delivery)
        endpoints.HOOKS.deactivate(self.traffic)

    # -- simulated time --------------------------------------------------------------------------------------
    def advance(self) -> bool:
        """While a task waits for its token: simulated time passes to the next thing SageMaker has pending (an
        endpoint change completes, a job ends; the traffic simulator serves that time), which then happens and
        puts its event."""
        from promotion.core import clock

        # One advance at a time: two waiting executions must not both move the clock over the same gap.
        with self._advance_lock:
            change, job = self.traffic.lifecycle.next_change(), self.jobs.next_end()
            upcoming = min((when for when in (change, job) if when is not None), key=lambda item: item[1], default=None)
            if upcoming is None:
                return False
            self.traffic.on_wait(max(0.0, (upcoming[1] - clock.now()).total_seconds()))
            if change is not None and upcoming == change:
                self.clients.sagemaker.describe_endpoint(EndpointName=change[0])  # settles it if on_wait did not
            self.jobs.end_due()
            return True

    # -- what SageMaker meets --------------------------------------------------------------------------------
    def model_data_check(self, role_arn: str, url: str) -> str | None:
        """What SageMaker meets downloading an endpoint model's data with the model's role: the object must exist
        and, with IAM enforced, the role must be allowed s3:GetObject on it. None when it can; otherwise why."""
        from local.iam.actions import Need
        from local.iam.enforcer import AccessDenied

        bucket, _, key = url.removeprefix("s3://").partition("/")
        try:
            self.clients.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            return f"no object at {url}: {error.response['Error']['Code']}"
        if self.iam is not None:
            try:
                need = Need("s3:GetObject", {"BucketName": bucket, "ObjectName": key})
                self.iam.authorize_job(role_arn, [need], "sagemaker:DownloadModelData")
            except AccessDenied as denied:
                return str(denied)
        return None

    def prepare_jobs(self, catalog: ModelCatalog) -> None:
        """The model's training and holdout data at the catalog's S3 locations, for the local SageMaker jobs."""
        holdout = catalog.comparison.holdout_data if catalog.comparison else None
        self.jobs.seed_data(catalog.training.train_data, catalog.training.validation_data, holdout)

    def seed_champion_serving(
        self,
        model_id: str,
        catalog: ModelCatalog,
        release_id: str,
        model_uri: str,
        strength: Literal["weak", "strong", "twin"],
        role_arn: str | None,
        config_bucket: str,
    ) -> None:
        """The champion's training artifact (as the `strength` champion's hyperparameters train it) and, for a
        catalog with a rollout, its endpoint, InService (it has served for a month). `role_arn`: the model's role.
        The endpoint serves the artifact's pinned copy (releases/<model>/<release-id>/model.tar.gz in the config
        bucket), as a release the product promoted does: the model's role may read that, not every training output."""
        channels = {"train": catalog.training.train_data, "validation": catalog.training.validation_data}
        self.jobs.train_artifact(f"{model_id}-champion", sagemaker_jobs.CHAMPIONS[strength], channels, model_uri)
        if catalog.data_quality is not None:
            from promotion.contract.names import report_prefix
            from promotion.jobs.data_quality import PROFILE

            self.jobs.seed_profile(
                catalog.training.train_data,
                f"s3://{config_bucket}/{report_prefix(model_id, release_id)}{PROFILE}",
                catalog.data_quality.feature_names,
                catalog.data_quality.bins,
            )
        if catalog.rollout is None:
            return
        from promotion.contract.names import RELEASES_PREFIX

        source_bucket, source_key = model_uri.removeprefix("s3://").split("/", 1)
        pinned_key = f"{RELEASES_PREFIX}{model_id}/{release_id}/model.tar.gz"
        self.clients.s3.copy_object(
            Bucket=config_bucket, Key=pinned_key, CopySource={"Bucket": source_bucket, "Key": source_key}
        )
        model_uri = f"s3://{config_bucket}/{pinned_key}"
        from promotion.contract.names import champion_variant_name, endpoint_config_name, model_name
        from promotion.monitoring.capture import data_capture_config

        assert role_arn is not None
        endpoints.seed_endpoint(
            self.clients.sagemaker,
            catalog.rollout.endpoint_name,
            model_name=model_name(model_id, release_id),
            variant=champion_variant_name(model_id, release_id),
            config=endpoint_config_name(model_id, release_id),
            image=catalog.rollout.serving_image,
            model_url=model_uri,
            role_arn=role_arn,
            instance_type=catalog.rollout.instance_type,
            data_capture=data_capture_config(catalog, config_bucket),
        )
        self.traffic.lifecycle.complete_now(catalog.rollout.endpoint_name)
