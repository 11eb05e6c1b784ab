"""Key files: written once, with mode 0600, loaded with errors that name the file."""
import os
import stat

import pytest

from appliance.cli import main
from appliance.keys import (
    KeyFileError,
    generate_keys,
    load_cluster_key,
    load_manager_private_key,
    load_manager_public_key,
)


def test_keygen_writes_three_secrets_with_mode_0600_that_load_and_belong_together(tmp_path, capsys):
    assert main(["keygen", str(tmp_path)]) == 0
    names = sorted(os.listdir(tmp_path))
    assert names == ["cluster.key", "manager.key", "manager.pub"]
    for name in names:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert len(load_cluster_key(str(tmp_path / "cluster.key"))) == 32
    private = load_manager_private_key(str(tmp_path / "manager.key"))
    public = load_manager_public_key(str(tmp_path / "manager.pub"))
    public.verify(private.sign(b"deploy"), b"deploy")  # raises if they do not belong together


def test_keygen_never_overwrites_and_writes_nothing_when_one_file_exists(tmp_path, capsys):
    (tmp_path / "manager.pub").write_text("keep me")
    code = main(["keygen", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "manager.pub: exists; keygen never overwrites a key" in err
    assert sorted(os.listdir(tmp_path)) == ["manager.pub"] and (tmp_path / "manager.pub").read_text() == "keep me"


def test_keygen_into_a_directory_that_does_not_exist_is_one_line(tmp_path, capsys):
    assert main(["keygen", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().endswith("nowhere: no such directory")


def test_keygen_into_an_empty_name_asks_for_a_directory(capsys):
    """Was ': no such directory', naming nothing."""
    assert main(["keygen", ""]) == 2
    assert "argument DIRECTORY: is empty: give a directory" in capsys.readouterr().err


def test_keygen_into_a_file_says_it_is_not_a_directory(tmp_path, capsys):
    (tmp_path / "keys").write_text("a file")
    assert main(["keygen", str(tmp_path / "keys")]) == 2
    assert capsys.readouterr().err.strip().endswith("keys: not a directory")


def test_a_secret_readable_by_others_is_refused(tmp_path):
    paths = generate_keys(str(tmp_path))
    os.chmod(paths["cluster.key"], 0o644)
    with pytest.raises(KeyFileError, match=r"cluster.key: readable by group or others \(mode 0644\)"):
        load_cluster_key(paths["cluster.key"])
    os.chmod(paths["manager.pub"], 0o644)  # a public key may be readable
    load_manager_public_key(paths["manager.pub"])


@pytest.mark.parametrize("content, expected", [
    ("not hex\n", "not a cluster key"),
    ("abcd\n", r"a cluster key is 32 bytes \(64 hex digits\), this one is 2"),
])
def test_a_bad_cluster_key_file_names_itself(tmp_path, content, expected):
    path = tmp_path / "cluster.key"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=expected) as info:
        load_cluster_key(str(path))
    assert str(path) in str(info.value)


def test_a_manager_key_that_is_not_one_names_itself(tmp_path):
    path = tmp_path / "manager.key"
    path.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match="manager.key: not an unencrypted PEM private key"):
        load_manager_private_key(str(path))
    with pytest.raises(KeyFileError, match="cannot read"):
        load_manager_public_key(str(tmp_path / "missing.pub"))
