"""OpenSSH public keys: every accepted type as ssh-keygen makes it (fingerprint included), and
whatever else, truncated, tampered with or random, refused with a reason and nothing else."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virga_gateway.keypairs.openssh import MAX_LINE, InvalidPublicKey, parse_public_key

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")

KINDS = {
    "ed25519": ("-t", "ed25519"),
    "rsa2048": ("-t", "rsa", "-b", "2048"),
    "rsa3072": ("-t", "rsa", "-b", "3072"),
    "ecdsa256": ("-t", "ecdsa", "-b", "256"),
    "ecdsa384": ("-t", "ecdsa", "-b", "384"),
    "ecdsa521": ("-t", "ecdsa", "-b", "521"),
    "rsa1024": ("-t", "rsa", "-b", "1024"),
}
TYPES = {
    "ed25519": "ssh-ed25519",
    "rsa2048": "ssh-rsa",
    "rsa3072": "ssh-rsa",
    "ecdsa256": "ecdsa-sha2-nistp256",
    "ecdsa384": "ecdsa-sha2-nistp384",
    "ecdsa521": "ecdsa-sha2-nistp521",
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Kind -> (the .pub file's text, ssh-keygen's own SHA256 fingerprint)."""
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for kind, args in KINDS.items():
        path = folder / kind
        subprocess.run(
            ["ssh-keygen", "-q", *args, "-N", "", "-C", f"user@{kind}", "-f", str(path)],
            check=True,
        )
        listed = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{path}.pub"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[1]
        made[kind] = (Path(f"{path}.pub").read_text(), listed)
    return made


def _parts(text: str) -> tuple[str, bytes, str]:
    kind, encoded, comment = text.split(None, 2)
    return kind, base64.b64decode(encoded), comment.strip()


def _line(kind: str, blob: bytes, comment: str = "") -> str:
    return f"{kind} {base64.b64encode(blob).decode()} {comment}".strip()


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_every_accepted_type_parses_with_ssh_keygens_fingerprint(
    keys: dict[str, tuple[str, str]], kind: str
) -> None:
    text, fingerprint = keys[kind]
    key = parse_public_key(text)
    assert key.type == TYPES[kind]
    assert key.fingerprint == fingerprint
    assert key.comment == f"user@{kind}"
    assert key.line == text.strip()  # one line, as the .pub file has it


def test_a_short_rsa_key_is_refused(keys: dict[str, tuple[str, str]]) -> None:
    with pytest.raises(InvalidPublicKey, match="1024 bits"):
        parse_public_key(keys["rsa1024"][0])


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_key_cannot_carry_a_second_line(keys: dict[str, tuple[str, str]], kind: str) -> None:
    text = keys[kind][0].strip()
    for smuggled in (f"{text}\nssh-ed25519 AAAA evil", f"{text}\revil", f"{text} a\x00b"):
        with pytest.raises(InvalidPublicKey, match="one line"):
            parse_public_key(smuggled)


def test_what_is_not_an_accepted_key_is_refused(keys: dict[str, tuple[str, str]]) -> None:
    ed_kind, ed_blob, _ = _parts(keys["ed25519"][0])
    ec_kind, ec_blob, _ = _parts(keys["ecdsa256"][0])
    refused = {
        "": "empty",
        "ssh-ed25519": "type> <base64",
        "ssh-dss AAAAB3NzaC1kc3M=": "accepted:",
        f"ssh-ed25519-cert-v01@openssh.com {base64.b64encode(ed_blob).decode()}": "accepted:",
        f"no-pty {keys['ed25519'][0]}": "accepted:",
        "ssh-ed25519 not*base64": "base64",
        _line("ssh-rsa", ed_blob): "says ssh-rsa",
        _line(ed_kind, ed_blob + b"\x00"): "after its last field",
        _line(ed_kind, ed_blob[:-1]): "ends inside",
        # The ECDSA key names one curve in its type and another inside.
        _line(ec_kind, b"nistp384".join(ec_blob.rsplit(b"nistp256", 1))): "another curve",
        # One coordinate changed: no longer a point of the curve.
        _line(ec_kind, ec_blob[:-1] + bytes([ec_blob[-1] ^ 1])): "not on the curve",
        "ssh-ed25519 " + "A" * MAX_LINE: f"longer than {MAX_LINE}",
    }
    for text, reason in refused.items():
        with pytest.raises(InvalidPublicKey, match=reason):
            parse_public_key(text)


def test_an_ed25519_point_off_the_curve_is_refused(keys: dict[str, tuple[str, str]]) -> None:
    kind, blob, _ = _parts(keys["ed25519"][0])
    header, point = blob[:-32], blob[-32:]
    refused = []
    for y in range(2, 200):  # about half of all y have no x
        try:
            parse_public_key(_line(kind, header + y.to_bytes(32, "little")))
        except InvalidPublicKey as exc:
            refused.append(str(exc))
    assert 50 < len(refused) < 150
    assert set(refused) == {"its ed25519 point is not on the curve"}
    assert parse_public_key(_line(kind, header + point)).type == "ssh-ed25519"
    non_canonical = header + (2**255 - 19 + 1).to_bytes(32, "little")
    with pytest.raises(InvalidPublicKey, match="canonical"):
        parse_public_key(_line(kind, non_canonical))


def test_an_rsa_key_with_a_padded_or_even_number_is_refused(
    keys: dict[str, tuple[str, str]],
) -> None:
    kind, blob, _ = _parts(keys["rsa2048"][0])
    e_len = int.from_bytes(blob[11:15], "big")
    exponent, rest = blob[15 : 15 + e_len], blob[15 + e_len :]
    padded = blob[:11] + (e_len + 1).to_bytes(4, "big") + b"\x00" + exponent + rest
    with pytest.raises(InvalidPublicKey, match="leading zero"):
        parse_public_key(_line(kind, padded))
    even = blob[:15] + exponent[:-1] + bytes([exponent[-1] & 0xFE]) + rest
    with pytest.raises(InvalidPublicKey, match="exponent"):
        parse_public_key(_line(kind, even))


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000), which=st.sampled_from(sorted(TYPES)))
def test_every_truncation_of_a_valid_key_is_refused(
    keys: dict[str, tuple[str, str]], cut: int, which: str
) -> None:
    kind, blob, _ = _parts(keys[which][0])
    truncated = blob[: cut % len(blob)]
    with pytest.raises(InvalidPublicKey):
        parse_public_key(_line(kind, truncated))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp521"]),
    blob=st.binary(max_size=2048),
)
def test_random_blobs_are_refused_with_a_reason(kind: str, blob: bytes) -> None:
    with pytest.raises(InvalidPublicKey):
        parse_public_key(_line(kind, blob))


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=3 * MAX_LINE // 2))
def test_any_text_is_parsed_or_refused_with_a_reason_never_anything_else(text: str) -> None:
    try:
        key = parse_public_key(text)
    except InvalidPublicKey:
        return
    assert "\n" not in key.line  # (random text is never a valid key; this keeps it honest)
