"""`Silent`: the listener that hears nothing. It implements every protocol the library reports
through (`pipeline.results.FixEvents`, `weights.progress.DownloadProgress`), and is what the
library uses when its caller passes no listener."""

from __future__ import annotations


class Silent:
    # FixEvents
    def walk_started(self, recipe: str) -> None:
        pass

    def run_started(self, info: object) -> None:
        pass

    def waiting(self, what: str | None) -> None:
        pass

    def file_started(self, job: object) -> None:
        pass

    def file_finished(self, result: object) -> None:
        pass

    def weights_notice(self, notice: object) -> None:
        pass

    # DownloadProgress
    def start(self, model: object, total: int, completed: int, source: str) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def done(self, model: object, path: object) -> None:
        pass

    def message(self, text: str) -> None:
        pass
