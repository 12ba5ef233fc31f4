"""Prometheus metrics of a fleet member: per recorder (leases, moves, NATS, spool, uploads) and per camera (holder).

The recorder's own per-camera metrics (:mod:`tcpcam.record.metrics`) cover
the cameras this member records; these add the fleet's view.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from tcpcam.fleet.service import FleetService


class FleetCollector:
    """A prometheus_client collector over one fleet member."""

    def __init__(self, service: FleetService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        """Yield the fleet's metric families."""
        service = self.service
        labels = ["recorder"]
        me = [service.recorderId]

        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, documentation, labels=labels)
            family.add_metric(me, float(value))
            return family

        def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, documentation, labels=labels)
            family.add_metric(me, float(value))
            return family

        spool, uploader, keeper = service.spool, service.uploader, service.keeper
        yield gauge("tcpcam_fleet_connected", "1 while connected to NATS.", service.link.connected)
        yield gauge("tcpcam_fleet_leases", "Camera leases this recorder holds.", len(service.leases))
        yield gauge("tcpcam_fleet_live_recorders", "Recorders this one sees alive.", len(service.liveRecorders()))
        yield gauge("tcpcam_fleet_lease_seconds", "The fleet's lease time.", service.terms.ttl)
        yield counter("tcpcam_fleet_leases_taken", "Leases taken.", service.taken)
        yield counter("tcpcam_fleet_leases_released", "Leases given back (balancing or stopping).", service.released)
        yield counter("tcpcam_fleet_leases_expired", "Cameras stopped because their lease could not be renewed.",
                      service.expired)
        yield counter("tcpcam_fleet_lease_renewals", "Lease renewals that succeeded.", keeper.renewals if keeper else 0)
        yield counter("tcpcam_fleet_lease_renewal_failures", "Lease renewals that got no answer.",
                      keeper.failedRenewals if keeper else 0)
        yield counter("tcpcam_fleet_nats_disconnects", "Times the NATS connection dropped.", service.link.disconnects)
        yield gauge("tcpcam_fleet_events_queued", "Events waiting for NATS.", service.events.queued)
        yield counter("tcpcam_fleet_events_published", "Events published.", service.events.published)
        yield counter("tcpcam_fleet_events_dropped", "Events dropped because their queue was full.",
                      service.events.dropped)
        yield gauge("tcpcam_fleet_spool_bytes", "Bytes of segments waiting for the object store.",
                    spool.bytes if spool else 0)
        yield gauge("tcpcam_fleet_spool_limit_bytes", "Bytes the spool may hold.", spool.maxBytes if spool else 0)
        yield gauge("tcpcam_fleet_spool_entries", "Uploads waiting.", spool.waiting if spool else 0)
        yield counter("tcpcam_fleet_spool_refused",
                      "Times a segment waited in the local store for room in the spool.", spool.refused if spool else 0)
        yield counter("tcpcam_fleet_uploaded_segments", "Segments uploaded.",
                      uploader.uploadedSegments if uploader else 0)
        yield counter("tcpcam_fleet_uploaded_bytes", "Bytes of segments uploaded.",
                      uploader.uploadedBytes if uploader else 0)
        yield counter("tcpcam_fleet_upload_failures", "Uploads that failed (and were retried).",
                      uploader.failures if uploader else 0)
        yield gauge("tcpcam_fleet_upload_failing", "1 while the object store cannot be reached.",
                    uploader.failing if uploader else 0)
        held = GaugeMetricFamily("tcpcam_fleet_camera_held",
                                 "1 for each camera of the fleet and the recorder holding it.",
                                 labels=["camera", "holder"])
        holders = service.holders()
        for name in sorted(service.cameraEntries()):
            held.add_metric([name, holders.get(name, "")], 1.0 if name in holders else 0.0)
        yield held
