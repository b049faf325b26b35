"""The organization context (current organization, the switcher, the user's role) is read once per request."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from tests import factories

# A query that lists the user's memberships or organizations (not a scoped object lookup,
# which joins memberships to check access, nor an object's own organization by id).
CONTEXT_QUERY = re.compile(
    r'^SELECT "accounts_membership"\.|^SELECT "accounts_organization"\.[^()]* INNER JOIN "accounts_membership"'
)


def context_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries if CONTEXT_QUERY.match(q["sql"])]


def test_it_reads_the_organization_context_once_per_page(owner_client, org):
    site = factories.make_site(org)
    # The site page needs the current organization, the switcher, and the role on the site (edit buttons).
    assert len(context_queries(owner_client, f"/sites/{site.pk}/")) == 1
    assert len(context_queries(owner_client, "/")) == 1


def test_the_switcher_and_the_role_follow_the_chosen_organization(owner_client, owner, org, other_org):
    factories.make_membership(owner, other_org, Role.VIEWER)
    response = owner_client.get("/")
    assert response.context["current_org"] == org  # "Acme Energy" sorts first
    assert response.context["can_change"] is True
    assert [m.organization.name for m in response.context["memberships"]] == ["Acme Energy", "Other Power"]
    owner_client.post("/organization/switch/", {"organization": other_org.pk})
    response = owner_client.get("/")
    assert response.context["current_org"] == other_org
    assert response.context["current_role"] == Role.VIEWER
    assert response.context["can_change"] is False
