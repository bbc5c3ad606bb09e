"""Local SageMaker jobs, run by SageMaker's container contract with the project's job image (jobs/Dockerfile).

moto records a CreateTrainingJob / CreateProcessingJob and marks it Completed at once without running anything. The
bridge wraps moto's backend calls: after moto records the job, it runs what the job's image would run, the way
SageMaker runs it, against a temporary `/opt/ml` tree (SAGEMAKER_BASE_DIR):

* Only the stack's job image runs (the URI the template gives JOB_IMAGE_URI): its programs are jobs/, run with this
  interpreter, whose Python minor version and libraries are the image's (tests/jobs/test_image_contract.py). Any
  other image fails the job with a ClientError saying so: the local runtime cannot run an image it does not have.
  Pulling it needs the job role's ECR permissions, checked like SageMaker's own pull.
* Training: `train` (jobs/bin/train) with the hyperparameters as strings in input/config/hyperparameters.json and
  each channel under input/data/<channel>; model/ becomes <S3OutputPath>/<job>/output/model.tar.gz; the first
  1024 characters of output/failure become FailureReason; the final metrics are what the job definition's
  MetricDefinitions regexes read from the job's log (the last match of each): a metric exists locally exactly
  when it would on AWS.
* Processing: the ContainerEntrypoint and ContainerArguments (`python3 /opt/program/...`), each input at its
  LocalPath, each output uploaded from its LocalPath; a non-zero exit fails the job with FailureReason
  "AlgorithmError: See job logs for more information" and the first 1 KB of output/message as ExitMessage.

The job's log is kept beside it (the local stand-in for its CloudWatch log stream). The job runs at once, but as
SageMaker tells it, it is InProgress for JOB_SECONDS of simulated time; then its outcome shows and its state-change
event is put on the default bus (local.sagemaker_events), which completes the step waiting for it.

It also seeds what the jobs read: a generated fraud-like data set (train / validation / holdout) at the catalog's
S3 locations, and a champion model artifact where the champion's config says it is.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from local import sagemaker_events
from local.hooks import Hooks
from local.iam.actions import Need
from local.iam.enforcer import AccessDenied

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_DIR = ROOT / "jobs"  # the image's /opt/program (jobs/Dockerfile)
IMAGE_PROGRAM_DIR = "/opt/program"
TRAIN_PROGRAM = PROGRAM_DIR / "bin" / "train"  # `docker run <image> train`
OPT_ML = "/opt/ml"
REASON_LIMIT = 1024  # SageMaker keeps the first 1024 characters of output/failure and output/message
PROCESSING_FAILURE = "AlgorithmError: See job logs for more information"
ECR_URI = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[^:@]+)")
# Small enough for a laptop run, large enough that a real difference between two models shows in the statistics.
DATA_ROWS = {"train": 8000, "validation": 2000, "holdout": 12000}
DATA_SEED = 20261120
CHAMPIONS: dict[str, dict[str, str]] = {
    # A champion any reasonably tuned challenger clearly beats (holdout ROC AUC about 0.91 on the local data).
    "weak": {
        "max_depth": "1",
        "eta": "0.01",
        "num_round": "2",
        "subsample": "0.5",
        "min_child_weight": "10",
        "objective": "binary:logistic",
        "eval_metric": "auc",
    },
    # The shared event's challenger's own configuration trained with another seed (1, the first the seed check
    # retrains): the challenger beats it on the holdout (about +0.003 ROC AUC, an interval above 0) only by seed
    # noise, which the comparison's seed check tells.
    "twin": {
        "max_depth": "6",
        "eta": "0.0834",
        "num_round": "240",
        "subsample": "0.85",
        "min_child_weight": "3",
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "seed": "1",
    },
    # A champion at least as good as the shared event's challenger (about 0.966 against 0.958).
    "strong": {
        "max_depth": "3",
        "eta": "0.1",
        "num_round": "120",
        "subsample": "0.85",
        "min_child_weight": "3",
        "objective": "binary:logistic",
        "eval_metric": "auc",
    },
}


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# Simulated seconds a job runs on SageMaker (instances, image, the work, the upload): it reads InProgress until then,
# and its state-change event comes when it ends. Simulated time passes while the state machine waits for it. A tuning
# job runs its trials a few at a time (the catalog's 20, two in parallel, some ten minutes each): hours, so the
# hourly drift checks meet it open.
JOB_SECONDS = {"training": 600.0, "processing": 300.0, "tuning": 4 * 3600.0}
# The fields that say how a job ended, held back until it does.
_OUTCOME_FIELDS = {
    "training": ("training_job_status", "secondary_status", "failure_reason"),
    "processing": ("processing_job_status", "failure_reason", "exit_message"),
    "tuning": (
        "hyper_parameter_tuning_job_status",
        "hyper_parameter_tuning_end_time",
        "best_training_job",
        "training_job_status_counters",
        "objective_status_counters",
        "failure_reason",
    ),
}
_RUNNING: dict[str, dict[str, Any]] = {
    "training": {"training_job_status": "InProgress", "secondary_status": "Training", "failure_reason": None},
    "processing": {"processing_job_status": "InProgress", "failure_reason": None, "exit_message": None},
    "tuning": {
        "hyper_parameter_tuning_job_status": "InProgress",
        "hyper_parameter_tuning_end_time": None,
        "best_training_job": None,
        "training_job_status_counters": {
            "Completed": 0,
            "InProgress": 1,
            "RetryableError": 0,
            "NonRetryableError": 0,
            "Stopped": 0,
        },
        "objective_status_counters": {"Succeeded": 0, "Pending": 1, "Failed": 0},
        "failure_reason": None,
    },
}


@dataclass
class RunningJob:
    """A job that ran here at once but, as SageMaker tells it, is still running until `ends_at`."""

    kind: str
    job: Any
    ends_at: datetime
    outcome: dict[str, Any]


class LocalJobs:
    """Runs SageMaker jobs locally for one runtime; `work_dir` keeps each job's tree and log.

    The entry points are deterministic (seeded) functions of their inputs, so a job whose entry point, arguments and
    input bytes were seen before reuses that run's outputs from `cache_dir` instead of training again (tests and
    demos rerun the same jobs many times)."""

    def __init__(
        self,
        s3: Any,
        work_dir: Path,
        python: str = sys.executable,
        cache_dir: Path | None = None,
        authorize: Callable[[str, list[Need], str], None] | None = None,
        side_effects: Callable[[str, str, str, bool], None] | None = None,
        project_image: str | None = None,
    ) -> None:
        self.s3 = s3
        self.project_image = project_image  # the stack's job image URI: the only image this runtime can run
        # local.iam: SageMaker stages a job's inputs and uploads its outputs with the job's role (raises AccessDenied)
        self.authorize = authorize
        self.side_effects = side_effects  # (role, TrainingJobs | ProcessingJobs, job name, metrics?) -> None
        self.work_dir = work_dir
        self.python = python
        self.cache_dir = cache_dir
        self.logs: dict[str, Path] = {}
        self.running: dict[str, RunningJob] = {}
        self._seeded: set[str] = set()
        self._lock = threading.Lock()

    # -- SageMaker's timeline -------------------------------------------------------------------------------------
    @staticmethod
    def _now() -> datetime:
        from promotion.core import clock

        return clock.now()

    def defer(self, kind: str, job: Any) -> None:
        """The job ran; SageMaker says it is InProgress until JOB_SECONDS of simulated time have passed."""
        outcome = {field: getattr(job, field, None) for field in _OUTCOME_FIELDS[kind]}
        for field, value in _RUNNING[kind].items():
            setattr(job, field, value)
        with self._lock:
            self.running[_job_name(kind, job)] = RunningJob(
                kind, job, self._now() + timedelta(seconds=JOB_SECONDS[kind]), outcome
            )
        _announce(kind, job)

    def next_end(self) -> tuple[str, datetime] | None:
        """The running job that ends first, and when (None: no job runs)."""
        with self._lock:
            if not self.running:
                return None
            name, running = min(self.running.items(), key=lambda item: item[1].ends_at)
            return name, running.ends_at

    def end_due(self) -> None:
        """Every job whose time has come ends: its outcome shows and SageMaker's state-change event is put."""
        now = self._now()
        with self._lock:
            due = [name for name, running in self.running.items() if running.ends_at <= now]
            ended = [self.running.pop(name) for name in due]
        for running in ended:
            for field, value in running.outcome.items():
                setattr(running.job, field, value)
            _announce(running.kind, running.job)

    # -- S3 <-> local tree ---------------------------------------------------------------------------------------
    def _ensure_bucket(self, bucket: str) -> None:
        try:
            self.s3.head_bucket(Bucket=bucket)
        except self.s3.exceptions.ClientError:
            self.s3.create_bucket(Bucket=bucket)

    def _check(self, role: str | None, needs: list[Need], operation: str) -> None:
        if role is not None and self.authorize is not None:
            self.authorize(role, needs, operation)

    def require_channel_objects(self, channels: list[dict[str, Any]], role: str | None) -> None:
        """CreateTrainingJob refuses an S3Prefix channel with no object under it, at once, with ValidationException
        (SageMaker checks the prefix before it starts anything; moto accepts it)."""
        from moto.sagemaker.exceptions import ValidationError

        for channel in channels:
            source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
            if source.get("S3DataType", "S3Prefix") != "S3Prefix" or not source.get("S3Uri"):
                continue
            bucket, key = split_uri(source["S3Uri"])
            try:
                found = self.s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0)
            except Exception:  # no such bucket: nothing under the prefix either
                found = 0
            if not found:
                raise ValidationError(
                    message=f'No S3 objects found under S3 URL "{source["S3Uri"]}" given in input data source. '
                    f"Please ensure that the bucket exists in the selected region ({self.s3.meta.region_name}), that "
                    "objects exist "
                    f'under that S3 prefix, and that the role "{role}" has "s3:ListBucket" permissions on bucket '
                    f'"{bucket}".'
                )

    def download(self, uri: str, destination: Path, role: str | None = None) -> int:
        """Copy an S3 prefix (or one object) into `destination`; returns the number of files. With `role`, as
        SageMaker stages an S3Prefix channel with the job's role: list the prefix, then get each object."""
        bucket, key = split_uri(uri)
        destination.mkdir(parents=True, exist_ok=True)
        count = 0
        listing = Need("s3:ListBucket", {"BucketName": bucket}, context={"s3:prefix": key})
        self._check(role, [listing], "s3:ListObjectsV2")
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                getting = Need("s3:GetObject", {"BucketName": bucket, "ObjectName": item["Key"]})
                self._check(role, [getting], "s3:GetObject")
                relative = item["Key"][len(key) :].lstrip("/") or Path(item["Key"]).name
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
                count += 1
        return count

    def pull(self, image: str, role: str | None) -> str | None:
        """SageMaker pulls the job's image with the job's role; the reason the job fails, or None."""
        if image != self.project_image:
            return (
                f"ClientError: the local runtime runs only the stack's job image ({self.project_image}); {image} "
                "would run on SageMaker but is not available here"
            )
        match = ECR_URI.match(image)
        if match is not None and role is not None:
            repository = f"arn:aws:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"
            needs = [Need("ecr:GetAuthorizationToken")] + [
                Need(action, resource=repository)
                for action in ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
            ]
            try:
                self._check(role, needs, "ecr:BatchGetImage")
            except AccessDenied as denied:
                return f"ClientError: Cannot pull the image {image} with the job's role: {denied}"
        return None

    def upload(self, source: Path, uri: str, role: str | None = None) -> None:
        bucket, prefix = split_uri(uri)
        self._ensure_bucket(bucket)
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}".lstrip("/")
            self._check(role, [Need("s3:PutObject", {"BucketName": bucket, "ObjectName": key})], "s3:PutObject")
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    # -- seeding -------------------------------------------------------------------------------------------------
    def seed_data(self, train_uri: str, validation_uri: str, holdout_uri: str | None) -> None:
        """A generated fraud-like data set at the catalog's locations (once per location)."""
        key = f"{train_uri}|{validation_uri}|{holdout_uri}"
        with self._lock:
            if key in self._seeded:
                return
            if str(ROOT / "jobs") not in sys.path:
                sys.path.append(str(ROOT / "jobs"))  # the jobs' shared package (the data generator)
            from promotion_ml.data import write_splits

            with tempfile.TemporaryDirectory(prefix="local-data-") as folder:
                paths = write_splits(
                    Path(folder),
                    n_train=DATA_ROWS["train"],
                    n_validation=DATA_ROWS["validation"],
                    n_holdout=DATA_ROWS["holdout"],
                    seed=DATA_SEED,
                )
                for path, uri in (
                    (paths.train, train_uri),
                    (paths.validation, validation_uri),
                    (paths.holdout, holdout_uri),
                ):
                    if uri is not None:
                        self.upload(Path(path).parent, uri)
            self._seeded.add(key)

    def seed_profile(self, train_uri: str, profile_uri: str, feature_names: list[str] | None, bins: int) -> None:
        """The champion's training data profile, as the data-quality job writes one for each release it checks: what
        the next promotion's data is compared with (a champion the product promoted has one)."""
        if str(ROOT / "jobs") not in sys.path:
            sys.path.append(str(ROOT / "jobs"))
        from promotion_ml.quality import column_names, profile, read_channel

        with tempfile.TemporaryDirectory(prefix="local-profile-") as folder:
            self.download(train_uri, Path(folder))
            table = read_channel(Path(folder), "train", None)
        names = column_names(int(table.values.shape[1]), feature_names)
        bucket, key = split_uri(profile_uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(profile(table, names, bins)).encode())

    def train_artifact(
        self, name: str, hyperparameters: Mapping[str, str], channels: Mapping[str, str], model_uri: str
    ) -> None:
        """Train a model with the training entry point and put its model.tar.gz at `model_uri` (a champion's)."""
        base = self._job_dir(name)
        result = self._train(name, base, hyperparameters, channels)
        if result.returncode != 0:
            raise RuntimeError(f"local training of {name} failed: {self._failure(base / 'output' / 'failure')}")
        bucket, key = split_uri(model_uri)
        self._ensure_bucket(bucket)
        self.s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz(base / "model"))

    # -- jobs ----------------------------------------------------------------------------------------------------
    def _job_dir(self, name: str) -> Path:
        base = self.work_dir / name / "opt_ml"
        base.mkdir(parents=True, exist_ok=True)
        return base

    def _run(self, name: str, command: list[str], base: Path) -> subprocess.CompletedProcess[str]:
        key = self._cache_key(command, base)
        cached = self.cache_dir / key if self.cache_dir is not None else None
        if cached is not None and (cached / "done").is_file():
            shutil.copytree(cached / "tree", base, dirs_exist_ok=True)
            result = subprocess.CompletedProcess(
                command,
                int((cached / "returncode").read_text()),
                (cached / "stdout").read_text(),
                (cached / "stderr").read_text(),
            )
        else:
            env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base), "PYTHONPATH": str(ROOT / "jobs")}
            result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
            if cached is not None:
                partial = cached.with_name(f"{key}.{os.getpid()}.partial")
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(base, partial / "tree")
                (partial / "returncode").write_text(str(result.returncode))
                (partial / "stdout").write_text(result.stdout)
                (partial / "stderr").write_text(result.stderr)
                (partial / "done").write_text("")
                try:
                    partial.rename(cached)
                except OSError:  # another process cached the same job first
                    shutil.rmtree(partial, ignore_errors=True)
        log = self.work_dir / name / "job.log"
        log.write_text(result.stdout + result.stderr, encoding="utf-8")
        self.logs[name] = log
        return result

    @staticmethod
    def _cache_key(command: list[str], base: Path) -> str:
        """Entry point source, arguments and every input byte: what determines the job's outputs."""
        digest = hashlib.sha256()
        for part in command[1:]:
            digest.update(part.encode())
            path = Path(part)
            if path.is_file():
                digest.update(path.read_bytes())
        # Every program of the image (a training job runs jobs/bin/train, which runs training/train.py), the image's
        # definition and library pins, and the interpreter that stands in for the image's.
        digest.update(sys.version.encode())
        extras = [PROGRAM_DIR / "Dockerfile", PROGRAM_DIR / "requirements.txt"]
        for source in sorted([*PROGRAM_DIR.rglob("*.py"), *(PROGRAM_DIR / "bin").iterdir(), *extras]):
            if "__pycache__" not in source.parts:
                digest.update(source.read_bytes())
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            digest.update(path.relative_to(base).as_posix().encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:32]

    def _train(
        self,
        name: str,
        base: Path,
        hyperparameters: Mapping[str, str],
        channels: Mapping[str, str],
        role: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        config = base / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        # SageMaker writes every hyperparameter as a string.
        (config / "hyperparameters.json").write_text(json.dumps({k: str(v) for k, v in hyperparameters.items()}))
        for channel, uri in channels.items():
            self.download(uri, base / "input" / "data" / channel, role)
        return self._run(name, [self.python, str(TRAIN_PROGRAM), "train"], base)

    @staticmethod
    def _failure(path: Path) -> str:
        text = path.read_text(encoding="utf-8", errors="replace").strip() if path.is_file() else ""
        return text[:REASON_LIMIT] or "no failure file written"

    def run_training(self, job: Any) -> None:
        """Run a recorded training job by the container contract and make moto's job say what happened."""
        name = job.training_job_name
        base = self._job_dir(name)
        channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job.input_data_config}
        role = job.role_arn
        specification = job.algorithm_specification or {}
        refused = self.pull(str(specification.get("TrainingImage")), role)
        if refused is not None:
            _fail_training(job, refused)
            return
        if self.side_effects is not None:
            self.side_effects(role, "TrainingJobs", name, True)
        try:
            result = self._train(name, base, job.hyper_parameters, channels, role)
        except AccessDenied as denied:  # SageMaker could not stage a channel with the job's role
            _fail_training(job, f"ClientError: Data download failed: {denied}")
            return
        log = f"local log {self.logs[name]}"
        metrics = metrics_from_log(result.stdout + result.stderr, specification.get("MetricDefinitions") or [])
        if result.returncode != 0:
            job.training_job_status = job.secondary_status = "Failed"
            job.failure_reason = f"AlgorithmError: {self._failure(base / 'output' / 'failure')} ({log})"
            job.final_metric_data_list = _metric_data(metrics, job.training_end_time)
            return
        bucket, key = split_uri(job.model_artifacts["S3ModelArtifacts"])
        try:
            self._check(role, [Need("s3:PutObject", {"BucketName": bucket, "ObjectName": key})], "s3:PutObject")
        except AccessDenied as denied:
            _fail_training(job, f"ClientError: Failed to upload model artifacts: {denied}")
            return
        self._ensure_bucket(bucket)
        self.s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz(base / "model"))
        job.final_metric_data_list = _metric_data(metrics, job.training_end_time)

    def run_processing(self, job: Any) -> None:
        """Run a recorded processing job by the container contract (its entrypoint, inputs and outputs)."""
        name = job.processing_job_name
        base = self._job_dir(name)
        role = job.role_arn
        specification = job.app_specification or {}
        refused = self.pull(str(specification.get("ImageUri")), role)
        if refused is not None:
            _fail_processing(job, refused)
            return
        if self.side_effects is not None:
            self.side_effects(role, "ProcessingJobs", name, False)
        try:
            for item in job.processing_inputs:
                local = item["S3Input"]["LocalPath"].replace(OPT_ML, str(base), 1)
                self.download(item["S3Input"]["S3Uri"], Path(local), role)
        except AccessDenied as denied:
            _fail_processing(job, f"ClientError: Failed to download data. {denied}")
            return
        command = [
            *(specification.get("ContainerEntrypoint") or []),
            *(specification.get("ContainerArguments") or []),
        ]
        result = self._run(name, self.local_command(command), base)
        if result.returncode != 0:
            job.processing_job_status = "Failed"
            job.failure_reason = PROCESSING_FAILURE
            job.exit_message = f"{self._failure(base / 'output' / 'message')} (local log {self.logs[name]})"
            return
        try:
            for output in job.processing_output_config.get("Outputs", []):
                local = Path(output["S3Output"]["LocalPath"].replace(OPT_ML, str(base), 1))
                self.upload(local, output["S3Output"]["S3Uri"], role)
        except AccessDenied as denied:
            _fail_processing(job, f"ClientError: Failed to upload outputs. {denied}")

    def run_tuning(self, backend: Any, job: Any, create_training_job: Callable[..., Any]) -> None:
        """Run a recorded tuning job as one trial (`trial_hyperparameters`): a training job named as SageMaker names
        its trials (<tuning job>-001-<8 hex>), run like any training job with the definition's role, image, channels
        and metric definitions; the tuning job's best training job is that trial, with the objective metric its log
        reported. No trial that succeeds fails the tuning job, as on SageMaker."""
        from promotion.core import clock

        name = job.hyper_parameter_tuning_job_name
        # Simulated time, zone-aware as the world's seeded jobs are (moto's own are naive: its listing sorts both).
        job.creation_time = job.last_modified_time = clock.now()
        definition = job.training_job_definition or {}
        config = job.hyper_parameter_tuning_job_config or {}
        hyperparameters = trial_hyperparameters(definition, config)
        trial = f"{name}-001-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
        specification = dict(definition.get("AlgorithmSpecification") or {})
        requested = [dict(d) for d in specification.get("MetricDefinitions") or []]
        training = create_training_job(
            backend,
            training_job_name=trial,
            hyper_parameters=hyperparameters,
            algorithm_specification=specification,
            role_arn=definition.get("RoleArn"),
            input_data_config=definition.get("InputDataConfig") or [],
            output_data_config=definition.get("OutputDataConfig") or {},
            resource_config=definition.get("ResourceConfig") or {},
            vpc_config=definition.get("VpcConfig") or {},
            stopping_condition=definition.get("StoppingCondition") or {},
            tags=[],
            enable_network_isolation=False,
            enable_inter_container_traffic_encryption=False,
            enable_managed_spot_training=False,
            checkpoint_config={},
            debug_hook_config={},
            debug_rule_configurations=[],
            tensor_board_output_config={},
            experiment_config={},
        )
        training.algorithm_specification["MetricDefinitions"] = requested
        self.run_training(training)
        objective = config.get("HyperParameterTuningJobObjective") or {}
        metrics = {m["MetricName"]: m["Value"] for m in training.final_metric_data_list or []}
        succeeded = training.training_job_status == "Completed" and objective.get("MetricName") in metrics
        now = clock.now()
        job.hyper_parameter_tuning_end_time = now
        job.training_job_status_counters = {
            "Completed": 1 if training.training_job_status == "Completed" else 0,
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": 0 if training.training_job_status == "Completed" else 1,
            "Stopped": 0,
        }
        job.objective_status_counters = {"Succeeded": int(succeeded), "Pending": 0, "Failed": int(not succeeded)}
        for canned in ("OverallBestTrainingJob", "tuning_job_completion_details", "consumed_resources"):
            setattr(job, canned, None)
        if not succeeded:
            job.hyper_parameter_tuning_job_status = "Failed"
            job.best_training_job = None
            why = training.failure_reason or "reported no objective"
            job.failure_reason = f"No training job succeeded: {trial} {why}"
            return
        job.hyper_parameter_tuning_job_status = "Completed"
        job.failure_reason = None
        job.best_training_job = {
            "TrainingJobName": trial,
            "TrainingJobArn": training.arn,
            "TuningJobName": name,
            "CreationTime": now,
            "TrainingStartTime": now,
            "TrainingEndTime": now,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {
                item["Name"]: hyperparameters[item["Name"]]
                for kind in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
                for item in (config.get("ParameterRanges") or {}).get(kind) or []
            },
            "FinalHyperParameterTuningJobObjectiveMetric": {
                "Type": objective.get("Type", "Maximize"),
                "MetricName": objective["MetricName"],
                "Value": metrics[objective["MetricName"]],
            },
            "ObjectiveStatus": "Succeeded",
        }

    def local_command(self, command: list[str]) -> list[str]:
        """The image's command as it runs here: its python3 is this interpreter (same minor version and libraries),
        its /opt/program is jobs/. Anything else in the image is not here: refused."""
        if not command or command[0] not in ("python3", "python"):
            raise RuntimeError(f"the local runtime runs the job image's python3 programs only, not {command[:1]}")
        return [
            self.python,
            *(
                part.replace(IMAGE_PROGRAM_DIR, str(PROGRAM_DIR), 1) if part.startswith(IMAGE_PROGRAM_DIR) else part
                for part in command[1:]
            ),
        ]


def metrics_from_log(log: str, definitions: list[dict[str, str]]) -> dict[str, float]:
    """What SageMaker reads from a job's log with its MetricDefinitions: each regex against each line, the first
    group as the value; the last match of each metric is its final value."""
    found: dict[str, float] = {}
    compiled = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
    for line in log.splitlines():
        for metric, regex in compiled:
            match = regex.search(line)
            if match is not None and match.groups() and match.group(1) is not None:
                try:
                    found[metric] = float(match.group(1))
                except ValueError:
                    continue
    return found


def _metric_data(metrics: Mapping[str, float], timestamp: Any) -> list[dict[str, Any]]:
    return [{"MetricName": name, "Value": value, "Timestamp": timestamp} for name, value in metrics.items()]


def _job_name(kind: str, job: Any) -> str:
    if kind == "tuning":
        return str(job.hyper_parameter_tuning_job_name)
    return str(job.training_job_name if kind == "training" else job.processing_job_name)


def _announce(kind: str, job: Any) -> None:
    if kind == "training":
        sagemaker_events.training_job_changed(job)
    elif kind == "tuning":
        sagemaker_events.tuning_job_changed(job)
    else:
        sagemaker_events.processing_job_changed(job)


def trial_hyperparameters(definition: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, str]:
    """The one trial the local runtime trains for a tuning job: the static hyperparameters and the middle of each
    range (an integer range's rounded down, a categorical range's first value), as strings, as SageMaker passes
    them. The search itself is SageMaker's; what the product relies on is its best training job and its event."""
    values = {str(k): str(v) for k, v in (definition.get("StaticHyperParameters") or {}).items()}
    ranges = config.get("ParameterRanges") or {}
    for item in ranges.get("IntegerParameterRanges") or []:
        values[item["Name"]] = str((int(item["MinValue"]) + int(item["MaxValue"])) // 2)
    for item in ranges.get("ContinuousParameterRanges") or []:
        values[item["Name"]] = f"{(float(item['MinValue']) + float(item['MaxValue'])) / 2:.6g}"
    for item in ranges.get("CategoricalParameterRanges") or []:
        values[item["Name"]] = str(item["Values"][0])
    return values


def _fail_training(job: Any, reason: str) -> None:
    job.training_job_status = job.secondary_status = "Failed"
    job.failure_reason = reason
    job.final_metric_data_list = []


def _fail_processing(job: Any, reason: str) -> None:
    job.processing_job_status = "Failed"
    job.failure_reason = reason


def _tar_gz(folder: Path) -> bytes:
    """model.tar.gz as SageMaker writes it; reproducible bytes (no timestamps) so identical models hash alike."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


MAX_CONTAINER_ARGUMENTS = 256  # CreateProcessingJob: AppSpecification.ContainerArguments, at most 256 items
MAX_CONTAINER_ARGUMENT_LENGTH = 256  # of at most 256 characters each (moto checks neither)


MAX_PROCESSING_INPUTS = 10  # CreateProcessingJob: ProcessingInputs, at most 10 (SageMaker's model; moto takes any)


def _require_at_most(items: list[Any], limit: int, field: str) -> None:
    from moto.sagemaker.exceptions import ValidationError

    if len(items) > limit:
        raise ValidationError(
            message=f"1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have "
            f"length less than or equal to {limit}"
        )


def _require_argument_limits(arguments: list[str]) -> None:
    from moto.sagemaker.exceptions import ValidationError

    if len(arguments) > MAX_CONTAINER_ARGUMENTS:
        raise ValidationError(
            message="1 validation error detected: Value at 'appSpecification.containerArguments' failed to satisfy "
            f"constraint: Member must have length less than or equal to {MAX_CONTAINER_ARGUMENTS}"
        )
    for argument in arguments:
        if len(argument) > MAX_CONTAINER_ARGUMENT_LENGTH:
            raise ValidationError(
                message=f"1 validation error detected: Value '{argument[:60]}...' at "
                "'appSpecification.containerArguments' failed to satisfy constraint: Member must satisfy constraint: "
                f"[Member must have length less than or equal to {MAX_CONTAINER_ARGUMENT_LENGTH}]"
            )


def _patch(originals: dict[str, Any]) -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    originals["create_training_job"] = SageMakerModelBackend.create_training_job
    originals["create_processing_job"] = SageMakerModelBackend.create_processing_job
    originals["describe_training_job"] = SageMakerModelBackend.describe_training_job
    originals["describe_processing_job"] = SageMakerModelBackend.describe_processing_job
    originals["create_hyper_parameter_tuning_job"] = SageMakerModelBackend.create_hyper_parameter_tuning_job
    originals["describe_hyper_parameter_tuning_job"] = SageMakerModelBackend.describe_hyper_parameter_tuning_job

    from moto.sagemaker.exceptions import ResourceInUseException

    def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("training_job_name")
        if HOOKS.current is not None and name in self.training_jobs:  # moto would overwrite it
            raise ResourceInUseException(
                "Training job names must be unique within an AWS account and region, and a training job with this "
                f"name already exists ({self.training_jobs[name].arn})"
            )
        if HOOKS.current is not None:
            HOOKS.current.require_channel_objects(kwargs.get("input_data_config") or [], kwargs.get("role_arn"))
        specification = kwargs.get("algorithm_specification") or {}
        requested = [dict(d) for d in specification.get("MetricDefinitions") or []]
        job = originals["create_training_job"](self, *args, **kwargs)
        if HOOKS.current is not None:
            # moto replaces the request's MetricDefinitions with a sample of its own: the job keeps what was asked.
            job.algorithm_specification["MetricDefinitions"] = requested
            if not requested:
                del job.algorithm_specification["MetricDefinitions"]
            HOOKS.current.run_training(job)
            HOOKS.current.defer("training", job)
        return job

    def create_processing_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("processing_job_name")
        if HOOKS.current is not None and name in self.processing_jobs:  # moto would overwrite it
            raise ResourceInUseException(
                "Processing job names must be unique within an AWS account and region, and a processing job with "
                f"this name already exists ({self.processing_jobs[name].arn})"
            )
        if HOOKS.current is not None:
            _require_argument_limits((kwargs.get("app_specification") or {}).get("ContainerArguments") or [])
            _require_at_most(kwargs.get("processing_inputs") or [], MAX_PROCESSING_INPUTS, "processingInputs")
        job = originals["create_processing_job"](self, *args, **kwargs)
        if HOOKS.current is not None:
            HOOKS.current.run_processing(job)
            HOOKS.current.defer("processing", job)
        return job

    def create_hyper_parameter_tuning_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto completes a tuning job at once with a canned best training job; here it runs (one trial) and says
        # InProgress until its simulated time has passed, then its state-change event comes.
        definition = kwargs.get("training_job_definition") or {}
        if HOOKS.current is not None:
            HOOKS.current.require_channel_objects(definition.get("InputDataConfig") or [], definition.get("RoleArn"))
        arn = originals["create_hyper_parameter_tuning_job"](self, *args, **kwargs)
        if HOOKS.current is not None:
            job = self.hyper_parameter_tuning_jobs[kwargs["hyper_parameter_tuning_job_name"]]
            HOOKS.current.run_tuning(self, job, originals["create_training_job"])
            HOOKS.current.defer("tuning", job)
        return arn

    def describe_hyper_parameter_tuning_job(self: Any, hyper_parameter_tuning_job_name: str) -> Any:
        if HOOKS.current is not None:
            HOOKS.current.end_due()
        return originals["describe_hyper_parameter_tuning_job"](self, hyper_parameter_tuning_job_name)

    def describe_training_job(self: Any, training_job_name: str) -> Any:
        if HOOKS.current is not None:
            HOOKS.current.end_due()
        return originals["describe_training_job"](self, training_job_name)

    def describe_processing_job(self: Any, processing_job_name: str) -> Any:
        if HOOKS.current is not None:
            HOOKS.current.end_due()
        return originals["describe_processing_job"](self, processing_job_name)

    SageMakerModelBackend.create_training_job = create_training_job  # type: ignore[method-assign]
    SageMakerModelBackend.create_processing_job = create_processing_job  # type: ignore[method-assign]
    SageMakerModelBackend.describe_training_job = describe_training_job  # type: ignore[method-assign]
    SageMakerModelBackend.describe_processing_job = describe_processing_job  # type: ignore[method-assign]
    SageMakerModelBackend.create_hyper_parameter_tuning_job = create_hyper_parameter_tuning_job  # type: ignore[method-assign]
    SageMakerModelBackend.describe_hyper_parameter_tuning_job = describe_hyper_parameter_tuning_job  # type: ignore[method-assign]


HOOKS: Hooks[LocalJobs] = Hooks(_patch)
