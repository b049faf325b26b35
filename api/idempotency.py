"""`Idempotency-Key` on POSTs that create work (uploads, readings).

The first request with a key is processed and its answer kept; a repeat (same caller,
same key) gets that answer back and creates nothing. The record is written *before*
the work, under a unique constraint, so two concurrent repeats cannot both run: the
second is told the first is still in progress (409). Answers of 5xx and 429 are not
kept (the request may be tried again with the same key), nor are validation errors
raised as exceptions (nothing was created).
"""

import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api.access import caller_for
from api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable) -> Callable:
    """Decorate a viewset action (self, request, ...) -> Response."""

    @wraps(view)
    def wrapper(self, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return view(self, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            return Response({"detail": f"{HEADER} is longer than {MAX_KEY_LENGTH} characters."}, status=400)
        caller = caller_for(request)
        lookup = {"organization": caller.organization, "caller": caller.ident, "key": key}
        horizon = timezone.now() - timedelta(days=settings.API_IDEMPOTENCY_DAYS)
        IdempotencyRecord.objects.filter(**lookup, created_at__lt=horizon).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(**lookup, method=request.method, path=request.path)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(**lookup)
            if (record.method, record.path) != (request.method, request.path):
                detail = f"This {HEADER} was used for another request ({record.method} {record.path})."
                return Response({"detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
            if record.status_code is None:
                detail = f"A request with this {HEADER} is still being processed; try again shortly."
                return Response({"detail": detail}, status=status.HTTP_409_CONFLICT)
            return _replay(record)
        try:
            response = view(self, request, *args, **kwargs)
        except Exception:
            record.delete()
            raise
        if response.status_code >= 500 or response.status_code == 429:
            record.delete()
            return response
        record.status_code = response.status_code
        # Through JSON and back: what is kept is exactly what a repeat will read.
        record.body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        record.save(update_fields=["status_code", "body"])
        return response

    return wrapper
