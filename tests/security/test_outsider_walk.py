"""Every URL that names an object answers 404 to a member of another organization,
for GET and for POST, and changes nothing. The walk covers every pattern of the
URLconf, so a new view without scoping fails here."""

from datetime import UTC, datetime

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from api.services import api_key_create
from notifications.services import webhook_create
from sites.models import Device, Meter, Site
from tests import factories
from uploads.models import Delivery, DeliveryStatus, Upload, UploadBatch


def patterns(resolvers=None, namespace=""):
    for p in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern).startswith("admin/"):
                continue  # Django's admin: staff only, its own permission system
            yield from patterns(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.pattern.converters:
            name = f"{namespace}:{p.name}" if namespace else p.name
            if name in NOT_OBJECT_URLS:
                continue  # walked by test_account_urls_reveal_and_change_nothing_of_another_user below
            yield name, p


# URLs with parameters that name no organization's object (a password reset link).
NOT_OBJECT_URLS = {"accounts:password_reset_confirm"}


@pytest.fixture
def world(org, owner):
    site = factories.make_site(org)
    meter = factories.make_meter(site, wattics_stream_id="demo-elec-1")
    device = factories.make_device(site, meters=[meter])
    upload = factories.make_stored_upload(meter, datetime(2024, 1, 1, tzinfo=UTC), 5)
    upload.options = {"header": ["timestamp", "kwh"]}  # so its mapping page exists
    upload.error_report.save("errors.csv", ContentFile(b"line,column,value,problem\n"))  # and its error report
    delivery = factories.make_delivery(upload, meter, status=DeliveryStatus.FAILED)
    factories.make_exchange(delivery)
    api_key, _ = api_key_create(organization=org, name="walk", role="operator")
    webhook = webhook_create(organization=org, url="https://example.com/hook", secret="s" * 20, events=[])
    batch = UploadBatch.objects.create(organization=org, created_by=owner, name="q1.zip")
    Upload.objects.filter(pk=upload.pk).update(batch=batch)
    return {"site": site, "meter": meter, "device": device, "upload": upload, "delivery": delivery,
            "api_key": api_key, "webhook": webhook, "batch": batch}  # fmt: skip


def kwargs_for(name: str, pattern: URLPattern, world: dict) -> dict[str, int | str]:
    short = name.split(":")[-1]
    if name in NOT_OBJECT_URLS:  # a reset link that names no object (for the CSP walk): an invalid one
        return {"uidb64": "MQ", "token": "not-a-token"}
    if short == "delivery_exchanges":
        return {"pk": world["upload"].pk, "delivery_pk": world["delivery"].pk}
    for prefix, key in (("site_", "site"), ("meter", "meter"), ("device_", "device"), ("delivery_", "delivery"),
                        ("batch", "batch")):  # fmt: skip
        if short.startswith(prefix):
            return {"pk": world[key].pk}
    if name.startswith("uploads:"):
        return {"pk": world["upload"].pk}
    if name.startswith("api:"):  # REST API routes are "<resource>-<action>"
        return {"pk": world[short.split("-")[0]].pk}
    if name == "api_keys:revoke":
        return {"prefix": world["api_key"].prefix}
    if name == "notifications:webhook_delete":
        return {"pk": world["webhook"].pk}
    raise AssertionError(f"the outsider walk does not know which object {name} ({pattern.pattern}) names")


def snapshot() -> tuple:
    return (
        list(Site.objects.values_list("pk", "name")),
        list(Meter.objects.values_list("pk", "name", "wattcarbon_status")),
        list(Device.objects.values_list("pk", "name", "wattcarbon_status")),
        list(Upload.objects.values_list("pk", "status")),
        list(Delivery.objects.values_list("pk", "status", "attempts")),
    )


def test_every_object_url_is_404_for_an_outsider(client, world, outsider):
    walked = list(patterns())
    assert len(walked) >= 24  # the walk really covers the portal's object URLs
    before = snapshot()
    client.force_login(outsider)
    for name, pattern in walked:
        url = reverse(name, kwargs=kwargs_for(name, pattern, world))
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            # 405: a POST-only view refuses a GET before it looks anything up (nothing shown).
            assert response.status_code in (404, 405), f"{method.upper()} {url} answered {response.status_code}"
            # The REST API routes methods per URL: a detail URL without POST answers 405 before any lookup.
            post_only = not name.startswith("api:")
            assert not (method == "post" and response.status_code == 405 and post_only), f"POST {url} must 404"
    assert snapshot() == before


def test_the_same_urls_answer_their_owner(client, world, owner):
    """The walk's objects are real: the owner is not answered 404 anywhere."""
    client.force_login(owner)
    for name, pattern in patterns():
        url = reverse(name, kwargs=kwargs_for(name, pattern, world))
        response = client.get(url)
        assert response.status_code != 404, f"GET {url} is 404 for its owner"


# Organization-level pages (no object id in the URL) of the audit trail and two-factor login:
# they act on the requester's own organization or account, so an outsider sees and changes
# only theirs, and a viewer may not change anything.
ORG_LEVEL_URLS = {
    "audit:events": "owner-only",
    "mfa:organization_security": "owner-only",
    "mfa:overview": "own-account",
    "mfa:setup": "own-account",
    "mfa:setup_qr": "own-account",
    "mfa:verify": "own-account",
    "mfa:recovery_codes": "own-account",
    "mfa:disable": "own-account",
}


def test_org_level_pages_show_and_change_only_the_requesters_own(client, world, org, owner, viewer, outsider):
    from audit import urls as audit_urls
    from audit.services import audit_record
    from mfa import urls as mfa_urls

    walked = {f"{m.app_name}:{p.name}" for m in (audit_urls, mfa_urls) for p in m.urlpatterns}
    assert walked == set(ORG_LEVEL_URLS), "a new audit or two-factor URL needs its place in this walk"
    audit_record(organization_id=org.pk, action="create", object_type="site", object_label="Acme Secret Site")
    before = (snapshot(), org.require_two_factor)

    client.force_login(outsider)
    for name in ORG_LEVEL_URLS:
        for method in ("get", "post"):
            response = getattr(client, method)(reverse(name), {"require_two_factor": "on", "token": "123456"})
            assert "Acme Secret Site" not in response.content.decode(), f"{method} {name}"
    org.refresh_from_db()
    assert (snapshot(), org.require_two_factor) == before

    client.force_login(viewer)
    for name, kind in ORG_LEVEL_URLS.items():
        if kind == "owner-only":
            assert client.get(reverse(name)).status_code == 403, name
            assert client.post(reverse(name), {"require_two_factor": "on"}).status_code == 403, name
    org.refresh_from_db()
    assert not org.require_two_factor


# --- Account URLs (no organization object): what an outsider can do with them ---------


def test_account_urls_reveal_and_change_nothing_of_another_user(client, owner, outsider):
    """The account pages act on the logged-in user only; a reset link for someone else
    without its token is refused and changes nothing."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from tests.factories import PASSWORD

    client.force_login(outsider)
    # Password change: the form is the outsider's own (their old password is asked for).
    assert client.get(reverse("accounts:password_change")).status_code == 200
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": PASSWORD, "new_password1": "An0ther-long-pass!", "new_password2": "An0ther-long-pass!"},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    outsider.refresh_from_db()
    assert owner.check_password(PASSWORD) and outsider.check_password("An0ther-long-pass!")
    # Every reset URL, with the owner's id and a token made for the outsider: invalid link.
    forged = default_token_generator.make_token(outsider)
    confirm = reverse(
        "accounts:password_reset_confirm",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(owner.pk)), "token": forged},
    )
    # Every parameterised URL is walked: by the object walk, or here.
    assert {name for name, _ in patterns_all()} - {name for name, _ in patterns()} == NOT_OBJECT_URLS
    for method in ("get", "post"):
        response = getattr(client, method)(
            confirm, {"new_password1": "Hijack-pass-123!", "new_password2": "Hijack-pass-123!"}
        )
        assert response.status_code == 200
        assert b"This link does not work" in response.content
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    for name in ("password_change_done", "password_reset", "password_reset_done", "password_reset_complete"):
        response = client.get(reverse(f"accounts:{name}"))
        assert response.status_code == 200, name
        assert b"Acme Energy" not in response.content  # nothing of the owner's organization


def patterns_all(resolvers=None, namespace=""):
    """Every named pattern with parameters, the ones the object walk leaves out included."""
    for p in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern).startswith("admin/"):
                continue  # as in patterns()
            yield from patterns_all(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.pattern.converters:
            yield (f"{namespace}:{p.name}" if namespace else p.name), p
