"""The synthesized stack, live in moto: the mock started, its resources built from the template, boto3 clients on
it, and what the template tells the functions (their environment) read back for the rest of the runtime."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Self

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

from local.errors import UsageError
from local.template import StackTemplate
from local.world import World, WorldBuilder, find_function

ACCOUNT = "123456789012"
REGION = "us-east-1"
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@cache
def _shared_loader() -> Loader:
    """botocore's data loader, made once per process (it keeps every model it parsed)."""
    loader: Loader = botocore.session.get_session().get_component("data_loader")
    return loader


def default_session_with_shared_models() -> boto3.session.Session:
    """A default boto3 session whose API models come from one loader per process.

    moto empties `boto3.DEFAULT_SESSION` at each mock start, and a new session re-reads every service's model from
    botocore's JSON files (SageMaker's alone is megabytes): about a second per runtime. The models are botocore's
    static API descriptions, the same for every runtime, so they are parsed once; credentials, hooks and clients
    stay per session."""
    core = botocore.session.get_session()
    loader = _shared_loader()
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core)
    paths = loader.search_paths  # each boto3 session appends its own data folder to the loader's paths
    paths[:] = list(dict.fromkeys(paths))
    return session


def new_client(service: str, environment_lock: Any, **options: Any) -> Any:
    """A boto3 client made while no in-process function has its environment swapped into os.environ: botocore reads
    the process environment as it makes a client, and a function putting its keys back meanwhile breaks that read."""
    with environment_lock if environment_lock is not None else nullcontext():
        return boto3.client(service, **options)


@dataclass
class Clients:
    """boto3 clients on moto, made after the mock started."""

    region: str
    # local.lambdas' environment lock, once the functions run: a client is made under it (see new_client)
    environment_lock: Any = None
    _made: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._made:
            self._made[service] = new_client(
                service,
                self.environment_lock,
                region_name=self.region,
                config=Config(retries={"mode": "standard", "max_attempts": 2}),
            )
        return self._made[service]

    def new(self, service: str) -> Any:
        """A fresh client (not cached): made now, so hooks registered since (IAM enforcement) apply to it."""
        return new_client(service, self.environment_lock, region_name=self.region)


def reset_domain_clients() -> None:
    """The domain package caches boto3 clients per process; they must not outlive one mock."""
    clients = sys.modules.get("promotion.core.clients")
    if clients is not None:
        clients.reset_clients()


class LiveStack:
    """moto started with the stack's resources in it; `stop` restores the process environment it changed."""

    def __init__(self) -> None:
        self.clients = Clients(REGION)
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._world: World | None = None

    def start(self, stack: StackTemplate) -> Self:
        """Start moto (Step Functions executing state machines) and build `stack`'s resources in it."""
        from moto import mock_aws  # heavy: only once a run starts

        self._saved_env = {key: os.environ.get(key) for key in _FAKE_ENV}
        os.environ.update(_FAKE_ENV)
        self._mock = mock_aws(
            config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        )
        self._mock.start()
        boto3.DEFAULT_SESSION = default_session_with_shared_models()  # moto's patch puts the original back at stop
        self._world = WorldBuilder(stack, self.clients, account=ACCOUNT, region=REGION).build()
        # The people's shell: `promote` finds the table here. Set once for the runtime's life, not per command:
        # a command that swapped it in and out would race the functions running meanwhile in other threads
        # (each sets its own environment over the process's and puts back what it found).
        for variable, function_variable in (
            ("PROMOTION_TABLE", "PROMOTION_TABLE"),
            ("PROMOTION_CONFIG_BUCKET", "CONFIG_BUCKET"),
        ):
            value = self.optional_function_env(function_variable)
            if value is not None:
                self._saved_env.setdefault(variable, os.environ.get(variable))
                os.environ[variable] = value
        return self

    @property
    def running(self) -> bool:
        return self._mock is not None and self._world is not None

    def stop(self) -> None:
        """Stop moto and put the environment back, whatever fails on the way (the next runtime starts clean)."""
        try:
            if self._mock is not None:
                mock, self._mock = self._mock, None
                mock.stop()
        finally:
            reset_domain_clients()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env = {}

    # -- what the template says ------------------------------------------------------------------------------
    @property
    def world(self) -> World:
        if self._world is None:
            raise RuntimeError("the local runtime is not started")
        return self._world

    @property
    def built(self) -> World | None:
        """The world, or None before it is built."""
        return self._world

    @property
    def state_machine_arn(self) -> str:
        return self.world.state_machine_arn()

    def function_env(self, name: str) -> str:
        """The one value of `name` the stack's functions share (CONFIG_BUCKET, PROMOTION_TABLE, ...)."""
        values = {spec.environment[name] for spec in self.world.functions.values() if name in spec.environment}
        if len(values) != 1:
            raise UsageError(f"the stack's functions do not agree on one {name} (found {sorted(values) or 'none'})")
        return values.pop()

    def optional_function_env(self, name: str) -> str | None:
        """The functions' one value of `name`, or None when the stack sets none (a stack without a job image)."""
        try:
            return self.function_env(name)
        except UsageError:
            return None

    def lambda_states(self) -> dict[str, str]:
        """State name -> logical id of the function behind it, for every Lambda task of the promotion state machine."""
        world = self.world
        found: dict[str, str] = {}

        def visit(states: dict[str, Any]) -> None:
            for name, state in states.items():
                for branch in state.get("Branches", []):
                    visit(branch.get("States", {}))
                for key in ("Iterator", "ItemProcessor"):
                    if key in state:
                        visit(state[key].get("States", {}))
                if state.get("Type") != "Task":
                    continue
                resource = str(state.get("Resource", ""))
                reference = resource
                if resource.startswith("arn:aws:states:::lambda:invoke"):
                    reference = str(state.get("Parameters", {}).get("FunctionName", ""))
                spec = find_function(world.functions, reference)
                if spec is not None:
                    found[name] = spec.logical_id

        visit(world.definitions[world.state_machine_arn()].get("States", {}))
        return found
