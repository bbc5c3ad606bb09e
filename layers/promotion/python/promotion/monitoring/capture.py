"""SageMaker data capture on the production endpoints: what the rollout's endpoint configs ask for, and where
SageMaker writes the captured requests.

SageMaker writes one JSON Lines file per batch of captured requests under
``<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<uuid>.jsonl``, each line one request
(``captureData.endpointInput.data``, CSV as sent when its content type is in ``CsvContentTypes``). Only the inputs
are captured: drift compares features, and a response carries nothing the check reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import capture_prefix

CSV_CONTENT_TYPES = ["text/csv"]


def data_capture_config(catalog: ModelCatalog, bucket: str) -> dict[str, Any] | None:
    """CreateEndpointConfig's DataCaptureConfig for the model's endpoint configs; None when the catalog does not
    monitor the model."""
    if catalog.monitoring is None:
        return None
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": catalog.monitoring.capture_percent,
        "DestinationS3Uri": f"s3://{bucket}/{capture_prefix(catalog.id)}",
        "CaptureOptions": [{"CaptureMode": "Input"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": CSV_CONTENT_TYPES},
    }


def window_hours(end: datetime, hours: int) -> list[datetime]:
    """The `hours` whole hours before `end` (cut to its hour), oldest first: the partitions a check reads."""
    last = end.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=back) for back in range(hours, 0, -1)]


def hour_prefix(destination: str, endpoint: str, variant: str, hour: datetime) -> str:
    """The S3 URI prefix SageMaker writes one variant's captured requests of one hour under."""
    return f"{destination.rstrip('/')}/{endpoint}/{variant}/{hour.strftime('%Y/%m/%d/%H')}/"
