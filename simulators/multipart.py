"""A small multipart/form-data parser (the stdlib ``cgi`` module is gone in 3.13).

Parameters of ``Content-Type`` and ``Content-Disposition`` are decoded by the stdlib email
package, which knows the quoting rules; splitting on the boundary is done here on bytes.
Bare LF line breaks are tolerated as well as CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import HTTP


class MultipartError(ValueError):
    pass


@dataclass(slots=True)
class Part:
    name: str | None
    filename: str | None
    content_type: str
    data: bytes


def content_type_params(value: str) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["Content-Type"] = value
    params = msg.get_params(header="content-type") or []
    return msg.get_content_type(), {k.lower(): v for k, v in params[1:]}


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    ctype, params = content_type_params(content_type)
    if not ctype.startswith("multipart/"):
        raise MultipartError(f"expected multipart/form-data, got {ctype}")
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("multipart boundary missing")
    delim = b"--" + boundary.encode("latin-1")
    if body.startswith(delim):
        idx = 0
    else:
        idx = body.find(b"\n" + delim)
        if idx < 0:
            raise MultipartError("multipart boundary not found in body")
        idx += 1
    parts: list[Part] = []
    while True:
        after = idx + len(delim)
        if body.startswith(b"--", after):
            return parts  # close delimiter; anything after it is epilogue
        eol = body.find(b"\n", after)
        if eol < 0 or body[after:eol].strip(b" \t\r"):
            raise MultipartError("malformed multipart delimiter line")
        nxt = body.find(b"\n" + delim, eol)
        if nxt < 0:
            raise MultipartError("multipart closing boundary missing")
        end = nxt - 1 if nxt > eol and body[nxt - 1 : nxt] == b"\r" else nxt
        parts.append(_parse_part(body[eol + 1 : max(end, eol + 1)]))
        idx = nxt + 1


def _parse_part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n") or raw.startswith(b"\n"):
        head, data = b"", raw[2:] if raw.startswith(b"\r\n") else raw[1:]
    else:
        sep_crlf = raw.find(b"\r\n\r\n")
        sep_lf = raw.find(b"\n\n")
        if sep_crlf >= 0 and (sep_lf < 0 or sep_crlf <= sep_lf):
            head, data = raw[:sep_crlf], raw[sep_crlf + 4 :]
        elif sep_lf >= 0:
            head, data = raw[:sep_lf], raw[sep_lf + 2 :]
        else:
            raise MultipartError("multipart part without header/body separator")
    headers = BytesHeaderParser(policy=HTTP).parsebytes(head + b"\r\n\r\n")
    disposition = headers.get("Content-Disposition")
    if disposition is None:
        raise MultipartError("multipart part without Content-Disposition")
    return Part(
        name=headers.get_param("name", header="content-disposition"),
        filename=headers.get_filename(),
        content_type=headers.get_content_type() if headers.get("Content-Type") else "text/plain",
        data=data,
    )
