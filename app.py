"""CDK entry point: read the model catalogs, build the promotion stack, check it with cdk-nag. Nothing else.

`python app.py` synthesizes into ./cdk.out without the CDK CLI or an AWS account (the stack is environment-agnostic).
PROMOTION_MODELS_DIR points at another catalog folder (default: models/). An invalid catalog, or a layer that cannot
be built, fails the synth with one clear message on stderr and exit code 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "layers" / "promotion" / "python"))
# jsii prints a large end-of-life banner on node 20 at every start; the synth itself is unaffected.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from promotion.contract.catalog import load_catalogs  # noqa: E402
from promotion.core.errors import CatalogError  # noqa: E402
from stacks.history import check_history_budget  # noqa: E402


def main() -> int:
    models_dir = Path(os.environ.get("PROMOTION_MODELS_DIR") or ROOT / "models")
    try:
        catalogs = load_catalogs(models_dir)
        check_history_budget(catalogs)
    except CatalogError as error:
        print(f"synth failed: {error}", file=sys.stderr)
        return 1

    # Imported after the catalogs are checked: a bad catalog fails fast, before jsii starts.
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from stacks.assets import AssetError
    from stacks.promotion_stack import PromotionStack

    # cdk.json's context applies to `python app.py` as to `cdk synth` (the CLI's own context still wins).
    context = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    app = cdk.App(outdir=os.environ.get("CDK_OUTDIR", "cdk.out"), context=context)
    try:
        PromotionStack(
            app,
            app.node.try_get_context("stackName") or "ModelPromotion",
            catalogs=catalogs,
            bus_name=app.node.try_get_context("busName") or "promotion-events",
            # Who hears about promotions is deployed, not self-served (stacks.observability.Notifications).
            notification_emails=app.node.try_get_context("notificationEmails") or [],
            notification_subscribers=app.node.try_get_context("notificationSubscribers") or [],
            # Where every promotion's record goes (an MLflow server: SageMaker managed ARN or http(s)://).
            mlflow_tracking_uri=app.node.try_get_context("mlflowTrackingUri"),
            description="Model promotion: tuning job -> validate, approve, back up, write production, train",
        )
    except AssetError as error:
        print(f"synth failed: {error}", file=sys.stderr)
        return 1
    # Optional: the data scientists' SageMaker Studio domain, only with the context studio=true (stacks/studio.py).
    if str(app.node.try_get_context("studio")).lower() == "true":
        from stacks.studio import DEFAULT_DOMAIN_NAME, StudioStack

        StudioStack(
            app,
            app.node.try_get_context("studioStackName") or "ModelPromotionStudio",
            catalogs=catalogs,
            bus_name=app.node.try_get_context("busName") or "promotion-events",
            config_bucket_name=app.node.try_get_context("configBucketName"),
            vpc_id=app.node.try_get_context("studioVpcId"),
            subnet_ids=app.node.try_get_context("studioSubnetIds"),
            tuning_role_arn=app.node.try_get_context("tuningRoleArn"),
            mlflow_tracking_server_arn=app.node.try_get_context("mlflowTrackingServerArn"),
            domain_name=app.node.try_get_context("studioDomainName") or DEFAULT_DOMAIN_NAME,
            description="SageMaker Studio domain and execution role of the model promotion's data scientists",
        )
    # Acknowledged findings are also written into the template (Metadata.cdk_nag) as an audit trail.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        # The error carries the construct errors (e.g. an IAM statement without resources) as well as cdk-nag's.
        print(
            f"synth failed: validation reported errors (cdk-nag findings are listed above, report: "
            f"{Path(app.outdir) / 'validation-report.json'}):\n{str(error).strip()[:4000]}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
