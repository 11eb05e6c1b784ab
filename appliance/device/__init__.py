"""The device shell: an ensemble's processes as OS processes on shared-memory queues,
talking to other ensembles over UDP. The same cores and network manager as the
simulator; this package only feeds, drains and waits."""
