from django.http import HttpRequest

from audit.context import Actor, reset_actor, set_actor


class AuditActorMiddleware:
    """Makes the logged-in user the actor of every audit event written while handling the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        actor = None
        if user is not None and user.is_authenticated:
            # REMOTE_ADDR: the client as the trusted proxy set-up reports it (see the login throttle).
            actor = Actor(user_id=user.pk, label=user.get_username(), ip_address=request.META.get("REMOTE_ADDR"))
        token = set_actor(actor)
        try:
            return self.get_response(request)
        finally:
            reset_actor(token)
