"""The exception tree of freeoffload.

Every error the project raises derives from :class:`FreeOffloadError`::

    FreeOffloadError
    +-- ConfigError            a user's file or argument is wrong (carries every Problem)
    |   +-- TopologyError      a CR-map file
    |   +-- TaskError          a task file
    |   +-- PolicyError        a policy source, package or signature
    |   +-- ProbeSpecError     a probe's YAML description
    |   +-- AgentConfigError   an agent's configuration
    +-- ProbeError             a probe could not be loaded, attached or read
    +-- VMError                the userspace eBPF VM
    |   +-- ProgramRejectedError   the verifier or loader refused a program (pc, code)
    |   +-- ExecutionFaultError    a program faulted at run time (pc, code)
    +-- HookError              the connect() hook library or its policy store
    +-- AgentError             the agent, its peers or its HTTP API
    +-- TestbedError           building or running the testbed

A :class:`ConfigError` holds one :class:`Problem` per thing wrong, each naming the file, line,
column and field, and prints as ``file:line:col: field: problem; hint``, one problem a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "AgentConfigError",
    "AgentError",
    "ConfigError",
    "ExecutionFaultError",
    "FreeOffloadError",
    "HookError",
    "Location",
    "PolicyError",
    "ProbeError",
    "ProbeSpecError",
    "Problem",
    "ProgramRejectedError",
    "TaskError",
    "TestbedError",
    "TopologyError",
    "VMError",
]


class Location(NamedTuple):
    """Where something stands in a file: 1-based line and column (0: the whole file).

    A named tuple rather than a dataclass: loaders make one per YAML value, and this is the
    cheapest immutable record Python has.
    """

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user's file."""

    location: Location
    field: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.field}: {self.message}" if self.field else (
            f"{self.location}: {self.message}"
        )
        return f"{text}; {self.hint}" if self.hint else text


class FreeOffloadError(Exception):
    """Root of every freeoffload error."""


class ConfigError(FreeOffloadError):
    """A user's file or argument is wrong; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one Problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def at(
        cls,
        location: Location,
        field: str,
        message: str,
        hint: str = "",
    ) -> ConfigError:
        """A ConfigError (or subclass) with a single problem."""
        return cls([Problem(location, field, message, hint)])


class TopologyError(ConfigError):
    """A CR-map file is wrong."""


class TaskError(ConfigError):
    """A task file is wrong."""


class PolicyError(ConfigError):
    """A policy source, package, manifest or signature is wrong."""


class ProbeSpecError(ConfigError):
    """A probe's YAML description does not match its program."""


class AgentConfigError(ConfigError):
    """An agent configuration file is wrong."""


class ProbeError(FreeOffloadError):
    """A probe could not be compiled, loaded, attached or read."""


class VMError(FreeOffloadError):
    """An error of the userspace eBPF VM; ``code`` is the C status, ``pc`` the instruction."""

    def __init__(self, message: str, code: int = 0, pc: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.pc = pc


class ProgramRejectedError(VMError):
    """The verifier or loader refused a program."""


class ExecutionFaultError(VMError):
    """A program faulted while running (out of bounds, budget, helper)."""


class HookError(FreeOffloadError):
    """The connect() hook library or its policy store failed."""


class AgentError(FreeOffloadError):
    """The agent, a peer agent or the HTTP API failed."""


class TestbedError(FreeOffloadError):
    """Building, running or removing the testbed failed."""

    __test__ = False  # not a pytest test class despite the name
