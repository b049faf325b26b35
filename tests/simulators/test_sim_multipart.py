"""The simulators' own multipart/form-data parser."""

import pytest

from simulators.multipart import MultipartError, parse_multipart


def test_it_reads_parts_with_crlf_and_a_preamble():
    body = (
        b"preamble\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a b.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
        b"start_datetime,energy_kwh\r\n2024-01-01T00:00:00Z,1\r\n"
        b"\r\n--XyZ--\r\nepilogue"
    )
    note, upload = parse_multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert (note.name, note.filename, note.data) == ("note", None, b"hello")
    assert (upload.name, upload.filename, upload.content_type) == ("file", "a b.csv", "text/csv")
    assert upload.data == b"start_datetime,energy_kwh\r\n2024-01-01T00:00:00Z,1\r\n"


def test_it_tolerates_bare_line_feeds():
    body = b'--b\nContent-Disposition: form-data; name="f"; filename="x"\n\nabc\n--b--\n'
    [part] = parse_multipart(body, "multipart/form-data; boundary=b")
    assert part.data == b"abc"


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"--b\r\n\r\nx\r\n--b--", "multipart/form-data"),  # no boundary parameter
        (b"nothing here", "multipart/form-data; boundary=b"),
        (
            b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\nx',
            "multipart/form-data; boundary=b",
        ),
        (b"a,b\n1,2\n", "text/csv"),
    ],
)
def test_it_refuses_broken_bodies(body, ctype):
    with pytest.raises(MultipartError):
        parse_multipart(body, ctype)
