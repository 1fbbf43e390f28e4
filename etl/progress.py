"""A rich progress bar over a fixed number of named steps, for long jobs run from the console."""
from __future__ import annotations


class Steps:
    """``step(description)`` starts the next step (the bar counts started steps); a no-op unless
    ``enabled`` (tests, libraries)."""

    def __init__(self, enabled: bool, total: int, title: str = ""):
        self.p = None
        if enabled:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.p = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                              TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
            self.p.start()
            self.task = self.p.add_task(title, total=total)

    def step(self, description: str) -> None:
        if self.p:
            self.p.update(self.task, description=description, advance=1)

    def close(self) -> None:
        if self.p:
            self.p.stop()
