"""What every command group of ``maas`` shares: consoles, settings, the SDK, errors."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from maas_ray.cli._output import Output
from maas_ray.client import MaaS
from maas_ray.errors import MaasError
from maas_ray.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

out = Console()
err = Console(stderr=True)
# Filled by the global options (the app callback) before any command runs.
overrides: dict[str, Any] = {}
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table, or json: one JSON document on stdout.")
]


def settings() -> Settings:
    """MAAS_* environment variables with the global options on top."""
    return Settings(**overrides)


def sdk() -> MaaS:
    """An SDK client for the platform these settings name."""
    return MaaS(settings())


@contextmanager
def spinner(title: str) -> Iterator[Callable[[str], None]]:
    """A transient spinner on stderr; yields the callback that updates its text."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(title)
        yield lambda text: bar.update(task, description=f"{title}: {text}")


def fail(exc: MaasError) -> NoReturn:
    """A MaasError as a red ``error:`` line on stderr; exit 1."""
    err.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a MaasError out of ``command`` into :func:`fail` (red ``error:``, exit 1).

    functools.wraps keeps the name, docstring and (through ``__wrapped__``) the
    signature and Annotated options that typer reads.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except MaasError as exc:
            fail(exc)

    return wrapper


def invalid(exc: Any) -> NoReturn:
    """A pydantic ValidationError as a one-line message naming the flag; exit 2."""
    first = exc.errors()[0]
    text = str(first["msg"]).removeprefix("Value error, ")
    loc, given = tuple(first["loc"]), first["input"]
    if loc == ("batching", "batch_wait_timeout_s"):  # the flag is in milliseconds
        loc, given = ("batch_wait_ms",), given * 1000
        text = text.replace("less than or equal to 1", "at most 1000 (ms)")
    elif loc[:1] == ("batching",) and len(loc) > 1:
        loc = loc[1:]
    elif loc in (("predict_timeout_s",), ("max_queued_requests",)):
        loc = (str(loc[0]).removesuffix("_s").removesuffix("_requests"),)
    if loc:
        text = f"--{str(loc[0]).replace('_', '-')}: got {given!r}, {text}"
    err.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def parse_tags(pairs: list[str] | None) -> dict[str, str]:
    """``--tag KEY=VALUE`` flags as a dict; a pair without ``=`` is a usage error."""
    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"got '{pair}' for --tag: use KEY=VALUE")
        tags[key] = value
    return tags
