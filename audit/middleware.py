from django.http import HttpRequest

from accounts.throttle import client_ip
from audit.context import Actor, reset_actor, set_actor


class AuditActorMiddleware:
    """Makes the logged-in user the actor of every audit event written while handling the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        actor = None
        if user is not None and user.is_authenticated:
            # The client's address as the login throttle reads it (behind TRUSTED_PROXY_COUNT proxies).
            actor = Actor(user_id=user.pk, label=user.get_username(), ip_address=client_ip(request) or None)
        token = set_actor(actor)
        try:
            return self.get_response(request)
        finally:
            reset_actor(token)
