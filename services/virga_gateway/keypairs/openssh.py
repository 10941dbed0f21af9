"""OpenSSH public keys (`authorized_keys` lines) parsed from their wire format and checked:
the algorithm named twice agrees, every field has its length, the numbers are canonical, an
ed25519 or ECDSA point is on its curve, an RSA modulus has at least 2048 bits.

Pure and standard-library only: the gateway must refuse what `sshd` would refuse to load (a
tenant would otherwise learn of a bad key only when its login fails), and must never let a
key carry a second line into a guest's `authorized_keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

MAX_LINE = 8192
"""Longest key line accepted: a 16384-bit RSA key with a long comment fits."""
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 16384
"""OpenSSH's own bounds (`SSH_RSA_MINIMUM_MODULUS_SIZE` is lower; 2048 is today's floor)."""


class InvalidPublicKey(ValueError):
    """The text is not a public key this cloud accepts; the message says why."""


@dataclass(frozen=True, slots=True)
class PublicKey:
    type: str
    """``ssh-ed25519``, ``ssh-rsa``, ``ecdsa-sha2-nistp256``, ``-nistp384`` or ``-nistp521``."""
    blob: bytes
    """The key in SSH wire format (what the base64 field encodes)."""
    comment: str

    @property
    def fingerprint(self) -> str:
        """As ``ssh-keygen -l -E sha256`` shows it: ``SHA256:`` and unpadded base64."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode()
        return "SHA256:" + digest.rstrip("=")

    @property
    def line(self) -> str:
        """The key as one normalised `authorized_keys` line (single spaces, no newline)."""
        encoded = base64.b64encode(self.blob).decode()
        return f"{self.type} {encoded} {self.comment}" if self.comment else f"{self.type} {encoded}"


@dataclass(frozen=True, slots=True)
class _Curve:
    p: int
    b: int
    size: int
    """Bytes of one coordinate."""


_NIST = {
    "nistp256": _Curve(
        p=2**256 - 2**224 + 2**192 + 2**96 - 1,
        b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        size=32,
    ),
    "nistp384": _Curve(
        p=2**384 - 2**128 - 2**96 + 2**32 - 1,
        b=int(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
            "C656398D8A2ED19D2A85C8EDD3EC2AEF",
            16,
        ),
        size=48,
    ),
    "nistp521": _Curve(
        p=2**521 - 1,
        b=int(
            "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1"
            "09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B50"
            "3F00",
            16,
        ),
        size=66,
    ),
}

_ED25519_P = 2**255 - 19
_ED25519_D = (-121665 * pow(121666, -1, _ED25519_P)) % _ED25519_P

TYPES = ("ssh-ed25519", "ssh-rsa", *(f"ecdsa-sha2-{curve}" for curve in _NIST))


class _Reader:
    """Fields of the SSH wire format (RFC 4251 section 5), each length checked."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def string(self, what: str) -> bytes:
        if self.at + 4 > len(self.data):
            raise InvalidPublicKey(f"the key ends before its {what}")
        length = int.from_bytes(self.data[self.at : self.at + 4], "big")
        start, self.at = self.at + 4, self.at + 4 + length
        if self.at > len(self.data):
            raise InvalidPublicKey(f"the key ends inside its {what}")
        return self.data[start : self.at]

    def mpint(self, what: str) -> int:
        raw = self.string(what)
        if not raw:
            return 0
        if raw[0] & 0x80:
            raise InvalidPublicKey(f"its {what} is negative")
        if raw[0] == 0 and (len(raw) == 1 or not raw[1] & 0x80):
            raise InvalidPublicKey(f"its {what} has a superfluous leading zero")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.at != len(self.data):
            raise InvalidPublicKey("the key has bytes after its last field")


def parse_public_key(text: str) -> PublicKey:
    """The key of one OpenSSH public key line (``<type> <base64> [comment]``), checked."""
    text = text.strip()
    if not text:
        raise InvalidPublicKey("is empty")
    if len(text) > MAX_LINE:
        raise InvalidPublicKey(f"is longer than {MAX_LINE} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidPublicKey("must be one line, without control characters")
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise InvalidPublicKey("must be '<type> <base64 key> [comment]', as in a .pub file")
    kind, encoded = parts[0], parts[1]
    comment = " ".join(parts[2].split()) if len(parts) == 3 else ""
    if kind not in TYPES:
        raise InvalidPublicKey(f"has type {kind[:40]!r}; accepted: {', '.join(TYPES)}")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPublicKey("its key is not valid base64") from None
    reader = _Reader(blob)
    inner = reader.string("type")
    if inner != kind.encode():
        raise InvalidPublicKey(f"says {kind} but its key is {inner[:40]!r}")
    if kind == "ssh-ed25519":
        _check_ed25519(reader.string("point"))
    elif kind == "ssh-rsa":
        _check_rsa(reader.mpint("public exponent"), reader.mpint("modulus"))
    else:
        curve_name = kind.removeprefix("ecdsa-sha2-")
        if reader.string("curve name") != curve_name.encode():
            raise InvalidPublicKey(f"names another curve than {curve_name}")
        _check_nist(_NIST[curve_name], reader.string("point"))
    reader.end()
    return PublicKey(kind, blob, comment)


def _check_ed25519(point: bytes) -> None:
    if len(point) != 32:
        raise InvalidPublicKey(f"its ed25519 point has {len(point)} bytes, not 32")
    encoded = int.from_bytes(point, "little")
    y, sign = encoded & ((1 << 255) - 1), encoded >> 255
    p = _ED25519_P
    if y >= p:
        raise InvalidPublicKey("its ed25519 point is not canonical")
    y2 = y * y % p
    x2 = (y2 - 1) * pow(_ED25519_D * y2 + 1, -1, p) % p
    if x2 == 0:
        if sign:
            raise InvalidPublicKey("its ed25519 point is not canonical")
        return
    if pow(x2, (p - 1) // 2, p) != 1:
        raise InvalidPublicKey("its ed25519 point is not on the curve")


def _check_rsa(exponent: int, modulus: int) -> None:
    if exponent < 3 or exponent % 2 == 0:
        raise InvalidPublicKey("its RSA public exponent must be odd and at least 3")
    bits = modulus.bit_length()
    if bits < RSA_MIN_BITS:
        raise InvalidPublicKey(f"its RSA modulus has {bits} bits: at least {RSA_MIN_BITS}")
    if bits > RSA_MAX_BITS:
        raise InvalidPublicKey(f"its RSA modulus has {bits} bits: at most {RSA_MAX_BITS}")
    if modulus % 2 == 0:
        raise InvalidPublicKey("its RSA modulus is even")


def _check_nist(curve: _Curve, point: bytes) -> None:
    if len(point) != 1 + 2 * curve.size or point[0] != 4:
        raise InvalidPublicKey("its ECDSA point is not an uncompressed point of its curve")
    x = int.from_bytes(point[1 : 1 + curve.size], "big")
    y = int.from_bytes(point[1 + curve.size :], "big")
    p = curve.p
    if x >= p or y >= p:
        raise InvalidPublicKey("its ECDSA point is not canonical")
    if (y * y - (x * x * x - 3 * x + curve.b)) % p != 0:
        raise InvalidPublicKey("its ECDSA point is not on the curve")
