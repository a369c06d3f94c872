"""A switch on a boolean or a number finds its YAML case (`true:`, `2:`) rather than the default."""

from __future__ import annotations

import pytest

from closeflow.plays._expressions import Evaluator
from closeflow.plays._interpreter import evaluate_control
from closeflow.plays._models import SwitchNode


@pytest.mark.parametrize(("value", "target"), [(True, "yes"), (False, "no"), (2.0, "two"), (None, "none")])
def test_switch_takes_the_case_written_in_yaml(value: object, target: str) -> None:
    node = SwitchNode(
        id="s", type="switch", value={"path": "record.v"},
        cases={"true": "yes", "false": "no", "2": "two", "null": "none"}, default="other",
    )  # fmt: skip
    outcome = evaluate_control(node, {"record": {"v": value}}, Evaluator())
    assert outcome.output["next"] == target
