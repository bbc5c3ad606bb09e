"""The challenger's model artifact, pinned from the comparison to the endpoint.

The comparison job records the SHA-256 of the bytes it evaluated (report.json, `challenger.artifact.sha256`). Before
DeployChallenger creates the SageMaker model, it copies the training job's `model.tar.gz` into the product's bucket
(`releases/<model>/<release-id>/model.tar.gz`, which only that step may write), asking S3 for a SHA-256 of the copy
(CopyObject's `ChecksumAlgorithm`), and deploys the copy only if that digest is the one the comparison reported. A
training output overwritten after the comparison (by anything that can write the output prefix) is refused with
ArtifactChanged, and what is served is exactly what was compared.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from promotion.contract.names import release_artifact_key
from promotion.core.errors import ArtifactChanged


@dataclass(frozen=True)
class PinnedArtifact:
    url: str  # s3://<product bucket>/releases/<model>/<release-id>/model.tar.gz
    sha256: str  # hex, as S3 computed it for the copy
    source: str  # the training job's output it was copied from


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"not an S3 object URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def pin_artifact(
    s3: Any, bucket: str, model: str, release_id: str, source_url: str, evaluated_sha256: str | None
) -> PinnedArtifact:
    """Copy the artifact to the release's own key and check the copy's SHA-256 against the one the comparison
    evaluated (None: no comparison ran, so the copy's digest is recorded, not checked)."""
    source_bucket, source_key = split_s3_url(source_url)
    key = release_artifact_key(model, release_id)
    # One CopyObject: artifacts up to 5 GB (S3's limit for a single copy; S3 refuses a larger one, and the step
    # fails with its message).
    copied = s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": source_bucket, "Key": source_key},
        ChecksumAlgorithm="SHA256",
        MetadataDirective="REPLACE",
        Metadata={"promotion-source": source_url[:1024], "promotion-release-id": release_id},
    )
    encoded = (copied.get("CopyObjectResult") or {}).get("ChecksumSHA256")
    if not encoded:
        raise ArtifactChanged(f"S3 returned no SHA-256 for the copy of {source_url}: the artifact cannot be pinned")
    digest = base64.b64decode(encoded).hex()
    if evaluated_sha256 is not None and digest != evaluated_sha256.lower():
        raise ArtifactChanged(
            f"the artifact at {source_url} changed after the comparison: it evaluated sha256 {evaluated_sha256}, "
            f"the artifact now has sha256 {digest}; nothing was deployed from it"
        )
    return PinnedArtifact(url=f"s3://{bucket}/{key}", sha256=digest, source=source_url)
