"""``python:`` drivers the component tests name: ``python:tests.components.fake_drivers:NAME``.

Each records what happens to it in ``LOG`` as ``(event, ensemble, component, ...)``.
"""
LOG = []

NOT_A_FUNCTION = 3


class _Logged:
    """A handle that logs its opening and its closing."""

    def __init__(self, component, env):
        self.component, self.env = component, env
        LOG.append(("open", env.ensemble, component.name))

    def close(self):
        LOG.append(("close", self.env.ensemble, self.component.name))


class Counter(_Logged):
    """Reads 1, 2, 3, ..."""

    n = 0

    def read(self):
        self.n += 1
        return self.n


def counter(component, env):
    return Counter(component, env)


class _Clock:
    def __init__(self, env):
        self.env = env

    def read(self):
        return self.env.now() // 1000  # a sensor that is a function of time: ms of the root clock


class Valve(_Logged):
    """Takes writes (logged); a read gives the last one."""

    value = None

    def write(self, value):
        self.value = value
        LOG.append(("write", self.env.ensemble, self.component.name, value))

    def read(self):
        return self.value


def valve(component, env):
    return Valve(component, env)


class _Unplugged:
    def read(self):
        raise OSError("sensor unplugged")


def unplugged(component, env):
    return _Unplugged()


def refuses(component, env):
    raise OSError("no such bus")


def nothing(component, env):
    return 42  # neither read() nor write()


def told(component, env):
    """Logs what a driver is told: its component and the environment."""
    LOG.append(("told", env.ensemble, component.name, component.kind, dict(component.attributes), env.simulated,
                env.seed, env.sysfs_root))
    return _Clock(env)


class _Exits(_Logged):
    """A driver that calls sys.exit() where it fails (a library's "fatal error" path)."""

    def read(self):
        raise SystemExit(3)

    def close(self):
        super().close()
        raise SystemExit(4)


def exits(component, env):
    return _Exits(component, env)


def exits_on_open(component, env):
    raise SystemExit(5)
