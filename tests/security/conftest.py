import socket

import pytest

# A public address: what the vendors' names resolve to in these tests.
PUBLIC_IP = "93.184.215.14"


@pytest.fixture
def fake_dns(monkeypatch):
    """Names resolve through this table (the build machines have no outside DNS); IP
    literals and unknown names resolve as usual. Returns the table to change it mid-test."""
    table: dict[str, str] = {
        "api.wattcarbon.com": PUBLIC_IP,
        "web-collector.wattics.com": PUBLIC_IP,
        "demo-dc.wattics.com": PUBLIC_IP,
        "dev-web-collector.wattics.com": PUBLIC_IP,
    }
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host in table:
            return real(table[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr("vendors.safety.socket.getaddrinfo", getaddrinfo)
    return table
