"""Parameter Store as it really is, through backup, writes and rollback: every parameter type it has, and an SSM
that acknowledges a write it did not keep. Production comes back with its values *and* types, or the step says it
could not, before or after writing, never silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promotion.contract.catalog import ModelCatalog
from promotion.contract.names import backup_key
from promotion.core.errors import ParameterVerificationError, UnrestorableParameter
from promotion.production.backup import backup_production, load_backup
from promotion.production.parameters import write_hyperparameters
from promotion.production.restore import RollbackVerificationError, rollback_release
from tests.conftest import CONFIG_BUCKET
from tests.integration.helpers import promote_until_config, snapshot, validated_state
from tests.integration.test_promotion_steps import seed_champion


class ForgetfulSsm:
    """A moto SSM client that answers PutParameter for `path` as AWS does (a version number) without keeping the
    write, or keeps it with `keeps_type` instead of the type asked for: the lie a read-back exists to catch."""

    def __init__(self, ssm: Any, path: str, keeps_type: str | None = None) -> None:
        self._ssm = ssm
        self._path = path
        self._keeps_type = keeps_type
        self.dropped = 0

    def put_parameter(self, **request: Any) -> dict[str, Any]:
        if request["Name"] != self._path:
            return dict(self._ssm.put_parameter(**request))
        self.dropped += 1
        if self._keeps_type is not None:
            return dict(self._ssm.put_parameter(**{**request, "Type": self._keeps_type}))
        return {"Version": 7, "Tier": "Standard"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssm, name)


def _release(aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path) -> str:
    state = validated_state(aws, catalog, catalog_dir)
    assert state.claim.release_id is not None
    return state.claim.release_id


def test_a_secure_string_under_the_prefix_stops_the_promotion_before_anything_is_written(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    """GetParametersByPath without decryption answers a SecureString's ciphertext; a backup holding that would put
    the ciphertext back as the secret's value, and WriteParameters removes every parameter it did not write."""
    seed_champion(aws, catalog)
    secret = f"{catalog.parameter_store.prefix}/api_token"
    aws["ssm"].put_parameter(Name=secret, Value="s3cr3t-value", Type="SecureString")
    before = snapshot(aws, catalog)
    release = _release(aws, catalog, catalog_dir)
    with pytest.raises(
        UnrestorableParameter, match=rf"{secret} under {catalog.parameter_store.prefix} is a SecureString"
    ):
        backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    assert snapshot(aws, catalog) == before
    kept = aws["ssm"].get_parameter(Name=secret, WithDecryption=True)["Parameter"]
    assert (kept["Value"], kept["Type"]) == ("s3cr3t-value", "SecureString")
    listing = aws["s3"].list_objects_v2(Bucket=CONFIG_BUCKET, Prefix=backup_key(catalog.id, release))
    assert listing.get("KeyCount", 0) == 0  # no backup, so no step after it will write
    assert not rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release).restored


def test_rollback_puts_back_the_type_a_promotion_changed(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    """WriteParameters writes every hyperparameter as a String; a StringList it replaced comes back a StringList,
    even when only the type differs (the candidate's max_depth is 6 too)."""
    seed_champion(aws, catalog)
    listed = f"{catalog.parameter_store.prefix}/max_depth"
    aws["ssm"].put_parameter(Name=listed, Value="6", Type="StringList", Overwrite=True)
    before = snapshot(aws, catalog)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    assert snapshot(aws, catalog)["parameters"][listed] == ("6", "String")
    assert state.claim.release_id is not None
    record = load_backup(aws["s3"], CONFIG_BUCKET, catalog.id, state.claim.release_id)
    assert record.parameters[listed] is not None
    assert (record.parameters[listed].value, record.parameters[listed].type) == ("6", "StringList")
    restored = rollback_release(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert listed in restored.parameters_restored
    assert snapshot(aws, catalog) == before


def test_a_write_ssm_acknowledged_but_did_not_keep_fails_write_parameters(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path
) -> None:
    seed_champion(aws, catalog)
    release = _release(aws, catalog, catalog_dir)
    backup_production(aws["ssm"], aws["s3"], CONFIG_BUCKET, catalog, release)
    forgetful = ForgetfulSsm(aws["ssm"], f"{catalog.parameter_store.prefix}/eta")
    hyperparameters = {"max_depth": 6, "eta": 0.0834, "num_round": 120, "subsample": 0.9}
    with pytest.raises(ParameterVerificationError, match=r"/eta: expected '0\.0834', found '0\.1'"):
        write_hyperparameters(
            forgetful, aws["s3"], CONFIG_BUCKET, catalog, release, hyperparameters, sleep=lambda _s: None
        )
    assert forgetful.dropped == 1


@pytest.mark.parametrize(
    ("keeps_type", "found"),
    [(None, r"found '6' \(String\)"), ("String", r"found '5,6' \(String\)")],
    ids=["value-not-kept", "type-not-kept"],
)
def test_a_restore_ssm_did_not_keep_is_reported_not_called_done(
    aws: dict[str, Any], catalog: ModelCatalog, catalog_dir: Path, keeps_type: str | None, found: str
) -> None:
    """Rollback reads every parameter back and compares value and type: a restore SSM dropped, or kept with
    another type, fails the rollback by name instead of reporting production restored."""
    seed_champion(aws, catalog)
    listed = f"{catalog.parameter_store.prefix}/max_depth"
    aws["ssm"].put_parameter(Name=listed, Value="5,6", Type="StringList", Overwrite=True)
    state = promote_until_config(aws, catalog, validated_state(aws, catalog, catalog_dir))
    assert state.claim.release_id is not None
    forgetful = ForgetfulSsm(aws["ssm"], listed, keeps_type=keeps_type)
    with pytest.raises(RollbackVerificationError, match=rf"{listed}: expected '5,6' \(StringList\), {found}"):
        rollback_release(forgetful, aws["s3"], CONFIG_BUCKET, catalog, state.claim.release_id)
    assert forgetful.dropped == 1
