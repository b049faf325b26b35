"""API callers: owner (browser session), operator key, viewer key, outsider key, nobody."""

import pytest
from django.test import Client

from api.models import KeyRole
from api.services import api_key_create
from tests import factories


class Caller:
    """A test client that sends an API key (or rides a session) on every request."""

    def __init__(self, client: Client, key: str = ""):
        self.client = client
        self.headers = {"Authorization": f"Api-Key {key}"} if key else {}

    def get(self, url, **kw):
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url, data=None, *, json=True, **kw):
        headers = {**self.headers, **kw.pop("headers", {})}
        if json:
            return self.client.post(url, data or {}, content_type="application/json", headers=headers, **kw)
        return self.client.post(url, data or {}, headers=headers, **kw)

    def patch(self, url, data, **kw):
        return self.client.patch(url, data, content_type="application/json", headers=self.headers, **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, headers=self.headers, **kw)


@pytest.fixture
def operator_key(org):
    return api_key_create(organization=org, name="logger", role=KeyRole.OPERATOR)[1]


@pytest.fixture
def viewer_key(org):
    return api_key_create(organization=org, name="dashboard", role=KeyRole.VIEWER)[1]


@pytest.fixture
def outsider_key(other_org):
    return api_key_create(organization=other_org, name="theirs", role=KeyRole.OPERATOR)[1]


@pytest.fixture
def callers(owner, org, operator_key, viewer_key, outsider_key):
    owner_client = Client()
    owner_client.force_login(owner)
    return {
        "owner": Caller(owner_client),
        "operator": Caller(Client(), operator_key),
        "viewer": Caller(Client(), viewer_key),
        "outsider": Caller(Client(), outsider_key),
        "anonymous": Caller(Client()),
    }


@pytest.fixture
def things(org):
    """A site, a meter, a device, a validated upload with a failed delivery, in the organization."""
    from uploads.models import UploadStatus

    site = factories.make_site(org)
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1")
    device = factories.make_device(site)
    upload = factories.make_upload(org, meter=meter, status=UploadStatus.STORED)
    delivery = factories.make_delivery(upload, meter, status="failed", last_error="boom")
    return {"site": site, "meter": meter, "device": device, "upload": upload, "delivery": delivery}
