"""After a run: alerts for what went wrong (or right again) and the metrics file, when the file asks for them."""

from __future__ import annotations

from typing import Any

from .alerts import Alert, alert_settings, notify
from .config import Project
from .health import StreamHealth, project_health
from .log import get_logger

log = get_logger("etl.watch")


def after_run(project: Project, outcome: Any) -> None:
    """Send the alerts and write the metrics ``[settings]`` configures; nothing when it configures neither."""
    settings = alert_settings(project.settings.get("alert"))
    metrics = project.settings.get("metrics")
    if settings is None and metrics is None:
        return
    health = project_health(project)
    if settings is not None:
        ran = {result.pipeline for result in outcome.results} | set(outcome.locked)
        notify(project.state_dir, settings, current_alerts(health, outcome.locked, ran), ran)
    if metrics is not None:
        from .metrics import write_metrics

        try:
            write_metrics(metrics, health, project.state_dir)
        except OSError as exc:
            log.error("cannot write metrics", path=str(metrics), error=str(exc))


def current_alerts(health: list[StreamHealth], locked: dict[str, str], pipelines: set[str]) -> list[Alert]:
    """What is wrong now with the ``pipelines``: a lock held elsewhere (warning), a stream behind its max_lag
    (warning), a failed stream (error), or every stream of a pipeline failed (critical)."""
    alerts = [Alert("warning", "locked", name, "", reason) for name, reason in locked.items()]
    for pipeline in sorted(pipelines):
        streams = [stream for stream in health if stream.pipeline == pipeline]
        failed = [stream for stream in streams if any(cause == "failed" for cause, _ in stream.problems)]
        all_failed = len(failed) == len(streams)
        for stream in streams:
            for cause, message in stream.problems:
                if cause == "stale":
                    alerts.append(Alert("warning", cause, pipeline, stream.stream, message))
                elif cause == "failed":
                    level = "critical" if all_failed else "error"
                    alerts.append(Alert(level, cause, pipeline, stream.stream, message))
    return alerts
