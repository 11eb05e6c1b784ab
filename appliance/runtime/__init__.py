"""The process cores of an ensemble and of the runtime manager.

Each core is a pure object: ``handle(message, now)`` returns the messages it
produces, ``next_timer()``/``on_timer(now)`` expose its timers. No I/O, no
sleeping, no clock of its own: the simulated shell and the device shell drive
the very same objects.
"""
