"""Hypothesis strategies over the catalog's schema: valid and invalid hyperparameters, production states."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import strategies as st

from promotion.contract.catalog import HyperparameterSpec, ModelCatalog

# Set by bench/bench_mutation.py only: there every property runs once per mutant, so its examples are capped (and
# derandomized, see tests/conftest.py) to keep the run under an hour. `make test` always runs the full counts.
MUTATION_EXAMPLES = "PROMOTION_MUTATION_EXAMPLES"


def examples(count: int) -> int:
    """A property's example count: `count`, or the mutation run's cap when that is smaller."""
    cap = os.environ.get(MUTATION_EXAMPLES)
    return min(count, int(cap)) if cap else count


def valid_value(spec: HyperparameterSpec) -> st.SearchStrategy[Any]:
    """A value the spec accepts, in its typed form."""
    if spec.choices is not None:
        return st.sampled_from(spec.choices)
    if spec.type == "int":
        return st.integers(
            int(spec.min if spec.min is not None else -(10**6)), int(spec.max if spec.max is not None else 10**6)
        )
    if spec.type == "float":
        return st.floats(
            spec.min if spec.min is not None else -1e6,
            spec.max if spec.max is not None else 1e6,
            allow_nan=False,
            allow_infinity=False,
        )
    return st.booleans()


def valid_hyperparameters(catalog: ModelCatalog) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({name: valid_value(spec) for name, spec in catalog.hyperparameters.items()})


def production_states(catalog: ModelCatalog) -> st.SearchStrategy[dict[str, Any]]:
    """A production as it may be found: any subset of the schema's parameters (with any string values, as a String
    or a StringList: the types a backup can restore; a SecureString is refused before anything is written), extra
    parameters under the prefix, and a config object or none."""
    names = sorted(catalog.hyperparameters)
    text = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
    typed = st.tuples(text, st.sampled_from(["String", "StringList"]))
    return st.fixed_dictionaries(
        {
            "parameters": st.dictionaries(st.sampled_from([*names, "legacy_gamma", "old_lambda"]), typed, max_size=8),
            "config": st.one_of(st.none(), st.binary(min_size=0, max_size=300)),
        }
    )
