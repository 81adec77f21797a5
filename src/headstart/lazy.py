"""Names of a package that load on first use (PEP 562), so importing the package stays cheap."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_attributes(package: str, table: dict[str, str],
                    namespace: dict) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for names that load from other modules on first use.

    Args:
        package: the package's ``__name__``, for the error of an unknown name.
        table: public name -> the module that defines it.
        namespace: the package's ``globals()``; a loaded name is kept there, so it loads once.

    Returns:
        (``__getattr__``, ``__dir__``) to assign in the package's ``__init__``.
    """
    def __getattr__(name: str):
        if name in table:
            value = getattr(import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
