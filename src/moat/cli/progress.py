"""The progress display on stderr (stdout carries only the report)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from moat.inventory.scan import LayerCallback


@contextmanager
def layer_progress(enabled: bool) -> Iterator[LayerCallback | None]:
    """A callback that shows which layer is being read; silent when stderr is not a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("reading layers", total=None)

        def on_layer(index: int, total: int, name: str, cached: bool) -> None:
            state = "cached" if cached else "reading"
            progress.update(task, total=total, completed=index, description=f"{state} {name[:19]}")

        yield on_layer
