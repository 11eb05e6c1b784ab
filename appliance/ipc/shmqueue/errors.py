"""What can go wrong with a queue. Every message starts with the queue's name."""


class QueueError(Exception):
    """Base class of the queue's errors."""


class QueueEmpty(QueueError):
    """``get`` waited its whole timeout and nothing came."""


class QueueFull(QueueError):
    """A control message waited its whole timeout for room; it was not queued."""


class MessageTooLarge(QueueError, ValueError):
    """A message larger than its ring can ever hold; refused, nothing queued."""


class QueueCorrupt(QueueError):
    """The segment holds what no queue writes (a foreign writer, a torn or garbage
    header); the queue refuses to read it rather than read out of bounds."""


class QueueClosed(QueueError):
    """The queue was closed in this process."""
