from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.services import demo_bootstrap

# The development login printed by `make run` and the README; never valid in production.
DEV_PASSWORD = "portal-admin"


class Command(BaseCommand):
    help = "Create the local folders, migrate, create the cache table, the admin login and the demo organization."

    def handle(self, *args, **options):
        username = settings.DJANGO_SUPERUSER_USERNAME
        password = settings.DJANGO_SUPERUSER_PASSWORD
        if not settings.DEBUG:
            # Production: a missing or published password would hand the admin login to anyone.
            if not password or password == DEV_PASSWORD:
                raise CommandError(
                    "DJANGO_SUPERUSER_PASSWORD must be set, and not to the development default, "
                    "when DJANGO_DEBUG is False."
                )
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError(f"DJANGO_SUPERUSER_PASSWORD is too weak: {' '.join(exc.messages)}") from exc
        # Settings create no folder at import; the SQLite file and the filesystem broker need theirs.
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        if not settings.REDIS_URL:  # the filesystem broker
            for sub in ("queue", "processed", "control"):
                (settings.BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        org = demo_bootstrap(username=username, password=password, email=settings.DJANGO_SUPERUSER_EMAIL)
        self.stdout.write(f"Admin login {username!r} ready, member of {org.name!r} (an existing password is kept).")
