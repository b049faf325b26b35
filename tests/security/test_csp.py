"""A strict Content-Security-Policy and a Permissions-Policy on every page.

The walk GETs every URL pattern of the portal as the owner (with the outsider walk's
objects), and the login page as a visitor: each answer carries both headers, and no HTML
page holds an inline script, an event-handler attribute, a <style> block or a style
attribute, which the policy would refuse in the browser."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.security.test_outsider_walk import kwargs_for, world  # noqa: F401  (fixture)

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style[\s>]", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event-handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def every_pattern(resolvers=None, namespace=""):
    for p in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern).startswith("admin/"):
                continue  # Django's own admin; its pages get the headers from the same middleware
            yield from every_pattern(p.url_patterns, p.namespace or namespace)
        elif isinstance(p, URLPattern) and p.name:
            yield (f"{namespace}:{p.name}" if namespace else p.name), p


def directives(header: str) -> dict[str, list[str]]:
    parts = [d.strip().split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in parts}


def assert_headers(response, url: str) -> None:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{url} has no Content-Security-Policy"
    policy = directives(header)
    assert policy["default-src"] == ["'none'"], url
    assert policy["script-src"] == ["'self'"], url
    assert policy["style-src"] == ["'self'"], url
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"], url
    assert "unsafe-inline" not in header and "unsafe-eval" not in header, url
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in permissions, f"{url}: Permissions-Policy lacks {feature}"


def assert_no_inline(response, url: str) -> None:
    if not response.headers.get("Content-Type", "").startswith("text/html"):
        return
    html = response.content.decode()
    for pattern, what in INLINE:
        found = pattern.search(html)
        assert found is None, f"{url} holds {what}: {html[max(0, found.start() - 80) : found.end() + 80]!r}"


def test_every_page_sends_the_policies_and_no_inline_code(client, world, owner):  # noqa: F811
    client.force_login(owner)
    walked = 0
    for name, pattern in every_pattern():
        if name in ("logout", "healthz"):
            continue
        url = reverse(name, kwargs=kwargs_for(name, pattern, world) if pattern.pattern.converters else None)
        response = client.get(url)
        assert_headers(response, url)
        if response.status_code == 200:
            assert_no_inline(response, url)
            walked += 1
    assert walked >= 30  # the walk really rendered the portal's pages


def test_the_login_page_and_a_404_send_the_policies(client, db):
    for url in ("/login/", "/no-such-page/"):
        response = client.get(url)
        assert_headers(response, url)
    assert_no_inline(client.get("/login/"), "/login/")


def test_htmx_is_told_not_to_inject_styles_or_eval(owner_client):
    html = owner_client.get("/").content.decode()
    assert '"includeIndicatorStyles": false' in html and '"allowEval": false' in html


@pytest.mark.parametrize("percent", [0, 37, 100])
def test_progress_widths_come_from_classes(percent):
    """The bars' width classes exist for every whole percent the templates render."""
    from django.conf import settings

    css = (settings.BASE_DIR / "static" / "css" / "pages.css").read_text()
    assert f".w-{percent} {{ width: {percent}%; }}" in css
