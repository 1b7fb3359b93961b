"""The passive source: TLS sessions, certificates, alerts and sightings from packet captures.

Entry points: ``analyze(path)`` (sessions of one capture), ``observe(paths, ...)`` (events
for many captures, with parsed certificates and alerts) and ``sightings_from_capture(path)``
(inventory ``Sighting``s). See docs/traffic.md.
"""

from certwarden.traffic.analyzer import CaptureStats, analyze
from certwarden.traffic.observe import observe, sightings_from_capture
from certwarden.traffic.session import TlsSession

__all__ = ["CaptureStats", "TlsSession", "analyze", "observe", "sightings_from_capture"]
