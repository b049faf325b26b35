"""A text field encrypted at rest with Fernet.

Vendor API keys and passwords live in the database; a leaked backup must not
leak them. The key comes from FIELD_ENCRYPTION_KEY (in development it is derived
from SECRET_KEY so `make run` needs no set-up).

Key rotation: list the keys that are no longer current in FIELD_ENCRYPTION_KEYS_PREVIOUS.
Values stored with them are still read (MultiFernet), and written with the current key
on the next save (`manage.py reencrypt_credentials` re-writes them all at once).

A value that no key can read is not an empty secret: it comes back as an
`UnreadableSecret` (falsy, so nothing is sent with it), the credentials page says
so, and saving the row writes the original ciphertext back untouched, so the
right key can still recover it.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(key: str, secret: str, previous: tuple[str, ...]) -> MultiFernet:
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()
    return MultiFernet([Fernet(k.encode()) for k in (key, *previous) if k])


def fernet() -> MultiFernet:
    """The current key first (it encrypts), then the previous ones (they only decrypt)."""
    previous = tuple(getattr(settings, "FIELD_ENCRYPTION_KEYS_PREVIOUS", ()))
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY, previous)


class UnreadableSecret(str):
    """A stored secret that none of the configured keys decrypts. Its text is empty; it
    keeps the ciphertext so that a save writes it back unchanged."""

    ciphertext: str

    def __new__(cls, ciphertext: str) -> "UnreadableSecret":
        obj = super().__new__(cls, "")
        obj.ciphertext = ciphertext
        return obj


def is_unreadable(value) -> bool:
    return isinstance(value, UnreadableSecret)


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python code sees the plain text."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            # Stored with a key this portal no longer has (or not listed as previous).
            return UnreadableSecret(value)

    def get_prep_value(self, value):
        if isinstance(value, UnreadableSecret):
            return value.ciphertext
        value = super().get_prep_value(value)
        if not value:
            return value
        return fernet().encrypt(value.encode()).decode()
