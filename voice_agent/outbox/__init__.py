"""Everything that leaves the process goes through here: stored first, delivered later.

Producers enqueue an OutboxMessage (``OutboxRepository.enqueue``, or ``WriteQueue.put`` on
the call path); an OutboxWorker claims due messages per topic, hands them to the topic's
Delivery, and records what happened: delivered, rejected for good, or retried with backoff.
"""

from voice_agent.outbox.delivery import Delivered, Delivery, Gate, Outcome, Rejected, Retry
from voice_agent.outbox.worker import OutboxWorker, backoff_s
from voice_agent.storage.outbox import OutboxItem, OutboxRepository, TopicStats
from voice_agent.storage.records import OutboxMessage

__all__ = [
    "Delivered",
    "Delivery",
    "Gate",
    "OutboxItem",
    "OutboxMessage",
    "OutboxRepository",
    "OutboxWorker",
    "Outcome",
    "Rejected",
    "Retry",
    "TopicStats",
    "backoff_s",
]
