"""Types of the C module built from _yamlfast.c (see its header comment)."""

from collections.abc import Callable
from typing import Any

def configure(locmap: type[dict[Any, Any]], loclist: type[list[Any]]) -> None: ...
def load(text: str | bytes, source: str, resolve: Callable[[str], Any]) -> Any: ...
