"""Who may do and see what: every access guarantee of the app, in one place.

- ``REQUIRE_AUTH`` on (the default): anonymous visitors can neither upload nor
  call any API (401 JSON), and the HTML pages send them to the login page.
- ``DEDUP_SCOPE = "owner"`` (the default): a user never sees another user's
  image, nor learns that it exists, through any page, any API answer or a
  duplicate answer. Uploading someone else's bytes gives a new image of one's own.
- ``DEDUP_SCOPE = "global"``: deduplication is shared; the second uploader gets
  the first one's image, marked as a duplicate.
- The session-authenticated API is protected by CSRF.
- Staff see every user's images in the admin; other users cannot reach it.
- Sites decide with the views' hooks: ``has_upload_permission``,
  ``has_view_permission`` and ``get_queryset`` (the site views below are routed
  by this module's own URLconf, as docs/usage.md describes).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import include, path

from django_image_sync import services, views
from django_image_sync.models import UploadedImage, original_name
from tests.images import jpeg_bytes, upload
from tests.support.clients import logged_in as login_client

pytestmark = pytest.mark.django_db

UPLOAD = "/upload-image/"
GALLERY = "/images/"
API_LIST = "/api/images/"
CHANGELIST = "/admin/django_image_sync/uploadedimage/"
MISSING = 987654321


def detail(pk: int) -> str:
    return f"/images/{pk}/"


def api_detail(pk: int) -> str:
    return f"/api/images/{pk}/"


def post_images(client: Client, *files: Any, url: str = API_LIST, **extra: Any) -> Any:
    return client.post(url, {"images": list(files)}, **extra)


def upload_one(client: Client, data: bytes, name: str = "photo.jpg", **extra: Any) -> Any:
    response = post_images(client, upload(data, name), **extra)
    assert response.status_code in (200, 201), response.content[:2000]
    [item] = response.json()["images"]
    return item


def media_files(settings: Any) -> list[str]:
    media = Path(settings.MEDIA_ROOT)
    return sorted(p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file())


def snapshot(response: Any) -> tuple[int, str, bytes]:
    # CSRF tokens are masked afresh on every page (the log-out form has one).
    content = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", response.content)
    return response.status_code, response.get("Content-Type", ""), content


def listed_ids(client: Client, url: str = API_LIST) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return [item["id"] for item in response.json()["results"]]


def gallery_ids(client: Client, url: str = GALLERY) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return [image.pk for image in response.context["images"]]


def auth_error(response: Any, status: int) -> None:
    """A JSON refusal with the ``auth`` code, as docs/usage.md lists it."""
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    if response.request["REQUEST_METHOD"] != "HEAD":
        assert [e["code"] for e in response.json()["errors"]["__all__"]] == ["auth"]
    if status == 401:
        assert response["WWW-Authenticate"] == 'Session realm="django-image-sync"'
    else:
        assert "WWW-Authenticate" not in response


@pytest.fixture
def carol(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("carol", password="pw")


@pytest.fixture
def alice_client(alice: Any) -> Client:
    return login_client(alice)


@pytest.fixture
def bob_client(bob: Any) -> Client:
    return login_client(bob)


@pytest.fixture
def alices_image(alice_client: Client, clear_cache: None) -> dict[str, Any]:
    """An image of Alice's, resized, as her own API shows it."""
    item = upload_one(alice_client, jpeg_bytes((96, 64), seed=101), "alice-holiday.jpg")
    assert services.process_image(item["id"]) == "done"
    shown = alice_client.get(api_detail(item["id"])).json()
    assert shown["status"] == "done"
    assert shown["resized_url"]
    return shown


# -- REQUIRE_AUTH: anonymous visitors -----------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", API_LIST),
        ("get", f"{API_LIST}?page=2"),
        ("head", API_LIST),
        ("options", API_LIST),
        ("post", API_LIST),
        ("get", "existing"),
        ("head", "existing"),
        ("options", "existing"),
        ("get", api_detail(MISSING)),
    ],
)
def test_anonymous_api_calls_are_401_json(client, alice, settings, method, url):
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=102))], owner=alice)
    before = media_files(settings)
    if url == "existing":
        url = api_detail(outcome.image.pk)
    if method == "post":
        response = post_images(client, upload(jpeg_bytes(seed=103)), url=url)
    else:
        response = getattr(client, method)(url)
    auth_error(response, 401)
    assert outcome.image.md5.encode() not in response.content
    assert list(UploadedImage.objects.values_list("pk", flat=True)) == [outcome.image.pk]
    assert media_files(settings) == before


def test_anonymous_answers_are_the_same_whether_or_not_the_image_exists(client, alice):
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=104))], owner=alice)
    for method in ("get", "head", "options"):
        existing = getattr(client, method)(api_detail(outcome.image.pk))
        missing = getattr(client, method)(api_detail(MISSING))
        assert snapshot(existing) == snapshot(missing)
        assert existing.status_code == 401


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
@pytest.mark.parametrize("url", [API_LIST, "existing"])
def test_anonymous_other_methods_are_refused_and_change_nothing(client, alice, url, method):
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=105))], owner=alice)
    pk = outcome.image.pk
    response = getattr(client, method)(api_detail(pk) if url == "existing" else url)
    # An image's owner may DELETE it: to anyone else that is a refusal, not a 405.
    allowed = url == "existing" and method == "delete"
    assert response.status_code == (401 if allowed else 405)
    assert response["Content-Type"] == "application/json"
    expected = "auth" if allowed else "method"
    assert [e["code"] for e in response.json()["errors"]["__all__"]] == [expected]
    assert UploadedImage.objects.get().pk == pk
    if url == "existing":
        missing = getattr(client, method)(api_detail(MISSING))
        assert snapshot(missing) == snapshot(response)


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_anonymous_upload_through_the_page_is_refused(client, settings, accept):
    response = post_images(client, upload(jpeg_bytes(seed=106)), url=UPLOAD, HTTP_ACCEPT=accept)
    if accept == "application/json":
        auth_error(response, 401)
    else:
        assert response.status_code == 302
        assert response["Location"] == f"{settings.LOGIN_URL}?next={UPLOAD}"
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []


@pytest.mark.parametrize("page", [UPLOAD, GALLERY, f"{GALLERY}?page=2", "existing", "missing"])
def test_anonymous_html_pages_redirect_to_the_login_page(client, alice, settings, page):
    [outcome] = services.upload_images([upload(jpeg_bytes(seed=107))], owner=alice)
    url = {"existing": detail(outcome.image.pk), "missing": detail(MISSING)}.get(page, page)
    response = client.get(url)
    assert response.status_code == 302
    login, _, query = response["Location"].partition("?")
    assert login == settings.LOGIN_URL
    assert query.startswith("next=")
    assert outcome.image.md5.encode() not in response.content


def test_anonymous_visitors_may_look_only_at_ownerless_images_without_require_auth(
    client, alice_client, settings
):
    settings.IMAGE_SYNC = {"REQUIRE_AUTH": False}
    data = jpeg_bytes(seed=108)
    alices = upload_one(alice_client, data, "alice.jpg")

    # The anonymous scope is not Alice's: the same bytes are a new, ownerless image.
    response = post_images(client, upload(data, "anon.jpg"))
    assert response.status_code == 201
    [anonymous] = response.json()["images"]
    assert anonymous["duplicate"] is False
    assert anonymous["id"] != alices["id"]
    assert UploadedImage.objects.get(pk=anonymous["id"]).owner is None

    assert listed_ids(client) == [anonymous["id"]]
    assert gallery_ids(client) == [anonymous["id"]]
    assert client.get(api_detail(alices["id"])).status_code == 404
    assert client.get(detail(alices["id"])).status_code == 404
    # And a logged-in user does not see the ownerless image.
    assert listed_ids(alice_client) == [alices["id"]]
    assert gallery_ids(alice_client) == [alices["id"]]
    assert alice_client.get(api_detail(anonymous["id"])).status_code == 404
    assert alice_client.get(detail(anonymous["id"])).status_code == 404


# -- DEDUP_SCOPE "owner": users are kept apart -------------------------------------------


def bobs_view(client: Client, pk: int) -> dict[str, tuple[int, str, bytes]]:
    """Everything Bob can ask the app, including about image ``pk``: answers by question."""
    questions = {
        "gallery": GALLERY,
        "gallery page 2": f"{GALLERY}?page=2",
        "list": API_LIST,
        "list page 2": f"{API_LIST}?page=2",
        "detail": detail(pk),
        "api detail": api_detail(pk),
    }
    seen = {}
    for label, url in questions.items():
        seen[f"GET {label}"] = snapshot(client.get(url))
        if "detail" in label:
            seen[f"HEAD {label}"] = snapshot(client.head(url))
            seen[f"OPTIONS {label}"] = snapshot(client.options(url))
    return seen


def test_owner_scope_shows_nothing_of_another_users_image(
    alice_client, bob_client, alice, bob, settings, clear_cache
):
    settings.IMAGE_SYNC = {"PAGE_SIZE": 1}
    # What Bob sees while Alice has nothing, asking about an image id that does not exist...
    before = bobs_view(bob_client, MISSING)
    alice_ids = [
        upload_one(alice_client, jpeg_bytes((96, 64), seed=110 + i), f"alice-{i}.jpg")["id"]
        for i in range(3)
    ]
    assert services.process_image(alice_ids[0]) == "done"
    services.fail_image(alice_ids[1], "the image cannot be processed: boom")
    rows = list(UploadedImage.objects.filter(pk__in=alice_ids))

    # ...is exactly what he sees once Alice has three images, whichever he asks about.
    for pk in alice_ids:
        assert bobs_view(bob_client, pk) == before
        assert bobs_view(bob_client, MISSING) == before
    assert before["GET list"][0] == 200
    assert bob_client.get(API_LIST).json()["count"] == 0
    assert before["GET api detail"][0] == 404
    assert before["GET detail"][0] == 404
    assert before["GET gallery page 2"][0] == 404

    # Nothing of Alice's images is anywhere in what Bob gets.
    bodies = b"".join(body for _, _, body in bobs_view(bob_client, alice_ids[0]).values())
    for row in rows:
        for secret in (row.md5, row.sha256, row.original_name, row.original.url):
            assert secret.encode() not in bodies
        if row.resized:
            assert row.resized.url.encode() not in bodies
    # Alice, meanwhile, sees her own three.
    assert alice_client.get(API_LIST).json()["count"] == 3


def test_owner_scope_upload_of_another_users_bytes_is_a_new_image_of_ones_own(
    alice_client, bob_client, carol, alice, bob, alices_image, settings
):
    data = jpeg_bytes((96, 64), seed=101)  # the bytes of Alice's image
    alices_row = UploadedImage.objects.get(pk=alices_image["id"])
    # What an upload of content nobody has sent before looks like (Carol, new bytes).
    fresh_response = post_images(login_client(carol), upload(jpeg_bytes((96, 64), seed=120)))
    [fresh] = fresh_response.json()["images"]

    response = post_images(bob_client, upload(data, "bob-copy.jpg"))

    # Bob's answer is that of a new upload, not a duplicate of anything he could not see.
    assert response.status_code == fresh_response.status_code == 201
    [item] = response.json()["images"]
    assert set(item) == set(fresh)
    assert item["duplicate"] is False
    assert item["status"] == fresh["status"] == "pending"
    assert item["resized_url"] is None
    assert (item["resized_width"], item["resized_height"]) == (None, None)
    assert item["error"] == ""
    assert item["name"] == "bob-copy.jpg"
    # Nothing in it is Alice's: not her id, not her name, not her row's times or status.
    assert item["id"] not in (alices_image["id"], fresh["id"])
    assert item["created"] != alices_image["created"]
    values = {str(value) for value in item.values()}
    assert alices_image["name"] not in values
    assert alices_image["resized_url"] not in values
    # Its URL is derived from the bytes Bob sent (storage is content-addressed, so the
    # file itself is shared, as docs/usage.md says), not from any row.
    sha256 = hashlib.sha256(data).hexdigest()
    assert item["original_url"] == f"{settings.MEDIA_URL}{original_name(sha256, 'jpg')}"
    assert item["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()

    bobs_row = UploadedImage.objects.get(pk=item["id"])
    assert bobs_row.owner == bob
    assert bobs_row.scope == f"user:{bob.pk}"
    # Alice's row is untouched.
    after = UploadedImage.objects.get(pk=alices_row.pk)
    assert (after.owner, after.status, after.original_name, after.updated) == (
        alice,
        "done",
        "alice-holiday.jpg",
        alices_row.updated,
    )

    # Each sees only their own; Bob's re-upload is a duplicate of his own image.
    assert listed_ids(bob_client) == [item["id"]]
    assert gallery_ids(bob_client) == [item["id"]]
    assert listed_ids(alice_client) == [alices_image["id"]]
    assert bob_client.get(api_detail(alices_image["id"])).status_code == 404
    assert alice_client.get(api_detail(item["id"])).status_code == 404
    assert alice_client.get(detail(item["id"])).status_code == 404
    again = post_images(bob_client, upload(data, "bob-again.jpg"))
    assert again.status_code == 200
    [repeat] = again.json()["images"]
    assert (repeat["id"], repeat["duplicate"], repeat["name"]) == (item["id"], True, "bob-copy.jpg")
    assert UploadedImage.objects.filter(sha256=sha256).count() == 2


def test_owner_scope_html_upload_of_another_users_bytes_says_uploaded(bob_client, alices_image):
    response = post_images(bob_client, upload(jpeg_bytes((96, 64), seed=101)), url=UPLOAD)
    assert response.status_code == 303
    messages = [str(m) for m in bob_client.get(GALLERY).context["messages"]]
    assert messages == ["1 image uploaded; it is being resized."]
    assert UploadedImage.objects.filter(owner__username="bob").count() == 1


def test_owner_scope_one_users_deletion_keeps_the_other_users_files(
    alice_client, bob_client, alices_image, settings, django_capture_on_commit_callbacks
):
    item = upload_one(bob_client, jpeg_bytes((96, 64), seed=101), "bob.jpg")
    assert services.process_image(item["id"]) == "done"
    bobs = bob_client.get(api_detail(item["id"])).json()
    files = media_files(settings)
    # One original and its outputs (three formats at 96 px), shared.
    assert len(files) == 1 + len(bobs["renditions"]) == 4

    with django_capture_on_commit_callbacks(execute=True):
        UploadedImage.objects.get(pk=alices_image["id"]).delete()

    assert media_files(settings) == files
    assert bob_client.get(api_detail(item["id"])).json() == bobs
    for url in (bobs["original_url"], bobs["resized_url"]):
        assert (Path(settings.MEDIA_ROOT) / url.removeprefix(settings.MEDIA_URL)).is_file()


# -- DEDUP_SCOPE "global": deduplication is shared -----------------------------------------


def test_global_scope_gives_the_second_uploader_the_first_ones_image(
    alice_client, bob_client, alice, settings, clear_cache
):
    settings.IMAGE_SYNC = {"DEDUP_SCOPE": "global"}
    data = jpeg_bytes((96, 64), seed=130)
    alices = upload_one(alice_client, data, "alice.jpg")
    assert services.process_image(alices["id"]) == "done"
    shown = alice_client.get(api_detail(alices["id"])).json()

    response = post_images(bob_client, upload(data, "bob.jpg"))
    assert response.status_code == 200
    [item] = response.json()["images"]
    assert item == {**shown, "duplicate": True}
    assert item["name"] == "alice.jpg"
    image = UploadedImage.objects.get()
    assert (image.owner, image.scope) == (alice, "global")

    assert listed_ids(bob_client) == [alices["id"]]
    assert gallery_ids(bob_client) == [alices["id"]]
    assert bob_client.get(api_detail(alices["id"])).json() == shown
    assert bob_client.get(detail(alices["id"])).status_code == 200

    html = post_images(bob_client, upload(data, "bob-page.jpg"), url=UPLOAD)
    assert html.status_code == 303
    messages = [str(m) for m in bob_client.get(GALLERY).context["messages"]]
    assert messages == ["1 image was already uploaded."]
    assert UploadedImage.objects.count() == 1


# -- CSRF on the session-authenticated API ---------------------------------------------------


@pytest.mark.parametrize("url", [API_LIST, UPLOAD])
def test_session_authenticated_upload_needs_the_csrf_token(alice, settings, url):
    client = login_client(alice, enforce_csrf_checks=True)
    extra = {"HTTP_ACCEPT": "application/json"}

    refused = post_images(client, upload(jpeg_bytes(seed=140)), url=url, **extra)
    assert refused.status_code == 403
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []

    assert client.get(UPLOAD).status_code == 200  # sets the CSRF cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    forged = post_images(
        client, upload(jpeg_bytes(seed=140)), url=url, HTTP_X_CSRFTOKEN="x" * 32, **extra
    )
    assert forged.status_code == 403
    assert UploadedImage.objects.count() == 0

    accepted = post_images(
        client, upload(jpeg_bytes(seed=140)), url=url, HTTP_X_CSRFTOKEN=token, **extra
    )
    assert accepted.status_code == 201
    assert UploadedImage.objects.get().owner == alice


def test_reads_need_no_csrf_token(alice):
    client = login_client(alice, enforce_csrf_checks=True)
    assert client.get(API_LIST).status_code == 200
    assert client.get(GALLERY).status_code == 200


# -- the admin -------------------------------------------------------------------------------


@pytest.fixture
def everyones_images(alice, bob) -> list[int]:
    """Images of Alice, of Bob, and one without an owner (identical bytes in two scopes)."""
    same = jpeg_bytes(seed=150)
    files = [
        (alice, same),
        (alice, jpeg_bytes(seed=151)),
        (bob, same),
        (None, jpeg_bytes(seed=152)),
    ]
    return [
        services.upload_images([upload(data)], owner=owner)[0].image.pk for owner, data in files
    ]


def test_superuser_sees_every_users_images_in_the_admin(admin_client, everyones_images):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert sorted(i.pk for i in response.context["cl"].result_list) == sorted(everyones_images)
    for pk in everyones_images:
        assert admin_client.get(f"{CHANGELIST}{pk}/change/").status_code == 200


def test_staff_with_the_view_permission_sees_every_users_images(
    django_user_model, everyones_images
):
    staff = django_user_model.objects.create_user("sam", password="pw", is_staff=True)
    client = login_client(staff)
    assert client.get(CHANGELIST).status_code == 403  # staff, but no permission yet

    staff.user_permissions.add(Permission.objects.get(codename="view_uploadedimage"))
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert sorted(i.pk for i in response.context["cl"].result_list) == sorted(everyones_images)


@pytest.mark.parametrize("who", ["anonymous", "user"])
def test_non_staff_cannot_reach_the_admin(client, alice, everyones_images, who):
    if who == "user":
        client.force_login(alice)
    pk = everyones_images[0]
    for url in ("/admin/", CHANGELIST, f"{CHANGELIST}{pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    before = list(UploadedImage.objects.order_by("pk").values_list("pk", "status", "updated"))
    action = client.post(CHANGELIST, {"action": "reprocess", "_selected_action": [pk]})
    assert action.status_code == 302
    assert action["Location"].startswith("/admin/login/")
    delete = client.post(f"{CHANGELIST}{pk}/delete/", {"post": "yes"})
    assert delete.status_code == 302
    assert delete["Location"].startswith("/admin/login/")
    after = list(UploadedImage.objects.order_by("pk").values_list("pk", "status", "updated"))
    assert after == before


# -- a site's own rules, through the views' hooks ---------------------------------------------


class UploadersOnly:
    """Only members of the "uploaders" group may upload."""

    def has_upload_permission(self, request: Any) -> bool:
        allowed: bool = super().has_upload_permission(request)  # type: ignore[misc]
        return allowed and request.user.groups.filter(name="uploaders").exists()


class StaffSeeEveryone:
    """Staff see everyone's images; others what the app's scope allows."""

    request: Any

    def get_queryset(self) -> Any:
        if self.request.user.is_staff:
            return UploadedImage.objects.select_related("owner")
        return super().get_queryset()  # type: ignore[misc]


class ViewersOnly:
    """Only members of the "viewers" group may look at the gallery."""

    def has_view_permission(self, request: Any) -> bool:
        allowed: bool = super().has_view_permission(request)  # type: ignore[misc]
        return allowed and request.user.groups.filter(name="viewers").exists()


class SiteUploadView(UploadersOnly, views.UploadView):
    pass


class SiteApiListView(UploadersOnly, StaffSeeEveryone, views.ApiListView):
    pass


class SiteApiDetailView(StaffSeeEveryone, views.ApiDetailView):
    pass


class SiteGalleryView(ViewersOnly, StaffSeeEveryone, views.GalleryView):
    pass


class SiteDetailView(StaffSeeEveryone, views.ImageDetailView):
    pass


SITE = "/photos/"
SITE_API = f"{SITE}api/images/"
# The site's views routed before the app's URLconf, as docs/usage.md recommends.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("photos/upload-image/", SiteUploadView.as_view()),
    path("photos/api/images/", SiteApiListView.as_view()),
    path("photos/api/images/<int:pk>/", SiteApiDetailView.as_view()),
    path("photos/images/", SiteGalleryView.as_view()),
    path("photos/images/<int:pk>/", SiteDetailView.as_view()),
    path("photos/", include("django_image_sync.urls")),
]


@pytest.fixture
def uploaders(alice) -> Group:
    group = Group.objects.create(name="uploaders")
    alice.groups.add(group)
    return group


@pytest.fixture
def viewers(alice) -> Group:
    group = Group.objects.create(name="viewers")
    alice.groups.add(group)
    return group


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("sam", password="pw", is_staff=True)


@pytest.mark.urls(__name__)
def test_site_upload_hook_lets_group_members_upload(alice_client, uploaders):
    item = upload_one(alice_client, jpeg_bytes(seed=160), url=SITE_API)
    assert item["duplicate"] is False
    response = post_images(alice_client, upload(jpeg_bytes(seed=161)), url=f"{SITE}upload-image/")
    assert response.status_code == 303
    assert response["Location"] == f"{SITE}images/"
    assert UploadedImage.objects.filter(owner__username="alice").count() == 2


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("url", "accept"),
    [
        (SITE_API, "*/*"),
        (f"{SITE}upload-image/", "application/json"),
        (f"{SITE}upload-image/", "text/html"),
    ],
)
def test_site_upload_hook_refuses_everyone_else_with_403(
    bob_client, uploaders, settings, url, accept
):
    response = post_images(bob_client, upload(jpeg_bytes(seed=162)), url=url, HTTP_ACCEPT=accept)
    if accept == "text/html":
        assert response.status_code == 403
        assert response["Content-Type"].startswith("text/plain")
    else:
        auth_error(response, 403)
        assert response.json()["errors"]["__all__"][0]["message"] == "Permission denied."
    assert UploadedImage.objects.count() == 0
    assert media_files(settings) == []
    # Looking is still allowed: the hook is about uploads only.
    assert bob_client.get(SITE_API).status_code == 200
    assert bob_client.get(f"{SITE}upload-image/").status_code == 200


@pytest.mark.urls(__name__)
def test_site_upload_hook_still_refuses_anonymous_visitors_with_401(client, uploaders, settings):
    response = post_images(client, upload(jpeg_bytes(seed=163)), url=SITE_API)
    auth_error(response, 401)
    assert UploadedImage.objects.count() == 0


@pytest.mark.urls(__name__)
def test_site_queryset_hook_shows_staff_everyones_images(
    staff, alice_client, bob_client, bob, uploaders, viewers
):
    bob.groups.add(uploaders)
    alices = upload_one(alice_client, jpeg_bytes(seed=164), url=SITE_API)
    bobs = upload_one(bob_client, jpeg_bytes(seed=165), url=SITE_API)
    staff.groups.add(viewers)
    staff_client = login_client(staff)

    assert sorted(listed_ids(staff_client, SITE_API)) == sorted([alices["id"], bobs["id"]])
    assert sorted(gallery_ids(staff_client, f"{SITE}images/")) == sorted([alices["id"], bobs["id"]])
    for item in (alices, bobs):
        shown = staff_client.get(f"{SITE_API}{item['id']}/")
        assert shown.status_code == 200
        assert shown.json()["id"] == item["id"]
        assert staff_client.get(f"{SITE}images/{item['id']}/").status_code == 200

    # Everyone else still sees only their own.
    assert listed_ids(alice_client, SITE_API) == [alices["id"]]
    assert gallery_ids(alice_client, f"{SITE}images/") == [alices["id"]]
    assert listed_ids(bob_client, SITE_API) == [bobs["id"]]
    assert alice_client.get(f"{SITE_API}{bobs['id']}/").status_code == 404
    assert alice_client.get(f"{SITE}images/{bobs['id']}/").status_code == 404
    assert bob_client.get(f"{SITE_API}{alices['id']}/").status_code == 404


@pytest.mark.urls(__name__)
def test_site_view_hook_refuses_the_gallery_to_non_members(alice_client, bob_client, viewers):
    assert alice_client.get(f"{SITE}images/").status_code == 200
    response = bob_client.get(f"{SITE}images/")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/plain")
    as_json = bob_client.get(f"{SITE}images/", HTTP_ACCEPT="application/json")
    auth_error(as_json, 403)
    # The hook guards the gallery only: the list API still answers Bob.
    assert bob_client.get(SITE_API).status_code == 200
