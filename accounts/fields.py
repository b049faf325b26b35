"""A text field encrypted at rest with Fernet.

Vendor API keys and passwords live in the database; a leaked backup must not
leak them. The key comes from FIELD_ENCRYPTION_KEY (in development it is derived
from SECRET_KEY so `make run` needs no set-up).
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(key: str, secret: str) -> Fernet:
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()
    return Fernet(key.encode())


def fernet() -> Fernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY, settings.SECRET_KEY)


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python code sees the plain text."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return fernet().decrypt(value.encode()).decode()
        except InvalidToken:
            # A key rotation without re-encryption: better an empty secret (the
            # vendor answers 401 and the page asks for new credentials) than a crash.
            return ""

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return fernet().encrypt(value.encode()).decode()
