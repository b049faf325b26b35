from django.core.management.base import BaseCommand

from accounts.services import credentials_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every stored vendor secret with FIELD_ENCRYPTION_KEY (after a key rotation)."

    def handle(self, *args, **options):
        done, unreadable = credentials_reencrypt()
        self.stdout.write(f"{done} credential rows re-encrypted; {unreadable} with a secret no key can read.")
