"""People's actions in the local runtime: a data scientist approving or rejecting a candidate, an operator asking for
a rollback, each made as they make it on AWS (UpdateModelPackage in the Model Registry, as their IAM identity), and
who the Model Registry records as the caller of each call."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from local.errors import UsageError
from local.live_stack import ACCOUNT, Clients
from local.production import load_model_catalog

if TYPE_CHECKING:
    from local.iam.identities import Identities


class Decision(BaseModel):
    """How the run answers AwaitApproval: approve or reject as someone, or not at all (let it expire).

    `by` is a catalog approver's name: the runtime plays their IAM identity (their role, with their session name)
    and changes the candidate's status in the Model Registry as they would. `role` / `session` play any other
    identity instead (someone who is not an approver, with or without the approvers' policy)."""

    model_config = ConfigDict(frozen=True)

    decision: Literal["approve", "reject", "none"]
    by: str | None = None
    comment: str = ""
    role: str | None = None  # an IAM role name to play instead of the approver's
    session: str | None = None
    grant: bool = True  # the played role holds the stack's approvers' policy (False: no policy at all)

    @classmethod
    def approve(cls, by: str, comment: str = "approved in the local runtime") -> Decision:
        return cls(decision="approve", by=by, comment=comment)

    @classmethod
    def reject(cls, by: str, comment: str = "rejected in the local runtime") -> Decision:
        return cls(decision="reject", by=by, comment=comment)

    @classmethod
    def no_answer(cls) -> Decision:
        return cls(decision="none")


def _session_name(name: str) -> str:
    """A person's name as an STS session name (the characters and length AssumeRole accepts)."""
    return re.sub(r"[^\w+=,.@-]", "-", name)[:64]


class People:
    """The catalog's approvers and operators (or anyone else), acting on the live stack as their own IAM identity."""

    def __init__(
        self,
        clients: Clients,
        iam: Identities | None,
        models_dir: Path,
        table_name: Callable[[], str],
        drain: Callable[[], None],
    ) -> None:
        self.clients, self.iam, self.models_dir = clients, iam, models_dir
        self._table_name, self._drain = table_name, drain
        self._persons = threading.local()  # the people this thread plays (role ARN, session), innermost last

    # -- approvals -------------------------------------------------------------------------------------------
    def pending_package(self, model: str, tuning_job_name: str) -> str:
        """The candidate package AwaitApproval registered for this tuning job's promotion."""
        from promotion.intake.approval import approval_key

        item = self.clients.dynamodb.get_item(
            TableName=self._table_name(), Key=approval_key(model, tuning_job_name), ConsistentRead=True
        ).get("Item")
        if item is None or "model_package_arn" not in item:
            raise UsageError(f"no candidate of {model} from {tuning_job_name} is registered for approval")
        return str(item["model_package_arn"]["S"])

    def decision_identity(self, model: str, decision: Decision) -> tuple[str, str]:
        """(role name, session name) the runtime plays for `decision`."""
        if decision.role is not None:
            return decision.role, decision.session or "local"
        approver = load_model_catalog(self.models_dir, model).approval.approver_named(decision.by or "")
        if approver is None or approver.role is None:
            raise UsageError(
                f"{decision.by!r} is not a role-based approver of {model}: name one of the catalog's approvers, or "
                "give the role and session to play"
            )
        return approver.role, approver.session or _session_name(approver.name)

    def send_decision(self, model: str, tuning_job_name: str, decision: Decision) -> None:
        """A data scientist's decision, made as they make it: UpdateModelPackage on the candidate's package in the
        Model Registry, as their IAM identity. SageMaker's state change event then reaches the product's rule."""
        if decision.decision == "none" or (decision.by is None and decision.role is None):
            return
        package_arn = self.pending_package(model, tuning_job_name)
        role, session = self.decision_identity(model, decision)
        status = "Approved" if decision.decision == "approve" else "Rejected"
        kind: Literal["approver"] | None = "approver" if decision.grant else None
        self.person_call(
            kind,
            role,
            session,
            "sagemaker",
            "update_model_package",
            ModelPackageArn=package_arn,
            ModelApprovalStatus=status,
            ApprovalDescription=decision.comment,
        )
        self._drain()

    # -- rollbacks -------------------------------------------------------------------------------------------
    def reject_release(self, model: str, package_arn: str, reason: str, role: str, session: str, grant: bool) -> None:
        """An operator's rollback request as `promote rollback` makes it: the release's package set to Rejected in
        the Model Registry (with the operators' policy unless `grant` is False)."""
        self.person_call(
            "operator" if grant else None,
            role,
            session,
            "sagemaker",
            "update_model_package",
            ModelPackageArn=package_arn,
            ModelApprovalStatus="Rejected",
            ApprovalDescription=reason,
        )

    def control_rollout(
        self, package_arn: str, request: str, reason: str, role: str, session: str, grant: bool
    ) -> None:
        """An operator's request to a running rollout as `promote pause|resume|abort|promote-now` makes it: the
        candidate package's model lifecycle set to stage Rollout with the request as its status (with the operators'
        policy unless `grant` is False)."""
        from promotion.rollout.control import STAGE

        self.person_call(
            "operator" if grant else None,
            role,
            session,
            "sagemaker",
            "update_model_package",
            ModelPackageArn=package_arn,
            ModelLifeCycle={"Stage": STAGE, "StageStatus": request, "StageDescription": reason},
        )

    def operator_identity(
        self, model: str, by: str | None, role: str | None = None, session: str | None = None
    ) -> tuple[str, str]:
        """(role name, session name) the runtime plays for a rollback request: `role`/`session` as given, else the
        catalog operator `by` (default: the first)."""
        if role is not None:
            return role, session or "local"
        operators = load_model_catalog(self.models_dir, model).operators
        operator = next((one for one in operators if by is None or one.name == by), None)
        if operator is None or operator.role is None:
            raise UsageError(
                f"{by or 'nobody'!r} is not a role-based operator of {model}: name one of the catalog's operators, "
                "or give the role and session to play"
            )
        return operator.role, operator.session or _session_name(operator.name)

    # -- acting as someone -----------------------------------------------------------------------------------
    def person_call(
        self,
        kind: Literal["approver", "operator"] | None,
        role: str,
        session: str,
        service: str,
        operation: str,
        **params: Any,
    ) -> Any:
        """One API call made as a person: role `role` (holding the stack's managed policy for `kind`, or nothing
        when `kind` is None) in session `session`. With IAM enforced the role's policies decide; either way the
        Model Registry records this identity as the caller, as SageMaker records the authenticated principal."""
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        client = self.clients.new(service)  # made now: the enforcement's hooks apply to it
        with self._playing(role_arn, session):
            if self.iam is None:
                return getattr(client, operation)(**params)
            if self.iam.person_role(kind, role) is None:
                raise UsageError(f"the template ships no {kind}s' managed policy to act with")
            with self.iam.person(role_arn, session):
                return getattr(client, operation)(**params)

    @contextmanager
    def _playing(self, role_arn: str, session: str) -> Iterator[None]:
        self._persons.__dict__.setdefault("stack", []).append((role_arn, session))
        try:
            yield
        finally:
            self._persons.stack.pop()

    def caller(self) -> tuple[str, str] | None:
        """Who makes the current call, for the Model Registry's records: a person the runtime plays, else the
        principal IAM enforcement says acts (a function's role), else the account owner (None)."""
        stack = self._persons.__dict__.get("stack") or []
        if stack:
            return cast(tuple[str, str], stack[-1])
        principal = self.iam.enforcer.current() if self.iam is not None else None
        if principal is not None and principal.arn is not None:
            return principal.arn, principal.session
        return None
