"""Reading the PDFs the services issue, as a clerk's machine would: text (pypdf), fonts, character boxes
(pdfplumber), page 1 as an image (pypdfium2) compared with a stored golden image (tests/golden/)."""

import io
import os
from pathlib import Path
from typing import Any

import pdfplumber
import pypdf
import pypdfium2
from PIL import Image, ImageChops

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"  # `make golden` rewrites the references
TOLERANCE = 0.002  # share of pixels that may differ (anti-aliasing across library builds)


def text(pdf: bytes) -> str:
    """Every page's text, joined, without line breaks."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "".join(page.extract_text() for page in reader.pages).replace("\n", "")


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def fonts(pdf: bytes) -> dict[str, bool]:
    """Every font the pages use → whether its program is embedded (FontFile/FontFile2/FontFile3)."""
    out: dict[str, bool] = {}
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        for font in (page.get("/Resources", {}).get("/Font") or {}).values():
            font = font.get_object()
            descriptors = [font.get("/FontDescriptor")]
            descriptors += [d.get_object().get("/FontDescriptor") for d in font.get("/DescendantFonts", [])]
            embedded = any(d is not None and any(k in d.get_object() for k in ("/FontFile", "/FontFile2",
                                                                                "/FontFile3"))
                           for d in descriptors)
            out[str(font["/BaseFont"])] = out.get(str(font["/BaseFont"]), True) and embedded
    return out


def page_count(pdf: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def words(pdf: bytes, page: int = 0) -> list[dict]:
    """pdfplumber's words (text, x0, x1, top, bottom) of one page."""
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        return doc.pages[page].extract_words(keep_blank_chars=True, use_text_flow=True)


def png(pdf: bytes, page: int = 0, scale: float = 1.0) -> Image.Image:
    doc = pypdfium2.PdfDocument(pdf)
    try:
        return doc[page].render(scale=scale).to_pil().convert("L")
    finally:
        doc.close()


def assert_golden(pdf: bytes, name: str) -> None:
    """Page 1 against tests/golden/<name>.png, within TOLERANCE; GOLDEN_UPDATE=1 (make golden) rewrites it."""
    image = png(pdf)
    path = GOLDEN / f"{name}.png"
    if UPDATE or not path.exists():
        assert UPDATE, f"no golden image {path.name}: run `make golden` and look at it before committing"
        image.save(path, optimize=True)
        return
    reference = Image.open(path).convert("L")
    assert reference.size == image.size, f"{name}: page size {image.size} != golden {reference.size}"
    diff = ImageChops.difference(reference, image).point(lambda v: 255 if v > 64 else 0)
    changed = diff.histogram()[255] / (image.size[0] * image.size[1])
    assert changed <= TOLERANCE, f"{name}: {changed:.2%} of page 1 differs from tests/golden/{name}.png"


# --- PDF/A-2b (ISO 19005-2, level B): the requirements a reader of the file can check ---------------------------
# No PDF/A validator installs from a wheel (veraPDF is Java: the PyPI wrappers download its jar at run time), so the
# tests check what pypdf can read: header, trailer, XMP identification and its agreement with the Info dictionary,
# the output intent and its ICC profile, embedded fonts, no encryption, no forbidden filters, actions, external
# streams or image alternates, printable annotations. What this does not check: content-stream operators, colour
# spaces used against the output intent, glyph widths against the embedded programs, the XMP schema extensions.
XMP = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
       "dc": "http://purl.org/dc/elements/1.1/", "xmp": "http://ns.adobe.com/xap/1.0/",
       "pdfaid": "http://www.aiim.org/pdfa/ns/id/"}
FORBIDDEN_FILTERS = {"/LZWDecode", "/Crypt"}
FORBIDDEN_ACTIONS = {"/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/JavaScript", "/Hide",
                     "/SetOCGState", "/Rendition", "/Trans", "/GoTo3DView"}
FORBIDDEN_ANNOTATIONS = {"/Sound", "/Movie", "/Screen", "/3D", "/RichMedia"}


def _xmp_value(description, prefix: str, name: str) -> str | None:
    """A property of an rdf:Description, as attribute or element (rdf:Alt/Bag/Seq: its first rdf:li)."""
    namespace = XMP[prefix]
    if (value := description.get(f"{{{namespace}}}{name}")) is not None:
        return value
    element = description.find(f"{prefix}:{name}", XMP)
    if element is None:
        return None
    item = element.find(".//rdf:li", XMP)
    return (item if item is not None else element).text


def _pdf_date(value: str) -> str:
    """D:20261130000000Z / D:20261130000000+08'00' → 2026-11-30T00:00:00 + offset, as XMP writes it."""
    import re

    found = re.fullmatch(r"D:(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(Z|[+-]\d{2}'\d{2}'?)?", value)
    assert found, value
    y, mo, d, h, mi, s, zone = found.groups()
    zone = "+00:00" if zone in (None, "Z") else zone[:3] + ":" + zone[4:6]
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{zone}"


def pdfa_2b_problems(pdf: bytes) -> list[str]:
    """Every PDF/A-2b requirement (ISO 19005-2, clause in brackets) this file breaks, of those checkable here."""
    import xml.etree.ElementTree as ET

    problems: list[str] = []
    head = pdf[:64].split(b"\n")
    if not (head[0].startswith(b"%PDF-1.") and head[0][7:8].isdigit() and int(head[0][7:8]) <= 7):
        problems.append(f"6.1.2 header {head[0][:10]!r}: %PDF-1.n with n <= 7")
    if len(head) < 2 or not head[1].startswith(b"%") or sum(b > 127 for b in head[1][1:5]) < 4:
        problems.append("6.1.2 no binary comment (4 bytes > 127) after the header")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    trailer = reader.trailer
    if "/Encrypt" in trailer:
        problems.append("6.1.3 encrypted")
    identifier = trailer.get("/ID")
    if identifier is None or len(identifier) != 2:
        problems.append("6.1.3 trailer has no /ID of two strings")
    catalog = trailer["/Root"].get_object()

    # 6.6: XMP metadata identifies PDF/A-2, level B, and agrees with the Info dictionary
    metadata = catalog.get("/Metadata")
    if metadata is None:
        problems.append("6.6.2 no XMP metadata stream in the catalog")
    else:
        root = ET.fromstring(metadata.get_object().get_data())
        descriptions = root.findall(".//rdf:Description", XMP)

        def prop(prefix: str, name: str) -> str | None:
            return next((v for d in descriptions if (v := _xmp_value(d, prefix, name)) is not None), None)

        if prop("pdfaid", "part") != "2" or prop("pdfaid", "conformance") not in ("B", "b"):
            problems.append(f"6.6.4 pdfaid part={prop('pdfaid', 'part')} conformance={prop('pdfaid', 'conformance')}")
        info = trailer.get("/Info")
        info = info.get_object() if info is not None else {}
        for key, prefix, name, convert in (("/Title", "dc", "title", str), ("/Creator", "xmp", "CreatorTool", str),
                                           ("/CreationDate", "xmp", "CreateDate", _pdf_date),
                                           ("/ModDate", "xmp", "ModifyDate", _pdf_date)):
            if key in info and convert(str(info[key])) != prop(prefix, name):
                problems.append(f"6.6.3 Info {key}={info[key]!r} but XMP {prefix}:{name}={prop(prefix, name)!r}")

    # 6.2.3: an output intent GTS_PDFA1 with an ICC profile (one profile if several intents)
    intents = [i.get_object() for i in catalog.get("/OutputIntents", [])]
    pdfa = [i for i in intents if i.get("/S") == "/GTS_PDFA1"]
    if not pdfa:
        problems.append("6.2.3 no /GTS_PDFA1 output intent")
    profiles = set()
    for intent in pdfa:
        profile = intent.get("/DestOutputProfile")
        if profile is None:
            problems.append("6.2.3 output intent without /DestOutputProfile")
            continue
        data = profile.get_object().get_data()
        profiles.add(data)
        channels = {1: b"GRAY", 3: b"RGB ", 4: b"CMYK"}.get(int(profile.get_object().get("/N", 0)))
        if data[36:40] != b"acsp" or data[16:20] != channels or data[8] > 4:
            problems.append("6.2.3 the output intent's ICC profile is not a v2/v4 profile of its /N colour space")
    if len(profiles) > 1:
        problems.append("6.2.3 output intents with different profiles")

    # 6.1.10, 6.1.7, 6.2.8, 6.3, 6.5, 6.6.1: walk every object reachable from the catalog
    seen: set[int] = set()
    stack: list[Any] = [catalog]
    while stack:
        node = stack.pop()
        if isinstance(node, pypdf.generic.IndirectObject):
            if node.idnum in seen:
                continue
            seen.add(node.idnum)
            node = node.get_object()
        if isinstance(node, pypdf.generic.ArrayObject):
            stack.extend(node)
            continue
        if not isinstance(node, pypdf.generic.DictionaryObject):
            continue
        filters = node.get("/Filter")
        filters = [filters] if isinstance(filters, pypdf.generic.NameObject) else list(filters or [])
        if FORBIDDEN_FILTERS & {str(f) for f in filters}:
            problems.append(f"6.1.7 forbidden filter {filters}")
        if isinstance(node, pypdf.generic.StreamObject) and any(k in node for k in ("/F", "/FFilter", "/FDecodeParms")):
            problems.append("6.1.7 a stream refers to an external file")
        if node.get("/S") in FORBIDDEN_ACTIONS or "/AA" in node:
            problems.append(f"6.5 forbidden action {node.get('/S') or '/AA'}")
        if node.get("/Subtype") == "/Image" and ("/Alternates" in node or "/OPI" in node or node.get("/Interpolate")):
            problems.append("6.2.8 image with /Alternates, /OPI or /Interpolate true")
        if node.get("/Type") == "/Annot" or (node.get("/Subtype") in FORBIDDEN_ANNOTATIONS | {"/Link", "/Widget"}):
            flags = int(node.get("/F", 0))
            if node.get("/Subtype") in FORBIDDEN_ANNOTATIONS or not flags & 4 or flags & (1 | 2 | 32 | 256):
                problems.append(f"6.3 annotation {node.get('/Subtype')} not allowed or not printable (F={flags})")
        if node.get("/Type") == "/Font" and node.get("/Subtype") not in ("/Type0", "/Type3"):
            descriptor = node.get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                problems.append(f"6.2.11.4 font {node.get('/BaseFont')} not embedded")
        if node.get("/Type") == "/Font" and node.get("/Subtype") == "/Type0":
            for descendant in node.get("/DescendantFonts", []):
                descriptor = descendant.get_object().get("/FontDescriptor")
                descriptor = descriptor.get_object() if descriptor is not None else {}
                if not any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    problems.append(f"6.2.11.4 font {node.get('/BaseFont')} not embedded")
        if "/EF" in node:
            problems.append("6.8 an embedded file (none of these documents carries one)")
        stack.extend(v for k, v in node.items() if k != "/Parent")
    names = catalog.get("/Names")
    if names is not None and any(k in names.get_object() for k in ("/JavaScript", "/EmbeddedFiles")):
        problems.append("6.5/6.8 JavaScript or embedded files in the name tree")
    return problems
