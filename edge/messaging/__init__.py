"""Messages out, never lost: the detections message and its JSON Schema, the disk spool, the delivery
thread, the MQTT publisher, snapshots, and the outbox that owns them.

Imports ``edge.config`` only: it reads a detection through small protocols (``payload.DetectionLike``)
and is handed the rule for "the boxes changed". Imported by ``edge.service`` and ``edge.commands``;
never by ``edge.sources``, ``edge.models`` or ``edge.detection``.
"""
