"""Which jobs are encrypted, one rule for enqueue (arguments) and the executor (results)."""

from __future__ import annotations

from collections.abc import Callable

from quebec.config import Settings
from quebec.encryption import GENERATE, Cipher
from quebec.errors import ConfigError
from quebec.job import BaseClass


class Sealing:
    """`encrypt = True` on a class, or encrypt_all_jobs, with the configured keys."""

    def __init__(self, cipher: Cipher | None, encrypt_all: bool) -> None:
        self.cipher = cipher
        self.encrypt_all = encrypt_all

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealing:
        return cls(Cipher.from_setting(settings.encryption_key), settings.encrypt_all_jobs)

    def wants(self, cls: type[BaseClass]) -> bool:
        return self.encrypt_all or bool(cls.encrypt)

    def sealer(self, cls: type[BaseClass]) -> Callable[[str], str] | None:
        """How to encrypt `cls`'s values, None when they are stored plain; refused without a key."""
        if not self.wants(cls):
            return None
        if self.cipher is None:
            raise ConfigError(
                f"{cls.__qualname__}.encrypt is True but no encryption_key is set; set QUEBEC_ENCRYPTION_KEY "
                f"(make a key with `{GENERATE}`) or remove encrypt"
            )
        return self.cipher.seal
