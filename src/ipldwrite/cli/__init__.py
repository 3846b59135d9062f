"""The ``ipldwrite`` command line: a thin shell over the library."""

from ipldwrite.cli._main import main

__all__ = ["main"]
