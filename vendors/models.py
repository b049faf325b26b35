from django.db import models


class Vendor(models.TextChoices):
    WATTCARBON = "wattcarbon", "WattCarbon"
    WATTICS = "wattics", "Wattics"


class HttpExchange(models.Model):
    """One HTTP request to a vendor and what came of it. Never holds a secret:
    the URL is stored without credentials and no header or body is kept, only the
    vendor's error text.

    The apps' rows are named by string ("app.Model"), never imported: vendors/ is a leaf
    that imports nothing of the apps. The keys stay real foreign keys all the same, so an
    organization's or a delivery's exchanges go with it and the apps filter by them."""

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE, related_name="http_exchanges")
    vendor = models.CharField(max_length=16, choices=Vendor.choices)
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)
    request_bytes = models.PositiveIntegerField(default=0)
    delivery = models.ForeignKey(
        "uploads.Delivery", on_delete=models.CASCADE, null=True, blank=True, related_name="exchanges"
    )
    meter = models.ForeignKey("sites.Meter", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    device = models.ForeignKey("sites.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["delivery", "-created_at"], name="exchange_delivery_created"),
            models.Index(fields=["organization", "-created_at"], name="exchange_org_created"),
        ]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
