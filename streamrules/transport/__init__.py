"""Transport: the edges of the flow where records enter and leave (docs/interfaces.md 4).

- ``base``: the ``Transport`` protocol the service (``streamrules.app``) drives, and
  ``OutRecord``;
- ``kafka``: aiokafka consumer group member and producer (at-least-once or transactional),
  plus the producer of ``streamrules produce`` and the follower of ``streamrules tail``;
- ``kafka_admin``: topics and broker readiness;
- ``memory``: an in-memory broker for tests.

Only ``kafka`` and ``kafka_admin`` import aiokafka; nothing is imported here, so that
``streamrules.transport.memory`` works without it.
"""
