"""``{% load image_sync %}``: resized_url, image_gallery and upload_form.

The images here are unsaved rows with a primary key: the tags must render them
without touching the database (pytest-django refuses any query here).
"""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import _does_token_match
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from pytest_django.asserts import assertHTMLEqual, assertInHTML

from django_image_sync.forms import UploadForm
from django_image_sync.models import UploadedImage
from tests.support.html import attrs, elements
from tests.support.rows import recorded_outputs


def make_image(pk: int, status: str = "pending", name: str = "photo.jpg") -> UploadedImage:
    sha = hashlib.sha256(f"tag-{pk}".encode()).hexdigest()
    done = status == "done"
    return UploadedImage(
        pk=pk,
        original=f"image_sync/originals/{sha[:2]}/{sha[2:4]}/{sha}.jpg",
        resized=f"image_sync/resized/{sha[:2]}/{sha[2:4]}/{sha}-abc.jpg" if done else "",
        original_name=name,
        md5="0" * 32,
        sha256=sha,
        scope="anonymous",
        status=status,
        error="broken" if status == "failed" else "",
        width=640,
        height=480,
        format="JPEG",
        size=1000,
        resized_width=64 if done else None,
        resized_height=48 if done else None,
    )


def render(source: str, context: Context | None = None, **values) -> str:
    template = Template("{% load image_sync %}" + source)
    return template.render(context if context is not None else Context(values))


# -- resized_url ------------------------------------------------------------------


def test_resized_url_of_a_done_image(settings):
    image = make_image(1, "done")
    url = render("{% resized_url image %}", image=image)
    assert url == settings.MEDIA_URL + image.resized.name


@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
def test_resized_url_is_empty_until_done(status):
    assert render("{% resized_url image %}", image=make_image(2, status)) == ""


def test_resized_url_of_a_done_row_without_a_file_is_empty():
    image = make_image(3, "done")
    image.resized = ""
    assert render("{% resized_url image %}", image=image) == ""


def test_resized_url_of_an_old_result_being_reprocessed_is_empty():
    image = make_image(5, "done")
    image.status = "pending"
    assert render("{% resized_url image %}", image=image) == ""
    html = render("{% image_gallery images %}", images=[image])
    assert elements(html, "img") == []
    [figure] = elements(html, "figure")
    assert attrs(figure)["data-image-sync-poll"] == "/api/images/5/"


def test_resized_url_of_nothing_is_empty():
    assert render("{% resized_url image %}", image=None) == ""


def test_resized_url_as_variable():
    image = make_image(4, "done")
    html = render("{% resized_url image as src %}[{{ src }}]", image=image)
    assert html == f"[{image.resized.url}]"


# -- image_gallery ------------------------------------------------------------------


def test_gallery_shows_a_done_image():
    image = make_image(10, "done", name="beach.jpg")
    html = render("{% image_gallery images %}", images=[image])
    assertInHTML(
        f'<img class="image-sync-img" src="{image.resized.url}" width="64" height="48" '
        'alt="beach.jpg" loading="lazy" decoding="async">',
        html,
    )
    [figure] = [attrs(f) for f in elements(html, "figure")]
    assert figure["data-image-sync-id"] == "10"
    assert "data-image-sync-poll" not in figure
    assert [attrs(a)["href"] for a in elements(html, "a")] == ["/images/10/"]


@pytest.mark.parametrize(
    ("status", "label"), [("pending", "Pending"), ("processing", "Processing")]
)
def test_gallery_shows_a_placeholder_that_polls_until_done(status, label):
    image = make_image(11, status)
    html = render("{% image_gallery images %}", images=[image])
    assert elements(html, "img") == []
    [figure] = [attrs(f) for f in elements(html, "figure")]
    assert figure["data-image-sync-id"] == "11"
    assert figure["data-image-sync-poll"] == "/api/images/11/"
    assert f">{label}</span>" in html
    [span] = [attrs(s) for s in elements(html, "span")]
    assert span["class"] == "image-sync-placeholder"
    assert span["role"] == "img"


def test_gallery_shows_a_failed_image_as_a_placeholder():
    html = render("{% image_gallery images %}", images=[make_image(12, "failed")])
    assert elements(html, "img") == []
    assert '<span class="image-sync-placeholder"' in html
    assert ">Failed</span>" in html


def test_gallery_renders_every_image_in_order():
    images = [make_image(20, "done"), make_image(21), make_image(22, "done")]
    html = render("{% image_gallery images %}", images=images)
    ids = [attrs(f)["data-image-sync-id"] for f in elements(html, "figure")]
    assert ids == ["20", "21", "22"]
    assert [attrs(i)["src"] for i in elements(html, "img")] == [
        images[0].resized.url,
        images[2].resized.url,
    ]


def test_gallery_of_no_images():
    html = render("{% image_gallery images %}", images=[])
    assert elements(html, "figure") == []
    assert "No images yet." in html


def test_gallery_escapes_the_file_name():
    image = make_image(13, "done", name='"><script>alert(1)</script>')
    html = render("{% image_gallery images %}", images=[image])
    assert "<script>" not in html
    [img] = elements(html, "img")
    assert attrs(img)["alt"] == '"><script>alert(1)</script>'


# -- upload_form ----------------------------------------------------------------------


def form_parts(html: str) -> tuple[dict, dict[str, dict]]:
    [form] = elements(html, "form")
    inputs = {attrs(i)["name"]: attrs(i) for i in elements(html, "input")}
    return attrs(form), inputs


def test_upload_form_posts_files_to_the_upload_view():
    html = render("{% upload_form %}", csrf_token="tok123")
    form, inputs = form_parts(html)
    assert form["action"] == "/upload-image/"
    assert form["method"].lower() == "post"
    assert form["enctype"] == "multipart/form-data"
    assertInHTML(
        '<input type="file" name="images" id="id_images" accept="image/jpeg,image/png"'
        ' multiple required aria-describedby="id_images_helptext">',
        html,
    )
    assertInHTML('<input type="hidden" name="csrfmiddlewaretoken" value="tok123">', html)
    assert set(inputs) == {"images", "csrfmiddlewaretoken"}


def test_upload_form_help_text_is_linked_to_the_input():
    html = render("{% upload_form %}")
    _, inputs = form_parts(html)
    described_by = inputs["images"]["aria-describedby"]
    assert described_by == "id_images_helptext"
    [help_text] = [e for e in elements(html, None) if attrs(e).get("id") == described_by]
    assert "Up to 2 files" in str(help_text)


def test_upload_form_accepts_the_allowed_formats(settings):
    settings.IMAGE_SYNC = {"ALLOWED_FORMATS": ("PNG",)}
    _, inputs = form_parts(render("{% upload_form %}"))
    assert inputs["images"]["accept"] == "image/png"


def test_upload_form_carries_the_request_csrf_token():
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    html = render("{% upload_form %}", RequestContext(request))
    _, inputs = form_parts(html)
    token = inputs["csrfmiddlewaretoken"]["value"]
    assert token
    # The token rendered is one the CSRF middleware accepts for this request.
    secret = request.META["CSRF_COOKIE"]
    assert _does_token_match(token, secret)


def test_upload_form_without_a_token_renders_no_hidden_input():
    _, inputs = form_parts(render("{% upload_form %}"))
    assert "csrfmiddlewaretoken" not in inputs


def test_upload_form_with_a_given_form_shows_its_errors():
    form = UploadForm(data={}, files={})
    assert not form.is_valid()
    html = render("{% upload_form form %}", form=form)
    [errors] = [e for e in elements(html, "ul") if "errorlist" in (attrs(e).get("class") or "")]
    assertHTMLEqual(
        str(errors),
        f'<ul class="errorlist" id="id_images_error"><li>{form.errors["images"][0]}</li></ul>',
    )


# -- picture and image_tag ---------------------------------------------------------------


def with_renditions(image: UploadedImage) -> UploadedImage:
    """``image`` done at 1440x1080 with the default plan's outputs recorded."""
    image.resized_width, image.resized_height = 1440, 1080
    image.renditions = recorded_outputs(image.sha256, (1440, 1080))
    image.resized = image.renditions[0]["name"]
    image.placeholder = "data:image/webp;base64,UklGRg=="
    return image


def test_picture_lists_every_format_and_width():
    image = with_renditions(make_image(20, "done", name="sea.jpg"))
    html = render('{% picture image sizes="50vw" %}', image=image)
    [picture] = elements(html, "picture")
    sources = [attrs(s) for s in elements(html, "source")]
    assert [s["type"] for s in sources] == ["image/avif", "image/webp"]  # AVIF first
    url = {e["name"]: f"/media/{e['name']}" for e in image.renditions}
    for source, fmt in zip(sources, ("AVIF", "WEBP"), strict=True):
        assert source["sizes"] == "50vw"
        assert source["srcset"] == ", ".join(
            f"{url[e['name']]} {e['width']}w"
            for e in sorted(image.renditions, key=lambda e: e["width"])
            if e["format"] == fmt
        )
    [img] = [attrs(i) for i in elements(html, "img")]
    assert img["src"] == url[image.resized.name]
    assert img["srcset"].split(", ") == [
        f"{url[e['name']]} {w}w"
        for w in (480, 960, 1440)
        for e in image.renditions
        if e["format"] == "JPEG" and e["width"] == w
    ]
    assert (img["width"], img["height"], img["alt"]) == ("1440", "1080", "sea.jpg")
    assert (img["loading"], img["decoding"], img["sizes"]) == ("lazy", "async", "50vw")
    assert image.placeholder in img["style"]
    assert picture is not None


def test_image_tag_is_the_img_alone_with_defaults():
    image = with_renditions(make_image(21, "done", name="hill.jpg"))
    html = render('{% image_tag image alt="A hill" %}', image=image)
    assert elements(html, "picture") == []
    assert elements(html, "source") == []
    [img] = [attrs(i) for i in elements(html, "img")]
    assert (img["sizes"], img["alt"]) == ("100vw", "A hill")
    assert len(img["srcset"].split(", ")) == 3


@pytest.mark.parametrize("status", ["pending", "processing", "failed"])
def test_picture_of_an_image_not_done_is_a_box_of_its_final_shape(status):
    image = make_image(22, status)
    image.width, image.height = 4000, 3000
    html = render("{% picture image %}", image=image)
    assert elements(html, "img") == []
    [box] = [attrs(s) for s in elements(html, "span")]
    # 4000x3000 fits 1920x1080 as 1440x1080.
    assert box["style"] == "aspect-ratio: 1440 / 1080; max-width: 1440px"
    assert box["role"] == "img"


def test_picture_escapes_what_sites_and_users_give_it():
    image = with_renditions(make_image(23, "done", name='"><script>alert(1)</script>.jpg'))
    html = render("{% picture image sizes=sizes %}", image=image, sizes='100vw" onload="x')
    assert "<script>" not in html
    assert 'onload="x"' not in html
    [img] = [attrs(i) for i in elements(html, "img")]
    assert img["alt"] == '"><script>alert(1)</script>.jpg'
    assert img["sizes"] == '100vw" onload="x'
    # A safe string is not escaped twice.
    from django.utils.safestring import mark_safe

    html = render("{% picture image alt=alt %}", image=image, alt=mark_safe("Tom &amp; Jerry"))
    assert attrs(elements(html, "img")[0])["alt"] == "Tom & Jerry"


def test_upload_config_names_formats_as_the_server_compares_them(settings):
    from django_image_sync.templatetags.image_sync import upload_config

    settings.IMAGE_SYNC = {"ALLOWED_FORMATS": ("jpeg", "png")}  # the check accepts any case
    config = upload_config()
    assert [f["name"] for f in config["formats"]] == ["JPEG", "PNG"]
    assert config["strings"]["allowed"] == "JPEG and PNG"
