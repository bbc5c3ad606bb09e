"""The synthesized state machine, walked as a graph (States, Next, Choices, Default, Catch; Parallel and Map
inside): retries, rollback coverage after BackupProduction, no Rollback loop, reachability, Choice defaults.

Nothing here lists the states: each property is a traversal, so it keeps holding (or fails naming the state) as
states are added. Each checker returns its problems; the real definition must have none, and the mutation tests at
the bottom prove every checker finds the defect it is for.
"""

from __future__ import annotations

import ast
import copy
import re
from collections import deque
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest

from tests.infra.conftest import ROOT, Synth

pytestmark = pytest.mark.xdist_group("infra")

Definition = dict[str, Any]
State = dict[str, Any]

BACKUP = "BackupProduction"  # from here on production may have been touched
ROLLBACK = "Rollback"
PUBLISH = "PublishResult"
DOMAIN_PACKAGE = ROOT / "layers" / "promotion" / "python" / "promotion"

# Every Lambda task retries exactly these (docs/state-machine.md): Lambda service hiccups and the domain's own
# "AWS was briefly unavailable" error.
LAMBDA_TRANSIENT = frozenset(
    {
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
        "TransientAwsError",
    }
)
# SageMaker refused an endpoint change because another is in progress: the tasks that change the endpoint retry it
# after a wait (it is over in minutes); nothing else may.
ENDPOINT_BUSY = "EndpointBusy"
ENDPOINT_CHANGING_STATES = frozenset({"DeployChallenger", "ShiftTraffic", "PromoteChallenger"})
# What an aws-sdk:* or other service integration may retry: throttling and brief unavailability only.
SERVICE_TRANSIENT = re.compile(
    r"^[A-Za-z0-9]+\.(ThrottlingException|TooManyRequestsException|RequestLimitExceeded|ServiceUnavailable"
    r"(Exception)?|InternalServerError|InternalServerException|InternalFailure|SdkClientException"
    r"|ProvisionedThroughputExceededException)$"
)
# Errors that are never worth retrying: the catch-alls (they include every decision below), permissions, and
# validation; the domain's own errors are added from the domain package.
NEVER_RETRIED = frozenset({"States.ALL", "States.TaskFailed", "States.Permissions", "States.Runtime"})
NEVER_RETRIED_PATTERN = re.compile(r"AccessDenied|Unauthorized|Forbidden|Validation", re.IGNORECASE)

CAN_CATCH = frozenset({"Task", "Parallel", "Map"})
# Why a state without a Catch is still covered where production may have been touched.
CANNOT_FAIL_UNCAUGHT = {
    "Choice": "ASL allows no Catch on a Choice. It only routes: every Choice has a Default (checked below), so no "
    "States.NoChoiceMatched; a rule on an absent Variable would fail with States.Runtime, so the Choices after "
    "BackupProduction read only fields the task before them always returns (test_state_machine.py pins them)",
    "Wait": "ASL allows no Catch on a Wait; with a literal Seconds or Timestamp (checked) nothing in it can fail",
    "Pass": "ASL allows no Catch on a Pass; placing a literal Result (no Parameters or InputPath, checked) cannot fail",
}
TERMINAL_TYPES = frozenset({"Succeed", "Fail"})
RESULT_WRITERS = frozenset({"Task", "Pass", "Parallel", "Map"})


# ---------------------------------------------------------------------------------------------------- the graph


def transitions(state: State) -> list[tuple[str, str]]:
    """(how, target) for every way out of a state: Next, each Choice rule, Default, each Catch."""
    out = [("Next", state["Next"])] if "Next" in state else []
    out += [(f"Choices[{i}]", rule["Next"]) for i, rule in enumerate(state.get("Choices", []))]
    out += [("Default", state["Default"])] if "Default" in state else []
    out += [(f"Catch{c['ErrorEquals']}", c["Next"]) for c in state.get("Catch", [])]
    return out


def is_terminal(state: State) -> bool:
    return state["Type"] in TERMINAL_TYPES or state.get("End") is True


def machines(definition: Definition, where: str = "") -> Iterator[tuple[str, Definition]]:
    """The definition and every state machine nested in it (Parallel branches, Map item processors)."""
    yield where or "top level", definition
    for name, state in definition["States"].items():
        for index, branch in enumerate(state.get("Branches", [])):
            yield from machines(branch, f"{where}{name}.Branches[{index}]/")
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from machines(state[key], f"{where}{name}.{key}/")


def reachable(states: dict[str, State], start: str, stop: frozenset[str] = frozenset()) -> set[str]:
    """States reachable from `start` over every transition, entering but not leaving the states in `stop`."""
    seen, queue = {start}, deque([start])
    while queue:
        name = queue.popleft()
        if name in stop or name not in states:
            continue
        for _, target in transitions(states[name]):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


@cache
def domain_errors() -> frozenset[str]:
    """Names of the domain's exception classes (subclasses of PromotionError, found in the package's source) except
    TransientAwsError: a Lambda's exception class name is its Step Functions error name."""
    bases: dict[str, set[str]] = {}
    for path in DOMAIN_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {base.id for base in node.bases if isinstance(base, ast.Name)}
    found = {"PromotionError"}
    while grown := {name for name, parents in bases.items() if parents & found} - found:
        found |= grown
    return frozenset(found - {"TransientAwsError"})


def integration(state: State, resources: dict[str, Any]) -> str:
    """`lambda` for a Lambda task (a function ARN as Resource, or lambda:invoke), else the Resource itself."""
    resource = str(state.get("Resource", ""))
    if ":states:::lambda:invoke" in resource:
        return "lambda"
    match = re.fullmatch(r"<([A-Za-z0-9]+)\.Arn>", resource)
    if match and resources.get(match[1], {}).get("Type") == "AWS::Lambda::Function":
        return "lambda"
    return resource


# ---------------------------------------------------------------------------------------------------- checkers


def dangling_transitions(definition: Definition) -> list[str]:
    problems = []
    for where, machine in machines(definition):
        states = machine["States"]
        if machine["StartAt"] not in states:
            problems.append(f"{where}: StartAt {machine['StartAt']} is no state")
        problems += [
            f"{where}: {name} {how} -> {target}, which is no state"
            for name, state in states.items()
            for how, target in transitions(state)
            if target not in states
        ]
    return problems


def unreachable_states(definition: Definition) -> list[str]:
    problems = []
    for where, machine in machines(definition):
        orphans = set(machine["States"]) - reachable(machine["States"], machine["StartAt"])
        problems += [f"{where}: {name} is unreachable from {machine['StartAt']}" for name in sorted(orphans)]
    return problems


def states_that_never_finish(definition: Definition) -> list[str]:
    """States from which no terminal state can be reached (a loop with no way out)."""
    problems = []
    for where, machine in machines(definition):
        states = machine["States"]
        problems += [
            f"{where}: no end can be reached from {name}"
            for name in states
            if not any(is_terminal(states[other]) for other in reachable(states, name) if other in states)
        ]
    return problems


def choices_without_default(definition: Definition) -> list[str]:
    return [
        f"{where}: Choice {name} has no Default (an unmatched input fails with States.NoChoiceMatched, uncaught)"
        for where, machine in machines(definition)
        for name, state in machine["States"].items()
        if state["Type"] == "Choice" and "Default" not in state
    ]


def retry_problems(definition: Definition, resources: dict[str, Any]) -> list[str]:
    """Every Task retries its transient errors, and only transient errors."""
    # An error the machine catches by name is a decision it handles (PromotionRejected): never one to retry.
    caught = {
        error
        for _, machine in machines(definition)
        for state in machine["States"].values()
        for catcher in state.get("Catch", [])
        for error in catcher["ErrorEquals"]
        if not error.startswith("States.")
    }
    never = NEVER_RETRIED | (domain_errors() - {ENDPOINT_BUSY}) | (caught - LAMBDA_TRANSIENT)
    problems = []
    for where, machine in machines(definition):
        for name, state in machine["States"].items():
            retried = [error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]]
            problems += [
                f"{where}: {name} retries {error}, which is not transient"
                for error in retried
                if error in never or NEVER_RETRIED_PATTERN.search(error)
            ]
            if state["Type"] != "Task":
                continue
            if integration(state, resources) == "lambda":
                expected = LAMBDA_TRANSIENT | ({ENDPOINT_BUSY} if name in ENDPOINT_CHANGING_STATES else set())
                if missing := expected - set(retried):
                    problems.append(f"{where}: Lambda task {name} does not retry {sorted(missing)}")
                extra = set(retried) - expected
            else:
                if not any(SERVICE_TRANSIENT.match(error) for error in retried):
                    problems.append(f"{where}: task {name} ({state.get('Resource')}) retries no transient error")
                extra = {error for error in retried if not SERVICE_TRANSIENT.match(error)}
            problems += [f"{where}: {name} retries {error}, not a known transient error" for error in sorted(extra)]
    return problems


def after_backup(states: dict[str, State]) -> set[str]:
    """States on any path from BackupProduction before it reaches Rollback or PublishResult (those included)."""
    return reachable(states, BACKUP, stop=frozenset({ROLLBACK, PUBLISH}))


def guarded_by_numeric_choice(states: dict[str, Any], name: str, path: str) -> bool:
    """A Wait on a path cannot fail when every way in is a Choice rule that proved the path numeric and in range."""
    entries = []
    for other in states.values():
        for rule in other.get("Choices", []):
            if rule.get("Next") == name:
                entries.append(rule)
        if other.get("Next") == name or other.get("Default") == name:
            return False  # an unguarded way in (Next, Default) reaches the Wait as is
        if any(catcher.get("Next") == name for catcher in other.get("Catch", [])):
            return False

    def proves(rule: dict[str, Any]) -> bool:
        conditions = rule.get("And", [rule])
        numeric = any(c.get("Variable") == path and c.get("IsNumeric") is True for c in conditions)
        bounded = {key for c in conditions if c.get("Variable") == path for key in c} & {
            "NumericGreaterThanEquals",
            "NumericGreaterThan",
        }
        return numeric and bool(bounded)

    return bool(entries) and all(proves(rule) for rule in entries)


def rollback_coverage_problems(definition: Definition) -> list[str]:
    """From BackupProduction until Rollback or PublishResult, every state that can fail is caught into Rollback,
    keeping the document (Rollback needs $.claim and $.backup), and no path ends without PublishResult."""
    states = definition["States"]
    if BACKUP not in states or ROLLBACK not in states:
        return [f"the machine has no {BACKUP} or no {ROLLBACK} state"]
    problems = []
    for name in sorted(after_backup(states) - {ROLLBACK, PUBLISH}):
        state = states[name]
        kind = state["Type"]
        if kind in TERMINAL_TYPES or state.get("End"):
            problems.append(f"{name} ends the execution after {BACKUP} without {ROLLBACK} or {PUBLISH}")
        elif kind in CAN_CATCH:
            catchers = state.get("Catch", [])
            if not catchers or "States.ALL" not in catchers[-1]["ErrorEquals"] or catchers[-1]["Next"] != ROLLBACK:
                problems.append(f"{name} ({kind}) can fail after {BACKUP} but has no Catch States.ALL -> {ROLLBACK}")
            for catcher in catchers:
                if catcher.get("ResultPath", "$") == "$":
                    problems.append(
                        f"{name}: Catch {catcher['ErrorEquals']} replaces the document with the error "
                        f"(ResultPath {catcher.get('ResultPath', '$ by default')}); {ROLLBACK} needs $.claim, $.backup"
                    )
                if catcher["Next"] == PUBLISH:
                    problems.append(f"{name}: Catch {catcher['ErrorEquals']} publishes without rolling back")
        elif kind == "Wait" and {"SecondsPath", "TimestampPath"} & set(state):
            if not guarded_by_numeric_choice(states, name, state.get("SecondsPath") or state.get("TimestampPath")):
                problems.append(f"{name}: a {kind} reading a path can fail (States.Runtime) and cannot have a Catch")
        elif kind == "Pass" and {"Parameters", "InputPath"} & set(state):
            problems.append(f"{name}: a {kind} reading a path can fail (States.Runtime) and cannot have a Catch")
        elif kind not in CANNOT_FAIL_UNCAUGHT:
            problems.append(f"{name}: no rule says whether a {kind} state can fail uncaught after {BACKUP}")
    return problems


def _guards(rule: dict[str, Any], marker: str) -> bool:
    """The Choice rule is certainly true when `marker` (a path) is present in the document."""
    if "And" in rule:
        return all(_guards(inner, marker) for inner in rule["And"])
    if "Or" in rule:
        return any(_guards(inner, marker) for inner in rule["Or"])
    variable = rule.get("Variable", "")
    return rule.get("IsPresent") is True and (marker == variable or marker.startswith(variable + "."))


def _keeps(path: str | None, marker: str | None) -> str | None:
    """The marker after something is written at `path`: gone when the write replaces it or a parent of it."""
    if marker is None or path == "$" or (path is not None and marker.startswith(path + ".")):
        return None
    return marker


def _exits(state: State, marker: str | None) -> list[tuple[str, str, str | None]]:
    """(how, target, marker afterwards) for the exits a state can take when `marker` was present on entry."""
    if state["Type"] == "Choice":
        out = []
        for index, rule in enumerate(state["Choices"]):
            out.append((f"Choices[{index}]", rule["Next"], marker))
            if marker is not None and _guards(rule, marker):
                return out  # this rule certainly matches: neither the later rules nor the Default are taken
        return out + ([("Default", state["Default"], marker)] if "Default" in state else [])
    lost = state.get("OutputPath", "$") != "$"
    # Only these write a result into the document ($, the default, replaces it; null discards the result).
    written = state.get("ResultPath", "$") if state["Type"] in RESULT_WRITERS else None
    out = []
    if "Next" in state:
        out.append(("Next", state["Next"], None if lost else _keeps(written, marker)))
    for catcher in state.get("Catch", []):
        # A catcher's output is the state's input with the error at its ResultPath ($, the default, replaces it).
        out.append((f"Catch{catcher['ErrorEquals']}", catcher["Next"], _keeps(catcher.get("ResultPath", "$"), marker)))
    return out


def _is_endpoint_wait_loop(states: dict[str, State], path: list[str], marker: str | None) -> bool:
    """Rollback -> a Choice rule that requires Rollback's own `endpoint_pending` to be true -> a Wait -> Rollback:
    the endpoint restore's wait loop (promotion.production.restore), re-entered only while Rollback says the endpoint
    is still
    changing, and bounded by Rollback itself (it fails after MAX_ENDPOINT_POLLS per call)."""
    if marker is None or len(path) != 4 or not path[1].endswith("Choices[0]"):
        return False
    choice, wait = path[1].split(" ")[0], path[2].split(" ")[0]
    rule = states[choice]["Choices"][0]
    conditions = rule.get("And", [rule])
    pending = f"{marker}.endpoint_pending"
    checks_pending = any(c.get("Variable") == pending and c.get("BooleanEquals") is True for c in conditions)
    return checks_pending and states[wait]["Type"] == "Wait" and states[wait].get("Next") == ROLLBACK


def rollback_reentries(definition: Definition) -> list[str]:
    """Every way back into Rollback, from its success and from its own Catch, passes a Choice that leaves the loop
    when what that exit wrote (the ResultPath of Rollback or of its Catch) is present. Otherwise a Rollback and a
    PublishResult that keep failing loop until the execution history is full."""
    states = definition["States"]
    if ROLLBACK not in states:
        return [f"the machine has no {ROLLBACK} state"]
    rollback = states[ROLLBACK]
    exits = [("Next", rollback["Next"], rollback.get("ResultPath", "$"))] if "Next" in rollback else []
    exits += [(f"Catch{c['ErrorEquals']}", c["Next"], c.get("ResultPath", "$")) for c in rollback.get("Catch", [])]
    problems = []
    for how, target, written in exits:
        # What this exit leaves in the document for a later Choice to recognise (nothing if it replaces or drops).
        dropped = written in (None, "$") or (how == "Next" and rollback.get("OutputPath", "$") != "$")
        marker = None if dropped else written
        stack: list[tuple[str, str | None, list[str]]] = [(target, marker, [f"{ROLLBACK} {how}", target])]
        seen: set[tuple[str, str | None]] = set()
        while stack:
            name, mark, path = stack.pop()
            if name == ROLLBACK and _is_endpoint_wait_loop(states, path, marker):
                continue  # bounded: Rollback itself fails after its polls, and its Catch leaves the loop
            if name == ROLLBACK:
                problems.append(
                    f"{ROLLBACK} is entered again after its {how} ({marker or 'nothing'} written) with no Choice "
                    f"checking that: {' -> '.join(path)}"
                )
                break  # one path per exit is enough to act on
            if (name, mark) in seen or name not in states:
                continue
            seen.add((name, mark))
            for step, nxt, after in _exits(states[name], mark):
                stack.append((nxt, after, [*path[:-1], f"{name} {step}", nxt]))
    return problems


# ---------------------------------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def resources(synth: Synth) -> dict[str, Any]:
    return dict(synth.template["Resources"])


def test_the_walk_sees_the_whole_machine(definition: Definition) -> None:
    """Sanity of the walk itself: it finds the tasks and the states after BackupProduction."""
    states = definition["States"]
    assert sum(state["Type"] == "Task" for state in states.values()) >= 10
    region = after_backup(states)
    assert {BACKUP, ROLLBACK, PUBLISH} <= region
    assert sum(states[name]["Type"] == "Task" for name in region - {ROLLBACK, PUBLISH}) >= 5
    assert {"BackupMissing", "PipelineFailed", "RollbackVerificationError"} <= domain_errors()


def test_every_transition_names_a_state(definition: Definition) -> None:
    assert dangling_transitions(definition) == []


def test_no_state_is_unreachable(definition: Definition) -> None:
    assert unreachable_states(definition) == []


def test_every_state_can_reach_an_end(definition: Definition) -> None:
    assert states_that_never_finish(definition) == []


def test_every_choice_has_a_default(definition: Definition) -> None:
    assert choices_without_default(definition) == []


def test_every_task_retries_transient_errors_and_nothing_else(
    definition: Definition, resources: dict[str, Any]
) -> None:
    assert retry_problems(definition, resources) == []


def test_every_failure_after_backup_rolls_back(definition: Definition) -> None:
    assert rollback_coverage_problems(definition) == []


def test_rollback_is_never_reentered_unchecked(definition: Definition) -> None:
    assert rollback_reentries(definition) == []


# -------------------------------------------------------------- mutation tests: each checker finds its defect


def _insert_task_after(name: str, new: str) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        states = definition["States"]
        task = copy.deepcopy(states[name])
        task.pop("Catch", None)  # a new step someone forgot to cover
        task["Next"] = states[name]["Next"]
        states[name]["Next"] = new
        states[new] = task

    return mutate


def _set(state: str, key: str, value: Any) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        definition["States"][state][key] = value

    return mutate


def _drop(state: str, key: str) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        del definition["States"][state][key]

    return mutate


def _retry_also(state: str, error: str) -> Callable[[Definition], None]:
    def mutate(definition: Definition) -> None:
        definition["States"][state]["Retry"][0]["ErrorEquals"].append(error)

    return mutate


def _orphan(definition: Definition) -> None:
    definition["States"]["Orphan"] = {"Type": "Pass", "Next": PUBLISH}


def _end_after_backup(definition: Definition) -> None:
    definition["States"]["ComparisonVerdict"]["Default"] = "Promoted"


def _spin(definition: Definition) -> None:
    definition["States"]["ComparisonVerdict"]["Default"] = "Spin"
    definition["States"]["Spin"] = {"Type": "Wait", "Seconds": 60, "Next": "Spin"}


def _poll_on_a_path(definition: Definition) -> None:
    """A polling loop whose Wait reads its length from the document, after production was written."""
    definition["States"]["ComparisonVerdict"]["Default"] = "PollAgain"
    definition["States"]["PollAgain"] = {"Type": "Wait", "SecondsPath": "$.comparison.poll_seconds", "Next": "Rollback"}


def _unguarded_publish_failed(definition: Definition) -> None:
    definition["States"]["PublishFailed"]["Choices"] = [
        {"Variable": "$.error.Error", "StringEquals": "Nope", "Next": "PromotionFailed"}
    ]


MUTATIONS: dict[str, tuple[Callable[[Definition], None], str, str]] = {
    # name: (mutation, checker, a fragment of the problem it must report)
    "uncaught step after backup": (_set("WriteConfig", "Catch", []), "coverage", "WriteConfig (Task) can fail"),
    "new uncaught step": (_insert_task_after("WriteConfig", "NewStep"), "coverage", "NewStep (Task) can fail"),
    "catch to publish": (
        _set("WriteConfig", "Catch", [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": PUBLISH}]),
        "coverage",
        "publishes without rolling back",
    ),
    "catch drops the document": (
        _set("WriteConfig", "Catch", [{"ErrorEquals": ["States.ALL"], "Next": ROLLBACK}]),
        "coverage",
        "replaces the document",
    ),
    "ends after backup": (_end_after_backup, "coverage", "Promoted ends the execution"),
    "wait on a path after backup": (_poll_on_a_path, "coverage", "PollAgain: a Wait reading a path"),
    "retries everything": (_retry_also("ShiftTraffic", "States.ALL"), "retry", "ShiftTraffic retries States.ALL"),
    "retries a domain error": (_retry_also("WriteParameters", "BackupMissing"), "retry", "retries BackupMissing"),
    "retries access denied": (
        _retry_also("Rollback", "AccessDeniedException"),
        "retry",
        "retries AccessDeniedException",
    ),
    "retries a decision": (_retry_also("AwaitApproval", "PromotionRejected"), "retry", "retries PromotionRejected"),
    "no retry": (_drop("ClaimPromotion", "Retry"), "retry", "ClaimPromotion does not retry"),
    "orphan": (_orphan, "reachability", "Orphan is unreachable"),
    "no default": (_drop("CandidateVerdict", "Default"), "default", "CandidateVerdict has no Default"),
    "dangling next": (_set("WriteConfig", "Next", "Nowhere"), "dangling", "Nowhere, which is no state"),
    "loop with no exit": (_spin, "finish", "no end can be reached from Spin"),
    "rollback loop": (_unguarded_publish_failed, "reentry", "Rollback is entered again after its Next"),
}
CHECKERS: dict[str, Callable[[Definition, dict[str, Any]], list[str]]] = {
    "coverage": lambda d, _: rollback_coverage_problems(d),
    "retry": retry_problems,
    "reachability": lambda d, _: unreachable_states(d),
    "default": lambda d, _: choices_without_default(d),
    "dangling": lambda d, _: dangling_transitions(d),
    "finish": lambda d, _: states_that_never_finish(d),
    "reentry": lambda d, _: rollback_reentries(d),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_checker_finds_its_defect(mutation: str, definition: Definition, resources: dict[str, Any]) -> None:
    mutate, checker, expected = MUTATIONS[mutation]
    broken = copy.deepcopy(definition)
    mutate(broken)
    problems = CHECKERS[checker](broken, resources)
    assert any(expected in problem for problem in problems), problems


def test_rollback_guarded_on_both_of_its_exits_is_accepted(definition: Definition) -> None:
    """PublishFailed leaving for PromotionFailed when $.rollback or $.rollback_error is present ends every loop."""
    fixed = copy.deepcopy(definition)
    fixed["States"]["PublishFailed"]["Choices"] = [
        {"Variable": "$.rollback", "IsPresent": True, "Next": "PromotionFailed"},
        {"Variable": "$.rollback_error", "IsPresent": True, "Next": "PromotionFailed"},
    ]
    assert rollback_reentries(fixed) == []
    fixed["States"]["PublishFailed"]["Choices"] = [
        {
            "Or": [{"Variable": path, "IsPresent": True} for path in ("$.rollback", "$.rollback_error")],
            "Next": "PromotionFailed",
        }
    ]
    assert rollback_reentries(fixed) == []
