"""Settings that cannot work are refused before any socket or process exists: one line on
stderr naming the flag, or the configuration file and its key, exit status 2, no traceback."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from appliance.device.config import ConfigError, checked_address, load_config, merged

#: A bound on a command that must refuse at once (not a pace: it never waits on the network).
REFUSED_WITHIN = 60


def _ensemble(*argv):
    """``appliance ensemble ARGV``: (exit status, stderr). One that was not refused is stopped with
    SIGTERM, so it takes its process tree and shared memory down with it."""
    process = subprocess.Popen([sys.executable, "-m", "appliance", "ensemble", *argv], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=REFUSED_WITHIN)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate()
    return process.returncode, stderr


def _refused(argv, *named):
    code, stderr = _ensemble(*argv)
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("appliance ensemble: error: "), stderr
    for text in named:
        assert text in stderr, stderr
    return stderr


def _config(tmp_path, text, name="e.json"):
    path = tmp_path / name
    path.write_text(text if isinstance(text, str) else json.dumps(text))
    return str(path)


def _key(tmp_path, text, name="cluster.key"):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(str(path), 0o600)
    return str(path)


# -- on the command line ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, named", [
    (["--listen", "127.0.0.1:70000"], ["--listen: ", "'127.0.0.1:70000'", "0-65535"]),  # bound 4464
    (["--listen", "127.0.0.1:²"], ["--listen: ", "0-65535"]),  # a ValueError traceback
    (["--listen", ":8225"], ["--listen: ", "no host"]),
    (["--rtm", "127.0.0.1:0"], ["--rtm: ", "port 0"]),
    (["--advertise", "127.0.0.1:0"], ["--advertise: ", "port 0"]),
    (["--rtm", "0.0.0.0:8225"], ["--rtm: ", "wildcard"]),
    (["--rtm", "[::1]:8225"], ["--rtm: [::1]:8225 is IPv6", "--listen: 127.0.0.1:0 is IPv4"]),
    (["--advertise", "[::1]:8225"], ["--advertise: [::1]:8225 is IPv6", "--listen: 127.0.0.1:0 is IPv4"]),
    (["--listen", "[::1]:0"], ["--rtm: 127.0.0.1:9 is IPv4", "--listen: [::1]:0 is IPv6"]),
    (["--rtm", "%s.example:8225" % ("a" * 64)], ["--rtm: ", "host name"]),  # a UnicodeError traceback
    (["--cluster-key", "/nonexistent/cluster.key"], ["--cluster-key: /nonexistent/cluster.key: cannot read"]),
    (["--cluster-key", ""], ["--cluster-key: is empty"]),
])
def test_a_bad_flag_is_one_line_naming_it(argv, named):
    base = {"--name": "e1", "--rtm": "127.0.0.1:9", "--listen": "127.0.0.1:0"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    _refused([part for pair in base.items() for part in pair], *named)


def test_the_default_listen_address_is_named_when_its_family_does_not_fit():
    _refused(["--name", "e1", "--rtm", "[::1]:8225"], "--rtm: [::1]:8225 is IPv6",
             "--listen (the default): 0.0.0.0:8225 is IPv4")


def test_a_wildcard_listen_without_an_advertised_address_names_where_it_came_from(tmp_path):
    """Was: always "--listen 0.0.0.0:0 is a wildcard", for the file's key and the default too."""
    _refused(["--name", "e1", "--rtm", "127.0.0.1:9", "--listen", "0.0.0.0:0"],
             "error: --listen 0.0.0.0:0 is a wildcard")
    _refused(["--name", "e1", "--rtm", "127.0.0.1:9"], "error: --listen 0.0.0.0:8225 (the default) is a wildcard")
    path = _config(tmp_path, {"name": "e1", "rtm": "127.0.0.1:9", "listen": "0.0.0.0:0"})
    _refused(["--config", path], "error: %s: key 'listen', 0.0.0.0:0, is a wildcard: give --advertise HOST:PORT "
                                 "(or 'advertise' in the configuration file)" % path)


# -- in the configuration file ------------------------------------------------------------------

def test_a_key_given_twice_is_refused_naming_the_file_and_the_key(tmp_path):
    path = _config(tmp_path, '{"name": "e1", "rtm": "127.0.0.1:9", "listen": "127.0.0.1:0", "rtm": "127.0.0.1:10"}')
    _refused(["--config", path], "%s: key 'rtm' is given twice" % path)


def test_a_key_given_twice_inside_a_component_is_refused_too(tmp_path):
    path = _config(tmp_path, '{"name": "e1", "components": [{"name": "a", "kind": "sensor", "kind": "camera"}]}')
    with pytest.raises(ConfigError, match="e.json: key 'kind' is given twice"):
        load_config(path)


@pytest.mark.parametrize("content, reason", [
    ("abc\n", "not a cluster key (one line of 64 hex digits)"),
    ("ab" * 16 + "\n", "a cluster key is 32 bytes (64 hex digits), this one is 16"),
])
def test_a_bad_cluster_key_names_the_config_file_the_key_and_the_key_file(tmp_path, content, reason):
    key = _key(tmp_path, content)
    path = _config(tmp_path, {"name": "e1", "rtm": "127.0.0.1:9", "listen": "127.0.0.1:0", "cluster_key": key})
    stderr = _refused(["--config", path])
    assert stderr == "appliance ensemble: error: %s: key 'cluster_key': %s: %s\n" % (path, key, reason)


def test_a_missing_cluster_key_names_the_config_file_and_the_key(tmp_path):
    missing = str(tmp_path / "nowhere.key")
    path = _config(tmp_path, {"name": "e1", "rtm": "127.0.0.1:9", "listen": "127.0.0.1:0", "cluster_key": missing})
    _refused(["--config", path], "%s: key 'cluster_key': %s: cannot read" % (path, missing))


@pytest.mark.parametrize("key", ["manager_public_key", "manager_key"])
def test_a_bad_manager_key_names_the_config_file_and_the_key(tmp_path, key):
    bad = _key(tmp_path, "not a pem\n", "manager")
    path = _config(tmp_path, {key: bad})
    with pytest.raises(ConfigError, match="^%s: not " % re.escape("%s: key %r: %s" % (path, key, bad))):
        merged(path, {})


@pytest.mark.parametrize("settings, named", [
    ({"listen": "127.0.0.1:70000"}, "key 'listen': address must be host:port with a port in 0-65535"),
    ({"rtm": "127.0.0.1:0"}, "key 'rtm': port 0"),
    ({"advertise": "10.0.0.5:0", "listen": "0.0.0.0:0"}, "key 'advertise': port 0"),
    ({"rtm": "[::1]:8225", "listen": "127.0.0.1:0"}, "key 'rtm': [::1]:8225 is IPv6 but %s: key 'listen': "
                                                     "127.0.0.1:0 is IPv4"),
    ({"listen": ""}, "key 'listen' is empty"),  # read as "not given": the default, silently
    ({"cluster_key": ""}, "key 'cluster_key' is empty"),
    ({"name": "left pi"}, "key 'name': ensemble name 'left pi' is not valid"),
])
def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path, settings, named):
    path = _config(tmp_path, dict({"name": "e1", "rtm": "127.0.0.1:9", "listen": "127.0.0.1:0"}, **settings))
    _refused(["--config", path], "%s: %s" % (path, named.replace("%s", path)))


def test_a_flag_over_a_bad_file_value_is_named_as_the_flag_and_wins(tmp_path):
    path = _config(tmp_path, {"name": "e1", "rtm": "127.0.0.1:0", "listen": "127.0.0.1:0"})
    with pytest.raises(ConfigError, match="^--rtm: port 0"):
        merged(path, {"rtm": "127.0.0.2:0"})
    assert merged(path, {"rtm": "127.0.0.1:8225"})["rtm"] == "127.0.0.1:8225"


# -- what works ---------------------------------------------------------------------------------

def test_good_settings_come_back_canonical_and_a_name_resolves_to_the_listen_family(tmp_path, monkeypatch):
    both = [(socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 8225, 0, 0)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("127.0.0.1", 8225))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: both)
    key = _key(tmp_path, "ab" * 32 + "\n")
    path = _config(tmp_path, {"name": "e1", "rtm": "manager.example:8225", "listen": "127.0.0.1:0",
                              "advertise": "127.0.0.1:8225", "cluster_key": key})
    settings = merged(path, {"name": None, "listen": None})
    assert (settings["rtm"], settings["listen"], settings["advertise"]) == ("127.0.0.1:8225", "127.0.0.1:0",
                                                                            "127.0.0.1:8225")
    assert merged(path, {"listen": "[::1]:0", "advertise": "[0::1]:8225"})["rtm"] == "[::1]:8225"


def test_a_dual_stack_listen_address_reaches_both_families(tmp_path):
    settings = merged(None, {"listen": "[::]:0", "rtm": "127.0.0.1:8225", "advertise": "[::1]:8225"})
    assert (settings["rtm"], settings["advertise"]) == ("127.0.0.1:8225", "[::1]:8225")


def test_port_0_is_only_for_the_listen_address():
    assert checked_address("127.0.0.1:0", "--listen") == "127.0.0.1:0"
    assert checked_address("0.0.0.0:0", "--listen") == "0.0.0.0:0"
    with pytest.raises(ConfigError, match="^--rtm: port 0"):
        checked_address("127.0.0.1:0", "--rtm")  # as deploy and status call it


def test_a_relative_key_file_in_the_file_is_taken_from_the_files_directory(tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    _key(tmp_path / "etc", "ab" * 32 + "\n")
    path = _config(tmp_path / "etc", {"name": "e1", "rtm": "127.0.0.1:9", "cluster_key": "cluster.key"})
    monkeypatch.chdir("/")  # where a service runs
    assert merged(path, {})["cluster_key"] == str(tmp_path / "etc" / "cluster.key")


@pytest.mark.parametrize("command, key", [("ensemble", "manager_key"), ("rtm", "rtm"), ("rtm", "manager_public_key")])
@pytest.mark.parametrize("keys", [True, False], ids=["its file exists", "its file does not"])
def test_a_key_only_the_other_command_uses_is_refused_naming_the_file(tmp_path, command, key, keys):
    """Was, for a key file that does not exist: "cannot read", as if the command used it."""
    if keys:
        subprocess.run([sys.executable, "-m", "appliance", "keygen", str(tmp_path)], check=True,
                       capture_output=True, timeout=REFUSED_WITHIN)
    value = {"rtm": "127.0.0.1:9", "manager_key": str(tmp_path / "manager.key"),
             "manager_public_key": str(tmp_path / "manager.pub")}[key]
    path = _config(tmp_path, {"name": "e1", "rtm": "127.0.0.1:9", "listen": "127.0.0.1:0", key: value}
                   if command == "ensemble" else {"name": "m", "listen": "127.0.0.1:0", key: value})
    process = subprocess.run([sys.executable, "-m", "appliance", command, "--config", path] +
                             (["--wait"] if command == "rtm" else []), capture_output=True, text=True,
                             timeout=REFUSED_WITHIN)
    assert process.returncode == 2, process.stderr
    assert process.stderr == "appliance %s: error: %s: key %r is %s: this command does not use it\n" % (
        command, path, key, "the runtime manager's, not an ensemble's" if command == "ensemble"
        else "an ensemble's, not the runtime manager's")


@pytest.mark.parametrize("foreign, listed, unlisted", [
    ({}, ["manager_key", "rtm", "name"], []),
    ({"rtm": "no", "manager_public_key": "no"}, ["manager_key", "name"], ["rtm", "manager_public_key"]),  # rtm's
])
def test_an_unknown_key_is_told_the_keys_this_command_takes(tmp_path, foreign, listed, unlisted):
    """Was: the runtime manager listed "rtm" among the keys it knows, then refused it when given."""
    path = _config(tmp_path, {"name": "m", "colour": "red"})
    with pytest.raises(ConfigError) as refused:
        merged(path, {}, foreign)
    text = str(refused.value)
    assert text.startswith("%s: unknown key 'colour' (known: " % path), text
    known = text.partition("(known: ")[2].rstrip(")").split(", ")
    assert known == sorted(known) and set(listed) <= set(known) and not set(unlisted) & set(known), text
