"""The shipped translations: complete, up to date with the code, compiled, and used.

The catalogues live in ``django_image_sync/locale/<lang>/LC_MESSAGES/``;
``scripts/messages`` regenerates and compiles them.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from django_image_sync import processing, wording
from django_image_sync.checks import check_settings
from django_image_sync.management.commands.image_sync_sweep import Command as SweepCommand
from django_image_sync.models import Status, UploadedImage
from tests.conftest import service_unavailable
from tests.images import jpeg_bytes, upload
from tests.support.html import elements

PACKAGE = Path(__file__).resolve().parent.parent / "django_image_sync"
LOCALE = PACKAGE / "locale"
LANGUAGES = ("de", "fr")
CATALOGUES = sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))
NBSP = "\xa0"


# -- reading .po files ------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: str = ""
    plurals: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return self.msgctxt, self.msgid

    @property
    def translations(self) -> list[str]:
        if self.msgid_plural:
            return [self.plurals[n] for n in sorted(self.plurals)]
        return [self.msgstr]


def read_po(path: Path) -> list[Entry]:
    """Every entry of a .po file, the header (msgid "") first; obsolete ones left out."""
    entries: list[Entry] = []
    entry: Entry | None = None
    flags: set[str] = set()
    target = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("#,"):
            flags |= {flag.strip() for flag in line[2:].split(",")}
        elif not line.strip() or line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert entry is not None, f"{path}:{number}: a string outside an entry"
            value = ast.literal_eval(line)
            if target.startswith("msgstr["):
                index = int(target[7:-1])
                entry.plurals[index] += value
            else:
                setattr(entry, target, getattr(entry, target) + value)
        else:
            keyword, _, rest = line.partition(" ")
            value = ast.literal_eval(rest)
            starts_entry = keyword == "msgctxt" or (
                keyword == "msgid" and (entry is None or target != "msgctxt")
            )
            if starts_entry:
                entry = Entry(flags=flags, line=number)
                entries.append(entry)
                flags = set()
            assert entry is not None
            target = keyword
            if keyword.startswith("msgstr["):
                entry.plurals[int(keyword[7:-1])] = value
            elif keyword in ("msgid", "msgctxt", "msgid_plural", "msgstr"):
                setattr(entry, keyword, value)
            else:
                raise AssertionError(f"{path}:{number}: unexpected {keyword!r}")
    return entries


# %(name)s, %s, %d, %.0f ... (not %%), and {name} / {} of str.format.
PERCENT = re.compile(r"%(?:\((\w+)\))?[#0 +-]*(?:\d+|\*)?(?:\.(?:\d+|\*))?([diouxXeEfFgGcrsa%])")
BRACE = re.compile(r"(?<!\{)\{(\w*)(?:![rsa])?(?::[^{}]*)?\}(?!\})")


def placeholders(text: str) -> tuple[frozenset[str], tuple[str, ...], frozenset[str]]:
    """Named %-placeholders (with their conversion), positional ones in order, brace ones."""
    named, positional = set(), []
    for match in PERCENT.finditer(text):
        name, conversion = match.groups()
        if conversion == "%":
            continue
        if name:
            named.add(f"{name}:{conversion}")
        else:
            positional.append(conversion)
    return frozenset(named), tuple(positional), frozenset(BRACE.findall(text))


def test_there_are_catalogues_for_german_and_french():
    for language in LANGUAGES:
        po = LOCALE / language / "LC_MESSAGES" / "django.po"
        assert po.is_file(), po
        assert po.with_suffix(".mo").is_file(), po.with_suffix(".mo")


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(LOCALE)))
def test_every_entry_is_translated_not_fuzzy_and_keeps_its_placeholders(po):
    language = po.parent.parent.name
    [header, *entries] = read_po(po)
    assert header.msgid == ""
    assert "fuzzy" not in header.flags
    assert f"Language: {language}\n" in header.msgstr
    assert "Plural-Forms: nplurals=2;" in header.msgstr
    assert entries
    problems = []
    for entry in entries:
        where = f"{po.name}:{entry.line} {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            problems.append(f"{where}: fuzzy")
        if entry.msgid_plural and sorted(entry.plurals) != [0, 1]:
            problems.append(f"{where}: plural forms {sorted(entry.plurals)}")
        expected = placeholders(entry.msgid)
        if entry.msgid_plural:
            assert placeholders(entry.msgid_plural) == expected, where
        for translated in entry.translations:
            if not translated.strip():
                problems.append(f"{where}: not translated")
            elif placeholders(translated) != expected:
                problems.append(f"{where}: placeholders {placeholders(translated)} != {expected}")
    assert not problems, "\n".join(problems)


def test_placeholders_are_compared():
    """The check above sees a dropped, renamed or retyped placeholder."""
    assert placeholders("%(count)d of %(total)s, %s {name}") == (
        frozenset({"count:d", "total:s"}),
        ("s",),
        frozenset({"name"}),
    )
    assert placeholders("100%% sure") == (frozenset(), (), frozenset())
    assert placeholders("%(count)s") != placeholders("%(count)d")
    assert placeholders("%(file)s: x") != placeholders("%(name)s: x")


# -- up to date with the code ------------------------------------------------------------


def test_catalogues_are_up_to_date_with_the_code(tmp_path, monkeypatch):
    """makemessages over a copy of the package finds exactly the committed msgids."""
    missing = [tool for tool in ("xgettext", "msgmerge", "msguniq") if not shutil.which(tool)]
    if missing:
        service_unavailable(f"GNU gettext is not installed ({', '.join(missing)} missing)")
    copy = tmp_path / "django_image_sync"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "locale"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    options = {"locale": list(LANGUAGES), "no_obsolete": True, "add_location": "file"}
    call_command("makemessages", verbosity=0, **options)
    call_command("makemessages", domain="djangojs", verbosity=0, **options)

    made = sorted((copy / "locale").glob("*/LC_MESSAGES/*.po"))
    assert {p.relative_to(copy / "locale") for p in made} == {
        p.relative_to(LOCALE) for p in CATALOGUES
    }, "a catalogue is missing or stale: run scripts/messages"
    for fresh in made:
        committed = LOCALE / fresh.relative_to(copy / "locale")
        code = {e.key: e.msgid_plural for e in read_po(fresh) if e.msgid}
        shipped = {e.key: e.msgid_plural for e in read_po(committed) if e.msgid}
        new = sorted(str(k) for k in code.keys() - shipped.keys())
        gone = sorted(str(k) for k in shipped.keys() - code.keys())
        assert not new, f"{committed}: not in the catalogue yet (run scripts/messages): {new}"
        assert not gone, f"{committed}: no longer in the code (run scripts/messages): {gone}"
        changed = [k for k in code if code[k] != shipped[k]]
        assert not changed, f"{committed}: plural changed (run scripts/messages): {changed}"


# -- compiled ----------------------------------------------------------------------------


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: str(p.relative_to(LOCALE)))
def test_compiled_catalogue_matches_its_po(po):
    """The .mo (what Django loads, and what the wheel ships) says what the .po says."""
    expected: dict[object, str] = {}
    for entry in read_po(po):
        if "fuzzy" in entry.flags and entry.msgid:
            continue
        msgid = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural:
            for index, text in entry.plurals.items():
                expected[(msgid, index)] = text
        elif entry.msgstr:
            expected[msgid] = entry.msgstr
    with po.with_suffix(".mo").open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    actual = dict(catalogue._catalog)  # every msgid -> msgstr, the header's too
    # msgfmt leaves the header's POT-Creation-Date out (it changes on every run).
    for catalogue_ in (expected, actual):
        catalogue_[""] = re.sub(r"POT-Creation-Date: [^\n]*\n", "", catalogue_.get("", ""))
    stale = {k for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)}
    assert not stale, f"{po.with_suffix('.mo')} is stale (run scripts/messages): {stale}"


# -- used at request time ----------------------------------------------------------------

SIZE = 5_858_272  # 5.6 MB (MiB, as filesizeformat counts), over the 5 MB default limit


def too_large_jpeg() -> bytes:
    data = jpeg_bytes((64, 48), seed=7)
    return data + b"\x00" * (SIZE - len(data))


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.mark.django_db
def test_a_refused_upload_is_answered_in_the_requests_language(alice_client):
    """The same process answers German, French and English in turn: the message is
    made when the request is answered, not when a module was imported."""
    expected = {
        "de": "photo.jpg: Die Datei ist 5,6\xa0MB groß; die Grenze liegt bei 5,0\xa0MB",
        "fr": "photo.jpg\xa0: le fichier fait 5,6\xa0Mo\xa0; la limite est de 5,0\xa0Mo",
        "en": "photo.jpg: the file is 5.6\xa0MB; the limit is 5.0\xa0MB",
    }
    accept = {"de": "de-DE,de;q=0.9,en;q=0.5", "fr": "fr-FR,fr;q=0.9", "en": "en;q=0.8"}
    for language in ("de", "fr", "en", "de"):
        response = alice_client.post(
            "/api/images/",
            {"images": [upload(too_large_jpeg(), "photo.jpg")]},
            HTTP_ACCEPT_LANGUAGE=accept[language],
        )
        assert response.status_code == 400
        assert response["Content-Language"] == language
        [error] = response.json()["errors"]["images"]
        assert error == {
            "file": "photo.jpg",
            "code": "max_file_size",
            "message": expected[language],
            "params": {"size": SIZE, "limit": 5 * 1024 * 1024},
        }
    assert not UploadedImage.objects.exists()


@pytest.mark.django_db
def test_max_files_is_refused_in_the_requests_language(alice_client):
    files = [upload(jpeg_bytes(seed=20 + i), f"{i}.jpg") for i in range(3)]
    response = alice_client.post("/api/images/", {"images": files}, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    [error] = response.json()["errors"]["images"]
    assert (error["code"], error["params"]) == ("max_files", {"count": 3, "limit": 2})
    assert error["message"] == (
        "3 fichiers ont été envoyés\xa0; 2 au maximum sont acceptés à la fois"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "label", "help_text"),
    [
        ("de", "Bilder", "Bis zu 2 Dateien mit jeweils höchstens 5,0\xa0MB."),
        ("fr", "Images", "Jusqu’à 2 fichiers, de 5,0\xa0Mo au maximum chacun."),  # noqa: RUF001
        ("en", "Images", "Up to 2 files, 5.0\xa0MB each at most."),
    ],
)
def test_upload_page_in_the_requests_language(alice_client, language, label, help_text):
    response = alice_client.get("/upload-image/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Language"] == language
    html = response.content.decode()
    [field_label] = [e for e in elements(html, "label") if ("for", "id_images") in e.attributes]
    assert field_label.children == [label]
    [small] = [e for e in elements(html, "small") if ("id", "id_images_helptext") in e.attributes]
    assert small.children == [help_text]


# Every message the upload path can give, one problem each.
PROBLEMS = [
    processing.ImageProblem("empty", "-"),
    processing.ImageProblem("max_file_size", "-", size=SIZE, limit=5 * 1024 * 1024),
    processing.ImageProblem("max_file_size", "-", size=5 * 1024 * 1024 + 1, limit=5 * 1024 * 1024),
    processing.ImageProblem("format", "-", found="GIF", allowed=["JPEG", "PNG"]),
    processing.ImageProblem("format", "-", found=None, allowed=["JPEG", "PNG"]),
    processing.ImageProblem(
        "max_pixels", "-", pixels=64_000_000, limit=50_000_000, width=8000, height=8000, frames=1
    ),
    processing.ImageProblem(
        "max_pixels", "-", pixels=30_000, limit=25_000, width=100, height=100, frames=3
    ),
    processing.ImageProblem("max_pixels", "-", pixels=10_000_000_000, limit=50_000_000),
    processing.ImageProblem("max_pixels", "-", pixels=None, limit=50_000_000),
    processing.ImageProblem("max_jpeg_scans", "-", scans=400, limit=100, progressive=True),
    processing.ImageProblem("max_jpeg_scans", "-", scans=400, limit=100, progressive=False),
    processing.ImageProblem(
        "max_decode_memory",
        "-",
        memory=485 * 1024 * 1024,
        limit=256 * 1024 * 1024,
        width=7070,
        height=7070,
        format="PNG",
    ),
    processing.ImageProblem("corrupt", "-", reason="header", format="PNG"),
    processing.ImageProblem("corrupt", "-", reason="truncated", format="JPEG"),
    processing.ImageProblem("corrupt", "-", reason="no_image_data"),
    processing.ImageProblem("corrupt", "-", reason="bit_depth", format="JPEG", bits=12),
    processing.ImageProblem("corrupt", "-", reason="damaged", detail="broken PNG file"),
]


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p.code}-{sorted(p.params)}")
def test_every_upload_message_is_translated(problem):
    with translation.override("en"):
        english = wording.problem_message(problem)
    assert english != problem.message  # made from code and params, not the English message
    for language in LANGUAGES:
        with translation.override(language):
            translated = wording.problem_message(problem)
        assert translated != english, (language, english)


def test_sizes_and_pixels_use_the_languages_number_format():
    big, pixels = PROBLEMS[1], PROBLEMS[6]
    with translation.override("de"):
        assert "5,6\xa0MB" in wording.problem_message(big)
        assert wording.problem_message(pixels) == (
            "Das Bild hat 0,030 Megapixel (100×100 in 3 Einzelbildern); "  # noqa: RUF001
            "die Grenze liegt bei 0,025 Megapixeln"
        )
    with translation.override("fr"):
        assert "5,6\xa0Mo" in wording.problem_message(big)
        assert "10\xa0000 mégapixels" in wording.problem_message(PROBLEMS[7])


def test_the_processing_layer_stays_english_and_free_of_django():
    import io

    with pytest.raises(processing.ImageProblem) as caught:
        processing.check_byte_size(io.BytesIO(b"x" * 11), 10)
    assert caught.value.message == "the file is 11 bytes; the limit is 10 bytes"
    assert caught.value.params == {"size": 11, "limit": 10}
    imports_django = re.compile(r"^\s*(?:from|import)\s+django\b", re.MULTILINE)
    for module in (PACKAGE / "processing").rglob("*.py"):
        assert not imports_django.search(module.read_text(encoding="utf-8")), module


# -- the rest of the app's strings -------------------------------------------------------


def test_model_names_and_status_labels_are_translated():
    with translation.override("de"):
        assert str(UploadedImage._meta.verbose_name) == "hochgeladenes Bild"
        assert str(UploadedImage._meta.get_field("size").verbose_name) == "Größe in Bytes"
        assert str(dict(Status.choices)[Status.FAILED]) == "Fehlgeschlagen"
    with translation.override("fr"):
        assert str(UploadedImage._meta.verbose_name_plural) == "images téléversées"
        assert str(dict(Status.choices)[Status.PENDING]) == "En attente"


def test_check_messages_and_hints_are_translated(settings):
    settings.IMAGE_SYNC = {"QUALITY": 0}
    with translation.override("de"):
        [message] = [m for m in check_settings() if m.id == "django_image_sync.E006"]
    assert message.msg == (
        "IMAGE_SYNC['QUALITY'] ist 0; erwartet wird eine ganze Zahl von 1 bis 100."
    )
    assert message.hint == (
        "75 bis 90 eignet sich für das Web; über 95 kommen vor allem Bytes hinzu."
    )
    with translation.override("en"):
        [message] = [m for m in check_settings() if m.id == "django_image_sync.E006"]
    assert message.hint == "75 to 90 suits the web; above 95 mostly adds bytes."


@pytest.mark.django_db
def test_management_command_help_and_output_are_translated():
    from io import StringIO

    out = StringIO()
    with translation.override("fr"):
        help_text = SweepCommand().create_parser("manage.py", "image_sync_sweep").format_help()
        call_command("image_sync_sweep", stdout=out)
    help_text = " ".join(help_text.split())  # as argparse wrapped it
    assert "Remet en file d’attente les images restées en attente" in help_text  # noqa: RUF001
    assert "(par défaut 500)" in help_text
    assert out.getvalue().strip() == "0 image remise en file d’attente."  # noqa: RUF001


@pytest.mark.django_db
def test_a_worker_failure_is_shown_in_the_readers_language(alice, alice_client, settings):
    """The worker records a failure as English (``error``, for logs) plus a code
    and figures; the API, the detail page and the admin word it for the reader."""
    from django_image_sync import services

    [outcome] = services.upload_images([upload(jpeg_bytes((640, 480), seed=91))], owner=alice)
    # The budget was lowered after the upload: the worker refuses to decode it.
    settings.IMAGE_SYNC = {**settings.IMAGE_SYNC, "MAX_DECODE_MEMORY": 64 * 1024}
    assert services.process_image(outcome.image.pk) == Status.FAILED
    image = UploadedImage.objects.get(pk=outcome.image.pk)
    assert image.error_code == "max_decode_memory"
    assert image.error.startswith("photo.jpg: the image needs about")  # English, for logs

    url = f"/api/images/{image.pk}/"
    english = alice_client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["error"]
    german = alice_client.get(url, HTTP_ACCEPT_LANGUAGE="de").json()["error"]
    french = alice_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").json()["error"]
    assert english.startswith("photo.jpg: the image needs about")
    assert "64.0\xa0KB" in english
    assert german.startswith("photo.jpg: ")
    assert "64,0\xa0KB" in german
    assert "64,0\xa0Ko" in french
    assert len({english, german, french}) == 3
    page = alice_client.get(f"/images/{image.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert german in page.replace("&#x27;", "'")

    # Starting over clears the code with the text.
    services.reprocess(UploadedImage.objects.filter(pk=image.pk))
    image.refresh_from_db()
    assert (image.error, image.error_code, image.error_params) == ("", "", {})


@pytest.mark.parametrize(
    ("code", "params", "english"),
    [
        ("attempts", {"count": 5}, "gave up after 5 attempts"),
        ("retries", {"count": 4, "detail": "boom"}, "gave up after 4 tries: boom"),
        (
            "retrying",
            {"detail": "boom"},
            "trying again automatically after a temporary failure: boom",
        ),
        ("horizon", {"seconds": 86_400, "detail": "x"}, "gave up after trying for 1\xa0day: x"),
        ("unprocessable", {"detail": "bad Huffman"}, "the image cannot be processed: bad Huffman"),
        ("unknown-code", {}, "the stored text"),
    ],
)
def test_every_worker_failure_code_is_worded_and_translated(code, params, english):
    with translation.override("en"):
        assert wording.failure_message(code, params, "the stored text") == english
    for language in ("de", "fr"):
        with translation.override(language):
            translated = wording.failure_message(code, params, "the stored text")
        if code == "unknown-code":
            assert translated == english  # kept as stored
        else:
            assert translated != english


def test_megapixels_are_rounded_not_cut_off():
    assert wording.megapixels(54_990_000) == "55"
    assert wording.megapixels(999_999) == "1.00"  # two significant digits below 1 MP
    just_over = processing.ImageProblem(
        "max_pixels", "", pixels=50_090_000, limit=50_000_000, width=10_018, height=5_000
    )
    assert wording.problem_message(just_over).startswith("the image has 50.1 megapixels")
