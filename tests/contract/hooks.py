"""Schemathesis hooks for the contract run (tests/contract/run.mjs loads them via SCHEMATHESIS_HOOKS).

CPython 3.11 can fail `ast.parse` with "SystemError: AST constructor recursion depth mismatch"
when two threads parse at once, and Hypothesis parses source files to describe its filters
while schemathesis generates cases in several worker threads. Parsing one at a time keeps a
run with `--workers N` from ending in that internal error.
"""

import ast
import threading

_parse = ast.parse
_lock = threading.Lock()


def _serialized_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = _serialized_parse
