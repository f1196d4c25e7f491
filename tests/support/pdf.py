"""Reading the PDFs the services issue, as a clerk's machine would: text (pypdf), fonts, character boxes
(pdfplumber), page 1 as an image (pypdfium2) compared with a stored golden image (tests/golden/)."""

import io
import os
from pathlib import Path

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
