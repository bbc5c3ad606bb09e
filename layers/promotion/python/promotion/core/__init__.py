"""What every step stands on: domain errors, settings, boto3 clients, the clock, retries, logging/metrics/tracing and
the step boundary every handler goes through."""
