from django.urls import NoReverseMatch, reverse


def action_url(name: str, pk: int) -> str | None:
    """The URL of a delivery action, or None while uploads.views.actions has not landed it."""
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None
