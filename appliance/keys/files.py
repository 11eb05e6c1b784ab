"""Key files: what ``appliance keygen`` writes and every device reads.

| file | holds | format | on |
| --- | --- | --- | --- |
| ``cluster.key`` | the cluster key: 32 random bytes | one line of 64 hex digits | every device |
| ``manager.key`` | the runtime manager's Ed25519 private key | PKCS#8 PEM, unencrypted | the manager only |
| ``manager.pub`` | its public key | SubjectPublicKeyInfo PEM | every device |

All three are written with mode 0600 and never over an existing file (a
second keygen would silently split the cluster). A secret readable by group
or others is refused when loaded, as ssh refuses such a key: it is no longer
a secret. Every error names the file and what is wrong with it.
"""
from __future__ import annotations

import os
import stat
from typing import Dict

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.program.errors import ProgramError

CLUSTER_KEY_FILE = "cluster.key"
MANAGER_KEY_FILE = "manager.key"
MANAGER_PUBLIC_FILE = "manager.pub"
CLUSTER_KEY_SIZE = 32


class KeyFileError(ProgramError):
    """A key file that cannot be used; the message names the file."""


def generate_keys(directory: str) -> Dict[str, str]:
    """Write a new cluster key and manager key pair into ``directory``; refuse to overwrite.

    Returns ``{role: path}``. Nothing is written if any of the files exists.
    """
    paths = {name: os.path.join(directory, name) for name in (CLUSTER_KEY_FILE, MANAGER_KEY_FILE, MANAGER_PUBLIC_FILE)}
    if not os.path.isdir(directory):
        raise KeyFileError("%s: %s" % (directory, "not a directory" if os.path.exists(directory)
                                       else "no such directory"))
    existing = [path for path in paths.values() if os.path.lexists(path)]
    if existing:
        raise KeyFileError("%s: exists; keygen never overwrites a key (move it away first)" % existing[0])
    private = Ed25519PrivateKey.generate()
    contents = {
        CLUSTER_KEY_FILE: os.urandom(CLUSTER_KEY_SIZE).hex() + "\n",
        MANAGER_KEY_FILE: private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode("ascii"),
        MANAGER_PUBLIC_FILE: private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii"),
    }
    for name, text in contents.items():
        _write_new(paths[name], text)
    return paths


def _write_new(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError("%s: exists; keygen never overwrites a key (move it away first)" % path) from None
    except OSError as exc:
        raise KeyFileError("%s: cannot write: %s" % (path, exc.strerror)) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # whatever the umask said


def _read(path: str, secret: bool) -> bytes:
    try:
        with open(path, "rb") as handle:
            if secret:
                mode = os.fstat(handle.fileno()).st_mode
                if mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise KeyFileError("%s: readable by group or others (mode %04o): it is no longer a secret; "
                                       "chmod 600 it" % (path, stat.S_IMODE(mode)))
            return handle.read(64 * 1024)
    except OSError as exc:
        raise KeyFileError("%s: cannot read: %s" % (path, exc.strerror)) from None


def load_cluster_key(path: str) -> bytes:
    text = _read(path, secret=True).strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError("%s: not a cluster key (one line of %d hex digits)" % (path, 2 * CLUSTER_KEY_SIZE)) from None
    if len(key) != CLUSTER_KEY_SIZE:
        raise KeyFileError("%s: a cluster key is %d bytes (%d hex digits), this one is %d"
                           % (path, CLUSTER_KEY_SIZE, 2 * CLUSTER_KEY_SIZE, len(key)))
    return key


def load_manager_private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, secret=True), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("%s: not an unencrypted PEM private key: %s" % (path, exc)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("%s: the manager's key is Ed25519, this one is a %s" % (path, type(key).__name__))
    return key


def load_manager_public_key(path: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read(path, secret=False))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError("%s: not a PEM public key: %s" % (path, exc)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError("%s: the manager's key is Ed25519, this one is a %s" % (path, type(key).__name__))
    return key
