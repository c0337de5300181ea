"""Masking of personal data in structured values and log records.

Values of named fields (``mask_value``, ``mask_fields_in_text``) are replaced by ``***``;
strings elsewhere go through :func:`maas_ray.security.masking.mask_text`, which replaces
e-mail addresses, phone numbers, card numbers and national IDs by typed placeholders.

Log records are masked by :class:`MaskingFilter`, which :func:`install_log_masking`
attaches to the handlers of the root and ``ray.serve`` loggers.

Importing this module does nothing else.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Collection, Iterable, Mapping
from numbers import Real
from typing import Any

from maas_ray.security.masking import mask_text

__all__ = [
    "MASK",
    "MaskingFilter",
    "install_log_masking",
    "install_replica_logging",
    "mask_fields_in_text",
    "mask_value",
]

MASK = "***"
"""What the value of a named field, or a quoted occurrence of it, is replaced by."""


def _field_set(fields: Collection[str]) -> frozenset[str]:
    return frozenset(field.lower() for field in fields)


def _mask_value(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str) and key.lower() in fields
                else _mask_value(item, fields)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_value(item, fields) for item in value]
    if isinstance(value, tuple):
        return tuple(_mask_value(item, fields) for item in value)
    return value


def mask_value(value: Any, fields: Collection[str] = ()) -> Any:
    """Mask personal data in a JSON-like value, recursively.

    Strings go through :func:`mask_text`; the value under any dict key named in ``fields``
    (compared case-insensitively) becomes ``"***"`` whatever it is; dicts, lists and tuples
    are rebuilt (a dict as a plain ``dict``); other values are returned unchanged, numbers
    included. Dict keys are field names, not data, and are kept as they are. The input is
    not modified.

    Args:
        value: A dict, list, tuple, string or scalar, as parsed from JSON.
        fields: Names of fields whose values are masked outright, e.g. ``("name", "ssn")``.

    Returns:
        A masked copy of ``value``.
    """
    return _mask_value(value, _field_set(fields))


def _forms(value: Any, out: set[str]) -> None:
    """Add the ways a scalar value may be quoted in a message, and recurse into containers.

    Args:
        value: A value found under a named field.
        out: Where the string forms are collected.
    """
    if isinstance(value, str):
        candidates = {
            value,
            repr(value)[1:-1],
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
        }
    elif isinstance(value, bool) or not isinstance(value, Real):
        if isinstance(value, Mapping):
            for item in value.values():
                _forms(item, out)
        elif isinstance(value, list | tuple):
            for item in value:
                _forms(item, out)
        return
    else:
        number = float(value)
        if not math.isfinite(number):
            return
        candidates = {str(value), repr(value)}
        if number.is_integer():
            candidates.add(str(int(number)))
    out.update(form for form in candidates if len(form) >= 2 and form.strip())


def _collect(node: Any, fields: frozenset[str], out: set[str]) -> None:
    """Collect the string forms of the values under named fields anywhere in ``node``.

    Args:
        node: A request body or a part of one.
        fields: Lower-cased field names.
        out: Where the string forms are collected.
    """
    if isinstance(node, Mapping):
        columns, data = node.get("columns"), node.get("data")
        if isinstance(columns, list) and isinstance(data, list):  # pandas "split" orient
            indexes = [
                index
                for index, column in enumerate(columns)
                if isinstance(column, str) and column.lower() in fields
            ]
            if indexes:
                for row in data:
                    if isinstance(row, list | tuple):
                        for index in indexes:
                            if index < len(row):
                                _forms(row[index], out)
        for key, value in node.items():
            if isinstance(key, str) and key.lower() in fields:
                _forms(value, out)
            else:
                _collect(value, fields, out)
    elif isinstance(node, list | tuple):
        for item in node:
            _collect(item, fields, out)


def mask_fields_in_text(text: str, record: Any, fields: Collection[str]) -> str:
    """Mask, in an error message, the values a record holds under named fields.

    Error messages often quote the input they reject. The values (strings and numbers)
    under keys named in ``fields`` (case-insensitive) anywhere in ``record`` are collected:
    in dicts, lists of dicts, the columns of a pandas ``split`` shape
    (``{"dataframe_split": {"columns": [...], "data": [[...]]}}``) and inside lists or dicts
    held by such a key. Every occurrence of their string form in ``text`` (also as
    :func:`repr` and JSON quote it, and an integral float also as an int) is replaced by
    ``***``; forms shorter than two characters are skipped. The result then goes through
    :func:`mask_text`.

    Occurrences are replaced as substrings: a short value (say ``42``) is masked inside
    longer numbers too, which errs on the side of hiding.

    Args:
        text: The message to mask.
        record: The input it may quote: a parsed JSON request body.
        fields: Names of the fields whose values must not appear.

    Returns:
        The masked message.
    """
    folded = _field_set(fields)
    if folded:
        forms: set[str] = set()
        _collect(record, folded, forms)
        if forms:
            ordered = sorted(forms, key=lambda form: (-len(form), form))  # longest first
            pattern = re.compile("|".join(map(re.escape, ordered)))
            text = pattern.sub(MASK, text)
    return mask_text(text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks personal data in the records it passes.

    The formatted message replaces ``record.msg`` (with ``record.args`` set to ``None``),
    so what any formatter prints is masked; the exception and stack text are rendered and
    masked here as well, before a formatter would render them unmasked. A record is masked
    once, however many handlers with this filter it passes through. Records are never
    dropped.
    """

    _DONE = "_maas_masked"

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place.

        Args:
            record: The record about to be emitted.

        Returns:
            Always True.
        """
        if getattr(record, self._DONE, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for the handler to report
            return True
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        setattr(record, self._DONE, True)
        return True


def install_log_masking(logger_names: Iterable[str] = ("", "ray.serve")) -> None:
    """Attach a :class:`MaskingFilter` to every handler of the named loggers.

    A filter on a logger does not see the records of its child loggers, but a filter on a
    handler sees every record that handler emits, so the filter goes on the handlers: those
    of the root logger (where ``maas_ray.*`` records propagate) and of ``ray.serve`` (which
    does not propagate and, in a replica, also receives ``print`` and stdout). A handler
    gets at most one MaskingFilter, so calling this again is harmless.

    Call it once per process at startup, after logging is configured: in a Serve replica,
    in the deployment's constructor (Serve has set up its handlers by then). Handlers added
    later, or Serve's handlers after a logging reconfiguration, are not covered until this
    is called again.

    Args:
        logger_names: Loggers whose handlers are covered; ``""`` is the root logger.
    """
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
                handler.addFilter(MaskingFilter())


def install_replica_logging() -> None:
    """In a Serve replica: ``maas_ray``'s INFO records (each model load and unload, with
    its duration) go to the replica's own Serve log file, masked like the rest.

    Serve gives its ``ray.serve`` logger the replica's file; ``maas_ray.*`` records would
    otherwise reach only Python's last-resort handler, which drops anything below WARNING.
    Call it in the deployment's constructor, once Serve has set up its handlers.
    """
    ours = logging.getLogger("maas_ray")
    serve_handlers = logging.getLogger("ray.serve").handlers
    if _in_replica() and serve_handlers and not ours.handlers:
        for handler in serve_handlers:
            ours.addHandler(handler)
        ours.propagate = False  # each record once, not again through the root's handlers
        ours.setLevel(logging.INFO)
    install_log_masking()


def _in_replica() -> bool:
    """Whether this process is a Serve replica (not a test or a CLI building the class)."""
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        serve.get_replica_context()
    except RayServeException:
        return False
    return True
