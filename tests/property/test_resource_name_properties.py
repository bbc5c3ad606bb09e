"""The product's grants to create and delete SageMaker models and endpoint configs name patterns, not `*`
(promotion.contract.names.name_pattern): every name it gives must match its pattern, or the first deployment of some
model id would be denied on AWS; and a name it never gives (another team's model) must not."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from promotion.contract.catalog import MODEL_ID_PATTERN
from promotion.contract.names import (
    MAX_RELEASE_ID_LENGTH,
    endpoint_config_name,
    final_endpoint_config_name,
    model_name,
    name_pattern,
)
from tests.strategies import examples

model_ids = st.from_regex(MODEL_ID_PATTERN, fullmatch=True).filter(lambda m: "--" not in m and not m.endswith("-"))
release_ids = st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9])*", fullmatch=True).filter(
    lambda r: len(r) <= MAX_RELEASE_ID_LENGTH
)


@settings(max_examples=examples(300), deadline=None)
@given(model_ids, release_ids)
def test_every_name_the_product_gives_matches_its_granted_pattern(model_id: str, release_id: str) -> None:
    assert fnmatchcase(model_name(model_id, release_id), name_pattern("model", model_id))
    for config in (endpoint_config_name(model_id, release_id), final_endpoint_config_name(model_id, release_id)):
        assert fnmatchcase(config, name_pattern("config", model_id))
        assert len(config) <= 63


@settings(max_examples=examples(200), deadline=None)
@given(model_ids, st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True))
def test_a_name_without_the_models_prefix_and_role_is_not_granted(model_id: str, other: str) -> None:
    """Someone else's model or endpoint config (not `<model id>...-<role>-...`) stays out of reach."""
    if other.startswith(model_id[:14]):
        return
    assert not fnmatchcase(other, name_pattern("model", model_id))
    assert not fnmatchcase(other, name_pattern("config", model_id))
