"""Prometheus metrics of the recorder, read from the cameras at each scrape.

Besides the recorder's own counters, a camera connected over protocol 2
gives the numeric health figures of :data:`tcpcam.record.health.GAUGES`
(one fixed set of names, one ``camera`` label: a camera cannot add metrics).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from tcpcam.record.health import GAUGES, numeric

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from twisted.web.resource import IResource

    from tcpcam.record.service import RecorderService

#: (metric name, help, kind, status key) for each per-camera metric.
_METRICS = (
    ("tcpcam_frames", "Good frames received from the camera.", "counter", "frames"),
    ("tcpcam_frame_bytes", "Bytes of good frames received from the camera.", "counter", "bytes"),
    ("tcpcam_bad_frames", "Frames that were not whole JPEGs (not stored).", "counter", "bad_frames"),
    ("tcpcam_dropped_frames", "Good frames not stored (disk errors or a full writer queue).", "counter",
     "dropped_frames"),
    ("tcpcam_disk_dropped_frames", "Good frames not stored because of disk errors.", "counter",
     "disk_dropped_frames"),
    ("tcpcam_queue_dropped_frames", "Good frames not stored because the disk writer's queue was full.",
     "counter", "queue_dropped_frames"),
    ("tcpcam_written_frames", "Frames written to the disk.", "counter", "written_frames"),
    ("tcpcam_written_bytes", "Bytes of frames written to the disk.", "counter", "written_bytes"),
    ("tcpcam_disk_errors", "Failed writes of frames.", "counter", "disk_errors"),
    ("tcpcam_reconnects", "Connections made after the first one.", "counter", "reconnects"),
    ("tcpcam_lost_frames", "Frames the camera captured that never reached the recorder (protocol 2, counted from"
     " sequence numbers).", "counter", "lost_frames"),
    ("tcpcam_protocol", "Protocol of the camera's connection: 1 (legacy) or 2.", "gauge", "protocol"),
    ("tcpcam_connect_failures", "Failed connection attempts.", "counter", "connect_failures"),
    ("tcpcam_connected", "1 while the camera is connected.", "gauge", "connected"),
    ("tcpcam_fps", "Frames per second over the last few seconds.", "gauge", "fps"),
    ("tcpcam_last_frame_age_seconds", "Seconds since the last good frame.", "gauge",
     "last_frame_age"),
    ("tcpcam_viewers", "Live viewers of the camera's MJPEG stream.", "gauge", "viewers"),
    ("tcpcam_motion_analysed_frames", "Frames the motion detector analysed.", "counter", "motion_analysed"),
    ("tcpcam_motion_skipped_frames", "Frames the motion detector skipped because it was behind.", "counter",
     "motion_skipped"),
    ("tcpcam_motion_events", "Motion events begun.", "counter", "motion_events"),
    ("tcpcam_motion_active", "1 while a motion event goes on.", "gauge", "motion_active"),
    ("tcpcam_motion_score", "Share of the picture that changed in the last analysed frame.", "gauge",
     "motion_score"),
)


class RecorderCollector:
    """A prometheus_client collector over a recorder's cameras."""

    def __init__(self, recorder: RecorderService) -> None:
        self.recorder = recorder

    def collect(self) -> Iterator[Metric]:
        """Yield one metric family per metric, one sample per camera."""
        statuses = {name: camera.status() for name, camera in list(self.recorder.cameras.items())}
        for name, documentation, kind, key in _METRICS:
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                name, documentation, labels=["camera"])
            for camera, status in statuses.items():
                value = status.get(key)
                if value is not None:
                    family.add_metric([camera], float(value))
            yield family
        # Health figures only while the camera is connected over protocol 2: an old figure is no gauge.
        healthy = {camera: status["health"] for camera, status in statuses.items()
                   if status["connected"] and status["protocol"] == 2}
        for figure, name, documentation in GAUGES:
            gauge = GaugeMetricFamily(name, documentation, labels=["camera"])
            for camera, health in healthy.items():
                number = numeric(health.get(figure))
                if number is not None:
                    gauge.add_metric([camera], number)
            yield gauge


def metricsResource(recorder: RecorderService) -> IResource:
    """Return the twisted.web resource serving the recorder's metrics."""
    from prometheus_client.twisted import MetricsResource

    registry = CollectorRegistry()
    registry.register(RecorderCollector(recorder))
    for collector in getattr(recorder, "extraCollectors", ()):
        registry.register(collector)
    return MetricsResource(registry=registry)
