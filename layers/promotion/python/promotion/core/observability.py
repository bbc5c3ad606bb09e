"""The one place where Logger, Metrics and Tracer are created; every module imports them from here."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from promotion.contract.names import METRICS_NAMESPACE as NAMESPACE
from promotion.contract.names import SERVICE

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Tracer patches boto3 once; it is disabled outside Lambda (POWERTOOLS_TRACE_DISABLED or no X-Ray daemon).
tracer = Tracer(service=SERVICE)
