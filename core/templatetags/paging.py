from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def page_query(context, number: int) -> str:
    """`?<this page's query>&page=<number>`: a page link keeps the list's filters and sort."""
    params = context["request"].GET.copy()
    params["page"] = number
    return "?" + params.urlencode()
