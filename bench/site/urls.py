from django.urls import include, path

from bench.site import views

urlpatterns = [
    path("", include("django_image_sync.urls")),
    path("bench/ping/", views.ping),
    path("bench/bare-upload/", views.bare_upload),
    path("bench/plain-gallery/", views.plain_gallery),
]
