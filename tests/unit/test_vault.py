"""PI encryption at rest: round trips, rotation, tampering, key files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gateway.errors import ConfigInvalid, GatewayFault
from gateway.vault import (
    ALGORITHMS,
    KEY_FILE_FORMAT,
    SM4_GCM_AVAILABLE,
    Vault,
    VaultError,
    VaultKey,
)

AD = b"inbound/510900/0193a7c2-message/payload"
PLAINTEXT = "投诉人 李四 13800138000".encode()
needs_sm4 = pytest.mark.skipif(not SM4_GCM_AVAILABLE, reason="this OpenSSL has no SM4-GCM")


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault.json"
    Vault.generate_key_file(path)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_and_blob_layout(key_file: Path) -> None:
    vault = Vault.load(key_file)
    blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    assert vault.decrypt(blob, AD) == PLAINTEXT
    key_id = vault.active_key_id.encode()
    assert blob[0] == 1  # version
    assert blob[1] == 1  # aes-256-gcm
    assert blob[2] == len(key_id) and blob[3 : 3 + len(key_id)] == key_id
    assert len(blob) == 3 + len(key_id) + 12 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in blob
    assert vault.key_id_of(blob) == vault.active_key_id
    # A fresh random nonce every time.
    assert vault.encrypt(PLAINTEXT, associated_data=AD) != blob
    assert vault.decrypt(vault.encrypt(b"", associated_data=b""), b"") == b""


def test_key_file_is_private(key_file: Path) -> None:
    assert _mode(key_file) == 0o600
    document = json.loads(key_file.read_text(encoding="utf-8"))
    assert document["format"] == KEY_FILE_FORMAT
    [key] = document["keys"]
    assert key["algorithm"] == "aes-256-gcm"
    Vault.rotate(key_file)
    assert _mode(key_file) == 0o600
    assert not [p for p in key_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_generate_refuses_to_overwrite(key_file: Path) -> None:
    before = key_file.read_bytes()
    with pytest.raises(ConfigInvalid, match="already exists"):
        Vault.generate_key_file(key_file)
    assert key_file.read_bytes() == before


def test_rotation_keeps_old_data_readable(key_file: Path) -> None:
    old_vault = Vault.load(key_file)
    old_blob = old_vault.encrypt(PLAINTEXT, associated_data=AD)
    new_id = Vault.rotate(key_file)
    vault = Vault.load(key_file)
    assert vault.active_key_id == new_id != old_vault.active_key_id
    assert vault.key_ids == (old_vault.active_key_id, new_id)
    assert vault.decrypt(old_blob, AD) == PLAINTEXT
    new_blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    assert vault.key_id_of(new_blob) == new_id
    # The re-encryption pass moves old blobs to the new key.
    assert vault.needs_reencryption(old_blob) and not vault.needs_reencryption(new_blob)
    moved = vault.reencrypt(old_blob, associated_data=AD)
    assert vault.key_id_of(moved) == new_id and vault.decrypt(moved, AD) == PLAINTEXT
    # The old vault cannot read data under a key it never had.
    with pytest.raises(VaultError) as excinfo:
        old_vault.decrypt(new_blob, AD)
    assert excinfo.value.reason == "VAULT_UNKNOWN_KEY"
    assert new_id in excinfo.value.message


def test_wrong_associated_data(key_file: Path) -> None:
    vault = Vault.load(key_file)
    blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(blob, AD + b"x")
    assert excinfo.value.reason == "VAULT_AUTHENTICATION_FAILED"
    assert "associated data" in excinfo.value.message
    assert isinstance(excinfo.value, GatewayFault)


@pytest.mark.parametrize("where", ["key id", "nonce", "ciphertext", "tag"])
def test_tampering_is_detected(key_file: Path, where: str) -> None:
    vault = Vault.load(key_file)
    blob = bytearray(vault.encrypt(PLAINTEXT, associated_data=AD))
    start = 3 + blob[2]
    position = {"key id": 3, "nonce": start, "ciphertext": start + 12, "tag": len(blob) - 1}
    blob[position[where]] ^= 0x01
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(bytes(blob), AD)
    expected = "VAULT_UNKNOWN_KEY" if where == "key id" else "VAULT_AUTHENTICATION_FAILED"
    assert excinfo.value.reason == expected


def test_header_is_authenticated(tmp_path: Path) -> None:
    """Re-labelling a blob with another key id of the same file does not decrypt it."""
    first = VaultKey("k1", "aes-256-gcm", bytes(32))
    second = VaultKey("k2", "aes-256-gcm", bytes(32))  # same secret on purpose
    blob = Vault([first]).encrypt(PLAINTEXT, associated_data=AD)
    relabelled = blob.replace(b"k1", b"k2", 1)
    with pytest.raises(VaultError) as excinfo:
        Vault([first, second]).decrypt(relabelled, AD)
    assert excinfo.value.reason == "VAULT_AUTHENTICATION_FAILED"


@pytest.mark.parametrize("keep", [0, 1, 2, 3, 10, 20, -1])
def test_truncated_blobs(key_file: Path, keep: int) -> None:
    vault = Vault.load(key_file)
    blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    minimal = vault.encrypt(b"", associated_data=AD)
    cut = minimal[:keep] if keep >= 0 else minimal[:-1]
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(cut, AD)
    assert excinfo.value.reason == "VAULT_BLOB_TRUNCATED"
    # Cut inside the ciphertext, the length still looks plausible: the tag catches it.
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(blob[:-3], AD)
    assert excinfo.value.reason == "VAULT_AUTHENTICATION_FAILED"


def test_unknown_version(key_file: Path) -> None:
    vault = Vault.load(key_file)
    blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(b"\x02" + blob[1:], AD)
    assert excinfo.value.reason == "VAULT_BLOB_VERSION"


def _write_keys(path: Path, keys: list[object], mode: int = 0o600) -> Path:
    path.write_text(json.dumps({"format": KEY_FILE_FORMAT, "keys": keys}), encoding="utf-8")
    path.chmod(mode)
    return path


GOOD_KEY = {"id": "k1", "algorithm": "aes-256-gcm", "key": "A" * 43 + "="}


@pytest.mark.parametrize(
    ("keys", "key", "rule"),
    [
        ([], "keys", "keys.empty"),
        (["nope"], "keys[0]", "type.object"),
        ([{**GOOD_KEY, "algorithm": "des"}], "keys[0].algorithm", "algorithm.unknown"),
        ([{**GOOD_KEY, "key": "!!"}], "keys[0].key", "key.base64"),
        ([{**GOOD_KEY, "key": "AAAA"}], "keys[0]", "key.invalid"),
        ([{**GOOD_KEY, "id": "has space"}], "keys[0]", "key.invalid"),
        ([GOOD_KEY, GOOD_KEY], "keys[1].id", "id.duplicate"),
    ],
)
def test_bad_key_files_name_file_key_and_rule(
    tmp_path: Path, keys: list[object], key: str, rule: str
) -> None:
    path = _write_keys(tmp_path / "vault.json", keys)
    with pytest.raises(ConfigInvalid) as excinfo:
        Vault.load(path)
    message = excinfo.value.message
    assert str(path) in message and f"{key}:" in message and f"[{rule}]" in message


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = _write_keys(tmp_path / "vault.json", [GOOD_KEY], mode=0o644)
    with pytest.raises(ConfigInvalid, match=r"0644.*\[file.mode\]"):
        Vault.load(path)
    path.chmod(0o600)
    assert Vault.load(path).active_key_id == "k1"


def test_key_file_not_json_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "vault.json"
    with pytest.raises(ConfigInvalid, match=r"file.unreadable"):
        Vault.load(path)
    path.write_text("{", encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigInvalid, match=r"json.syntax"):
        Vault.load(path)
    path.write_text('{"keys": []}', encoding="utf-8")
    with pytest.raises(ConfigInvalid, match=r"format.unknown"):
        Vault.load(path)


def test_unknown_algorithm_for_a_new_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="unknown key algorithm"):
        Vault.generate_key_file(tmp_path / "vault.json", algorithm="rc4")
    assert not (tmp_path / "vault.json").exists()


# ---------------------------------------------------------------------------
# SM4-GCM (GB/T 32907 in GCM mode) where the installed OpenSSL has it


@needs_sm4
def test_sm4_gcm_matches_rfc_8998() -> None:
    """RFC 8998 Appendix A.1: the SM4-GCM this machine provides is the standard one."""
    from gateway.vault import _seal

    key = VaultKey("rfc8998", "sm4-gcm", bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    sealed = _seal(key, nonce, plaintext, aad)
    assert sealed.hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )


@needs_sm4
def test_sm4_gcm_key_file_round_trip_and_rotation(tmp_path: Path) -> None:
    assert "sm4-gcm" in ALGORITHMS
    path = tmp_path / "vault.json"
    Vault.generate_key_file(path, algorithm="sm4-gcm")
    vault = Vault.load(path)
    blob = vault.encrypt(PLAINTEXT, associated_data=AD)
    assert blob[1] == 2  # sm4-gcm
    assert vault.decrypt(blob, AD) == PLAINTEXT
    with pytest.raises(VaultError) as excinfo:
        vault.decrypt(blob, b"elsewhere")
    assert excinfo.value.reason == "VAULT_AUTHENTICATION_FAILED"
    tampered = bytearray(blob)
    tampered[-20] ^= 0x80
    with pytest.raises(VaultError):
        vault.decrypt(bytes(tampered), AD)
    # Rotation keeps the algorithm unless told otherwise; mixed files work.
    Vault.rotate(path)
    Vault.rotate(path, algorithm="aes-256-gcm")
    rotated = Vault.load(path)
    algorithms = [k["algorithm"] for k in json.loads(path.read_text())["keys"]]
    assert algorithms == ["sm4-gcm", "sm4-gcm", "aes-256-gcm"]
    assert rotated.decrypt(blob, AD) == PLAINTEXT
    assert rotated.encrypt(PLAINTEXT, associated_data=AD)[1] == 1


def test_keys_are_not_in_repr(key_file: Path) -> None:
    vault = Vault.load(key_file)
    secret = json.loads(key_file.read_text())["keys"][0]["key"]
    assert secret not in repr(vault)
    key = VaultKey("k", "aes-256-gcm", b"\x01" * 32)
    assert "\\x01" not in repr(key)
