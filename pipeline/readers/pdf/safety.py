"""Limits, checked with qpdf (pikepdf) before a text backend touches the file.

check_pdf refuses, before either backend opens the file, what would hurt the worker or mislead:
a user password (`encrypted`), a missing %%EOF (`corrupt`: a cut-off download read short would
pass for a shorter document), too many pages or streams that inflate like a bomb (`too_large`).
"""
from __future__ import annotations

import zlib
from pathlib import Path

from pipeline.readers.base import ReaderError

# pdfminer inflates each content stream, form XObject, font and CMap in one zlib call, so a
# stream that inflates to gigabytes would be allocated whole. Every stream the text path may
# decode is therefore inflated here first, in bounded chunks, only counting: a stream is refused
# (`too_large`) when it inflates past MAX_STREAM_BYTES, or more than MAX_RATIO times its encoded
# size once past RATIO_GRACE_BYTES (page content deflates 3-20x; a bomb 1000x), or all of them
# together past MAX_TOTAL_BYTES. Image XObjects are skipped: neither backend decodes them for text.
MAX_PAGES = 5000
MAX_STREAM_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 100
RATIO_GRACE_BYTES = 10 * 1024 * 1024
_CHUNK = 1 << 20
_FLATE = ("/FlateDecode", "/Fl")
# Filters whose output is no larger than their input, decoded whole when they come before an
# expanding one (an ASCII85-wrapped Flate bomb); or that no text backend decodes.
_TEXT_CODECS = ("/ASCIIHexDecode", "/AHx", "/ASCII85Decode", "/A85")
_PASS_THROUGH = ("/DCTDecode", "/DCT", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode", "/CCF", "/Crypt")
_EOF_WINDOW = 2048


class _TooLarge(Exception):
    pass


def _decode_text_codec(data: bytes, name: str) -> bytes:
    import base64
    import binascii

    if name in ("/ASCIIHexDecode", "/AHx"):
        hexdigits = bytes(b for b in data.split(b">", 1)[0] if chr(b) in "0123456789abcdefABCDEF")
        return binascii.unhexlify(hexdigits + b"0" * (len(hexdigits) % 2))
    body = data.split(b"~>", 1)[0]
    if body.startswith(b"<~"):
        body = body[2:]
    return base64.a85decode(body, adobe=False, ignorechars=b" \t\n\r\x0b\x0c\x00")


def _inflated_size(raw: bytes, filters: list[str], cap: int) -> int:
    """Bytes `raw` decodes to through a filter chain, counted in bounded chunks; _TooLarge past `cap`.

    ASCIIHex/ASCII85 before the first expanding filter are decoded whole (they shrink); chained
    Flate filters are inflated through each other chunk by chunk; RunLength output is counted
    from its length bytes. LZW (no streaming decoder at hand) is left to the worker limits, as
    are filters after the first expanding one, whose output is counted as is (an overestimate)."""
    data = raw
    stages: list[str] = []
    for f in filters:
        if f in _FLATE:
            stages.append("flate")
        elif f in ("/RunLengthDecode", "/RL"):
            stages.append("rl")
        elif f in _TEXT_CODECS and not stages:
            try:
                data = _decode_text_codec(data, f)
            except (ValueError, TypeError):
                return len(data)  # broken: the backend will say so; nothing large to allocate here
        elif f in _TEXT_CODECS or f in _PASS_THROUGH:
            continue
        else:
            break
    if not stages:
        return len(data)

    def flate(chunks):
        d = zlib.decompressobj()
        for chunk in chunks:
            while chunk:
                out = d.decompress(chunk, _CHUNK)
                chunk = d.unconsumed_tail
                if out:
                    yield out
                if d.eof:
                    return
        tail = d.flush()
        if tail:
            yield tail

    def count_rl(chunks) -> int:
        n, pending = 0, 0  # pending: literal bytes still to skip
        for chunk in chunks:
            i = 0
            while i < len(chunk):
                if pending:
                    step = min(pending, len(chunk) - i)
                    i += step
                    pending -= step
                    continue
                length = chunk[i]
                i += 1
                if length == 128:
                    return n
                if length < 128:
                    n += length + 1
                    pending = length + 1
                else:
                    n += 257 - length
                    pending = 1
                if n > cap:
                    raise _TooLarge
        return n

    stream = iter([data[i:i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""])
    total = 0
    try:
        for stage in stages:
            if stage == "rl":
                return count_rl(stream)  # RunLength is last in any sane chain
            stream = flate(stream)
        for out in stream:
            total += len(out)
            if total > cap:
                raise _TooLarge
    except zlib.error:
        return total  # a broken stream: the backend will say so; nothing more to allocate here
    return total


def _filters(d) -> list[str]:
    import pikepdf

    f = d.get("/Filter")
    if f is None:
        return []
    if isinstance(f, pikepdf.Array):
        return [str(x) for x in f]
    return [str(f)]


def check_pdf(path: Path) -> int:
    """Page count after the checks that need no text backend; ReaderError on refusal.

    `encrypted` when qpdf cannot open it with an empty password (an owner-password-only PDF
    opens and is read); `corrupt` when it does not open or has no %%EOF near its end (a
    truncated download would be read as a shorter document); `too_large` past MAX_PAGES or
    the stream limits above."""
    import pikepdf

    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - _EOF_WINDOW))
        if b"%%EOF" not in fh.read():
            raise ReaderError("corrupt", f"{path.name}: no %%EOF at the end: a truncated or damaged PDF")
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as exc:
        raise ReaderError("encrypted", f"{path.name} needs a password to open") from exc
    except (pikepdf.PdfError, ValueError, RuntimeError, OSError) as exc:
        raise ReaderError("corrupt", f"{path.name} does not open as a PDF: {exc}") from exc
    with pdf:
        try:
            n_pages = len(pdf.pages)
        except (pikepdf.PdfError, RuntimeError, ValueError) as exc:
            raise ReaderError("corrupt", f"{path.name}: page tree unreadable: {exc}") from exc
        if n_pages > MAX_PAGES:
            raise ReaderError("too_large", f"{path.name} has {n_pages} pages (limit {MAX_PAGES})")
        total = 0
        for obj in pdf.objects:
            if not isinstance(obj, pikepdf.Stream):
                continue
            try:
                d = obj.stream_dict
                if d.get("/Subtype") == pikepdf.Name.Image:
                    continue
                filters = _filters(d)
                if not filters:
                    continue
                raw = obj.read_raw_bytes()
            except (pikepdf.PdfError, RuntimeError, ValueError):
                continue  # unreadable here; the backend decides whether the page is readable
            by_ratio = max(RATIO_GRACE_BYTES, MAX_RATIO * max(len(raw), 1))
            cap = min(MAX_STREAM_BYTES, by_ratio, MAX_TOTAL_BYTES - total)
            try:
                total += _inflated_size(raw, filters, cap)
            except _TooLarge:
                if cap == MAX_TOTAL_BYTES - total:
                    why = f"the streams inflate to more than {MAX_TOTAL_BYTES >> 20} MB together"
                elif cap == by_ratio:
                    why = (f"object {obj.objgen[0]} inflates more than {MAX_RATIO}x its {len(raw)} "
                           "encoded bytes: a decompression bomb")
                else:
                    why = f"object {obj.objgen[0]} inflates past {MAX_STREAM_BYTES >> 20} MB"
                raise ReaderError("too_large", f"{path.name}: {why}") from None
        return n_pages
