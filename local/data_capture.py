"""SageMaker data capture, simulated: the endpoint's callers' requests, sampled as the serving endpoint config's
DataCaptureConfig says, written where and how SageMaker writes them, with the model's execution role.

moto stores an endpoint config's DataCaptureConfig and does nothing with it. Here, `capture_requests` plays an hour of
callers on the endpoint: `requests` rows drawn from the model's holdout data (the label dropped: callers send
features), `InitialSamplingPercentage` % of them captured, to
``<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<uuid>.jsonl`` (one JSON object per request:
``captureData.endpointInput`` with the CSV body, ``eventMetadata`` with its id and inference time, ``eventVersion``).
SageMaker writes them with the variant's model's execution role: without s3:PutObject there, nothing is captured
(on AWS the requests are served and silently not captured), and the call says why.

`shift` multiplies one feature of every captured request (the drift scenario: callers whose amounts are 20 times
what the model was trained on).
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from local.iam.actions import Need
from local.iam.enforcer import AccessDenied

LINES_PER_FILE = 250  # SageMaker batches captured requests into files of a few minutes each


@dataclass(frozen=True)
class Captured:
    """What an hour of callers left in S3: files and requests, or why nothing was captured."""

    variant: str | None
    files: int
    requests: int
    reason: str = ""


def _holdout_rows(s3: Any, holdout_uri: str) -> list[list[str]]:
    bucket, _, prefix = holdout_uri.removeprefix("s3://").partition("/")
    rows: list[list[str]] = []
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8")
        rows += [row[1:] for row in csv.reader(io.StringIO(text)) if row]  # the label first: callers do not send it
    return rows


def capture_requests(
    clients: Any,
    authorize: Any,
    *,
    endpoint: str,
    holdout_uri: str,
    hour: datetime,
    requests: int,
    seed: int,
    shift: tuple[int, float] | None = None,
) -> Captured:
    """An hour (`hour` onwards) of `requests` callers on `endpoint`; what was captured."""
    sagemaker, s3 = clients.sagemaker, clients.s3
    described = sagemaker.describe_endpoint(EndpointName=endpoint)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    capture = config.get("DataCaptureConfig") or {}
    variants = described.get("ProductionVariants") or []
    if not capture.get("EnableCapture", bool(capture)) or not variants:
        return Captured(None, 0, 0, f"endpoint config {described['EndpointConfigName']} captures nothing")
    variant = max(variants, key=lambda v: float(v.get("CurrentWeight") or 0.0))["VariantName"]
    model = next(v["ModelName"] for v in config["ProductionVariants"] if v["VariantName"] == variant)
    role = sagemaker.describe_model(ModelName=model)["ExecutionRoleArn"]
    draw = random.Random(seed)
    pool = _holdout_rows(s3, holdout_uri)
    captured = [
        pool[draw.randrange(len(pool))]
        for _ in range(requests)
        if draw.random() * 100 < float(capture.get("InitialSamplingPercentage", 0))
    ]
    if shift is not None:
        column, factor = shift
        captured = [[*row[:column], f"{float(row[column]) * factor:.6g}", *row[column + 1 :]] for row in captured]
    bucket, _, prefix = str(capture["DestinationS3Uri"]).removeprefix("s3://").partition("/")
    folder = f"{prefix.rstrip('/')}/{endpoint}/{variant}/{hour:%Y/%m/%d/%H}"
    files = 0
    for start in range(0, len(captured), LINES_PER_FILE):
        key = f"{folder}/{uuid.UUID(int=draw.getrandbits(128))}.jsonl"
        if authorize is not None:
            need = Need("s3:PutObject", {"BucketName": bucket, "ObjectName": key})
            try:
                authorize(role, [need], "sagemaker:DataCapture")
            except AccessDenied as denied:
                why = f"SageMaker cannot write captured requests with {role}: {denied}"
                return Captured(variant, files, start, why)
        lines = []
        for offset, row in enumerate(captured[start : start + LINES_PER_FILE]):
            at = hour + timedelta(seconds=(start + offset) * 3600 / max(len(captured), 1))
            lines.append(
                json.dumps(
                    {
                        "captureData": {
                            "endpointInput": {
                                "observedContentType": "text/csv",
                                "mode": "INPUT",
                                "data": ",".join(row),
                                "encoding": "CSV",
                            }
                        },
                        "eventMetadata": {
                            "eventId": str(uuid.UUID(int=draw.getrandbits(128))),
                            "inferenceTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        },
                        "eventVersion": "0",
                    }
                )
            )
        s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
        files += 1
    return Captured(variant, files, len(captured))
