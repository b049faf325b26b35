from django.urls import path

from sites import feed_views

app_name = "feeds"

urlpatterns = [path("coverage/", feed_views.coverage, name="coverage")]
