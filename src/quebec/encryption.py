"""Encryption at rest of job arguments and results: Fernet (AES-128-CBC + HMAC-SHA256), from
`cryptography`, with MultiFernet for key rotation.

`encryption_key` (QUEBEC_ENCRYPTION_KEY) holds one or more Fernet keys, comma-separated:
the first encrypts, every one decrypts, so a new key goes first and the old one stays
until `qc.rotate_encryption_keys()` (or `python -m quebec keys rotate`) has re-encrypted
the stored rows. What is sealed is the JSON of a job's argument list and of its result;
the class name, queue, priority, times, ids and error messages stay readable — the
queue must route and the dashboard show jobs without the key.

A sealed value is stored as `{"_quebec_encrypted": "<token>"}` in place of the plain one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quebec.errors import ConfigError, QuebecError

ENCRYPTED_TAG = "_quebec_encrypted"
GENERATE = "python -m quebec keys generate"


class EncryptionError(QuebecError, ValueError):
    """A sealed value cannot be opened here: no key is set, or none of the keys fits."""


class Cipher:
    """Seal and open text with the configured Fernet keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigError(
                "encryption_key is set but the cryptography package is not installed; pip install 'quebec[encryption]'"
            ) from None
        fernets = []
        for index, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigError(
                    f"encryption_key entry {index} of {len(keys)} is not a Fernet key (32 url-safe base64 "
                    f"bytes); make one with `{GENERATE}`"
                ) from None
        if not fernets:
            raise ConfigError(f"encryption_key holds no key; set it to a Fernet key made with `{GENERATE}`")
        self._multi = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str | None) -> Cipher | None:
        if value is None:
            return None
        return cls([part.strip() for part in value.split(",") if part.strip()])

    def seal(self, text: str) -> str:
        return self._multi.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise EncryptionError(
                f"an encrypted value matches none of the {self.key_count} key(s) in encryption_key; add the key "
                f"it was encrypted with (keys are comma-separated; the first encrypts, all decrypt)"
            ) from None

    def rotate(self, token: str) -> str:
        """The token re-encrypted with the first key (opened with any)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise EncryptionError(
                f"an encrypted value matches none of the {self.key_count} key(s) in encryption_key; "
                f"it cannot be rotated"
            ) from None


def sealed_token(value: Any) -> str | None:
    """The token of a sealed value `{"_quebec_encrypted": token}`, else None."""
    if isinstance(value, dict) and len(value) == 1:
        token = value.get(ENCRYPTED_TAG)
        if isinstance(token, str):
            return token
    return None


def open_sealed(token: str, cipher: Cipher | None, what: str) -> str:
    if cipher is None:
        raise EncryptionError(
            f"{what} is encrypted and this process has no encryption_key; set QUEBEC_ENCRYPTION_KEY to the "
            f"key it was encrypted with"
        )
    return cipher.open(token)


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")
