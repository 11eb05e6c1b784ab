"""The processes of an ensemble and of the runtime manager.

Each process core is a pure object: ``handle(message, now)`` returns the
messages it produces, ``next_deadline()``/``on_timer(now)`` expose its
timers. ``NetworkManager`` is the network-manager process whole (its core,
the transport endpoint and the codec), as I/O-free as the cores. No I/O, no
sleeping, no clock of their own: the simulated shell and the device shell
drive the very same objects.
"""
