from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.services import demo_bootstrap
from portal.settings import env


class Command(BaseCommand):
    help = "Migrate, create the cache table, the admin login and the demo organization."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("createcachetable", verbosity=0)
        username = env.str("DJANGO_SUPERUSER_USERNAME", default="admin")
        password = env.str("DJANGO_SUPERUSER_PASSWORD", default="portal-admin")
        org = demo_bootstrap(username=username, password=password, email=env.str("DJANGO_SUPERUSER_EMAIL", default=""))
        self.stdout.write(f"Admin login {username!r} ready, member of {org.name!r}.")
