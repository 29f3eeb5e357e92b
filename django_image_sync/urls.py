"""The app's URLs (namespace ``image_sync``): pages and the JSON API."""

from django.urls import path

from . import views

app_name = "image_sync"

urlpatterns = [
    path("upload-image/", views.UploadView.as_view(), name="upload"),
    path("images/", views.GalleryView.as_view(), name="gallery"),
    path("images/<int:pk>/", views.ImageDetailView.as_view(), name="detail"),
    path("images/<int:pk>/delete/", views.ImageDeleteView.as_view(), name="delete"),
    path("api/images/", views.ApiListView.as_view(), name="api-list"),
    path("api/images/lookup/", views.ApiLookupView.as_view(), name="api-lookup"),
    path("api/images/<int:pk>/", views.ApiDetailView.as_view(), name="api-detail"),
]
