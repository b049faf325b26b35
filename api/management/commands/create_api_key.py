"""Make an organization API key and print it once (only its hash is stored).

python manage.py create_api_key --org demo --name "nightly logger" --role operator
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from api.models import KeyRole
from api.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization and print it (it cannot be shown again)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--name", required=True, help="What the key is for (up to 50 characters).")
        parser.add_argument("--role", choices=KeyRole.values, default=KeyRole.VIEWER)

    def handle(self, *args, **opts):
        org = Organization.objects.filter(slug=opts["org"]).first()
        if org is None:
            raise CommandError(f"No organization with slug {opts['org']!r}.")
        api_key, key = api_key_create(organization=org, name=opts["name"], role=opts["role"])
        self.stderr.write(f"API key {api_key.name!r} ({api_key.role}) for {org.slug}, prefix {api_key.prefix}.")
        self.stderr.write("Store it now: it is not shown again. Send it as: Authorization: Api-Key <key>")
        self.stdout.write(key)
