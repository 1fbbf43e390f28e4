"""Report and feedback photos: checked (type, size, pixels), re-encoded without metadata, stored by content."""
from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from geodata.errors import DomainError, TooLargeError, UnsupportedTypeError, not_found
from geodata.models import BIGINT_MAX, IssuePhoto

PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass(frozen=True)
class PhotoIn:
    data: bytes
    content_type: str | None = None
    filename: str | None = None
    field: str = "photos"


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    content_type: str
    sha256: str
    width: int
    height: int

    @property
    def ext(self) -> str:
        return PHOTO_TYPES[self.content_type]


PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
#: how each kind is written again after decoding
_SAVE_OPTIONS = {"image/jpeg": {"quality": 90, "optimize": True}, "image/png": {"optimize": True},
                 "image/webp": {"quality": 90}}


def _without_metadata(img: Any, kind: str) -> Any:
    """A copy of ``img``'s pixels (first frame) in a mode ``kind`` can store, with no metadata at
    all: a fresh image, so no EXIF, XMP, ICC profile, text chunk or comment rides along."""
    from PIL import Image

    modes = {"image/jpeg": ("RGB", "L"), "image/png": ("RGB", "RGBA", "L", "LA"), "image/webp": ("RGB", "RGBA")}[kind]
    alpha = "A" in img.mode or "transparency" in img.info
    target = "RGBA" if alpha and "RGBA" in modes else "RGB"
    icc = img.info.get("icc_profile")
    if icc:  # colours are kept by converting to sRGB before the profile is dropped
        try:
            from PIL import ImageCms

            img = ImageCms.profileToProfile(img.convert(target) if img.mode not in ("RGB", "CMYK") else img,
                                            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                            ImageCms.createProfile("sRGB"), outputMode=target)
        except Exception:
            pass
    if img.mode not in modes:
        img = img.convert(target)
    clean = Image.new(img.mode, img.size)
    clean.paste(img)
    return clean


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


#: bytes at the start of a photo that tell its type (WebP's the most: RIFF, a size, WEBP)
SNIFF_BYTES = 12


def photo_kind(head: bytes, content_type: str | None, i: int, fld: str) -> str:
    """The photo's type from its first :data:`SNIFF_BYTES` bytes (magic numbers; what it claims to be
    must agree), or ``UnsupportedTypeError`` (415). Checked on the first bytes alone before anything
    decodes the whole photo, so a body of junk costs next to nothing."""
    kind = _sniff(head)
    declared = (content_type or "").split(";")[0].strip().lower() or None
    if declared == "image/jpg":
        declared = "image/jpeg"
    if kind is None or (declared not in (None, "application/octet-stream") and declared != kind):
        raise UnsupportedTypeError("photo_type", f"第 {i + 1} 张照片不是 JPEG、PNG 或 WebP 图片",
                                   f"photo {i + 1} is not a JPEG, PNG or WebP image", field=fld)
    return kind


class PhotoStore:
    """Content-addressed photo files under ``root`` (``settings.var_dir / 'uploads'``): type checked
    by magic bytes, size ≤ ``max_bytes``, at most ``max_count``, at most ``max_pixels``; every photo
    is decoded in full and re-encoded, so what is stored carries no metadata (EXIF with GPS and
    camera, XMP, ICC profile, comments) and is known to be a whole image."""

    def __init__(self, root: Path, max_bytes: int = 5 * 1024 * 1024, max_count: int = 9,
                 max_pixels: int = 25_000_000):
        self.root, self.max_bytes, self.max_count, self.max_pixels = Path(root), max_bytes, max_count, max_pixels

    def check(self, photos: Sequence[PhotoIn]) -> list[CheckedPhoto]:
        if len(photos) > self.max_count:
            raise TooLargeError("too_many_photos", f"照片最多 {self.max_count} 张", f"at most {self.max_count} photos",
                               field="photos")
        out = []
        for i, p in enumerate(photos):
            fld = f"{p.field}[{i}]"
            if len(p.data) > self.max_bytes:
                raise TooLargeError("photo_too_large", f"第 {i + 1} 张照片超过 {self.max_bytes // 1024} KB",
                                   f"photo {i + 1} is larger than {self.max_bytes // 1024} KB", field=fld)
            if not p.data:
                raise DomainError("photo_empty", f"第 {i + 1} 张照片为空", f"photo {i + 1} is empty", field=fld)
            kind = photo_kind(p.data, p.content_type, i, fld)
            data, w, h = self._reencode(p.data, kind, i, fld)
            out.append(CheckedPhoto(data, kind, hashlib.sha256(data).hexdigest(), w, h))
        return out

    def _reencode(self, data: bytes, kind: str, i: int, fld: str) -> tuple[bytes, int, int]:
        """Decode the whole image (the header alone proves nothing), apply its EXIF orientation,
        and encode the pixels again in the same format without any metadata."""
        from PIL import Image, ImageOps

        try:
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]]) as img:
                w, h = img.size
                if w * h > self.max_pixels:  # checked before decoding: no decompression bombs
                    raise TooLargeError("photo_too_many_pixels",
                                       f"第 {i + 1} 张照片像素过多（{w}×{h}，最多 {self.max_pixels // 1_000_000} 百万像素）",
                                       f"photo {i + 1} has too many pixels ({w}×{h}; at most "
                                       f"{self.max_pixels // 1_000_000} megapixels)", field=fld)
                img.load()
                upright = ImageOps.exif_transpose(img)
                clean = _without_metadata(upright, kind)
        except DomainError:
            raise
        except Exception:
            raise UnsupportedTypeError("photo_invalid", f"第 {i + 1} 张照片无法解码或已损坏",
                               f"photo {i + 1} cannot be decoded (corrupt or truncated)", field=fld) from None
        buf = io.BytesIO()
        clean.save(buf, PIL_FORMATS[kind], **_SAVE_OPTIONS[kind])
        return buf.getvalue(), clean.width, clean.height

    def save(self, photo: CheckedPhoto) -> str:
        rel = f"{photo.sha256[:2]}/{photo.sha256}{photo.ext}"
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".{id(photo)}.tmp")
            tmp.write_bytes(photo.data)
            tmp.replace(path)
        return rel

    def path(self, rel: str) -> Path:
        return self.root / rel


def check_photos(store: PhotoStore | None, photos) -> list[CheckedPhoto]:
    """Validate uploaded photos before anything is written (none → []; no storage → refused)."""
    if not photos:
        return []
    if store is None:
        raise DomainError("photos_unsupported", "未配置照片存储", "photo storage is not configured", field="photos")
    return store.check(photos)


def attach_photos(session: Session, store: PhotoStore | None, checked: list[CheckedPhoto], issue_id: int,
                   stage: str, event_id: int | None) -> list[IssuePhoto]:
    """Save photos already checked by :func:`check_photos` (so ``store`` is set when there are any)."""
    if not checked:
        return []
    rows = []
    for p in checked:
        rel = store.save(p)
        rows.append(IssuePhoto(issue_id=issue_id, event_id=event_id, stage=stage, sha256=p.sha256,
                               content_type=p.content_type, size_bytes=len(p.data), width=p.width,
                               height=p.height, path=rel))
    session.add_all(rows)
    session.flush()
    return rows


def photo_file(session: Session, photo_id: int, store: PhotoStore) -> tuple[Path, str]:
    """(file path, content type) of a stored photo."""
    p = session.get(IssuePhoto, photo_id) if isinstance(photo_id, int) and 0 < photo_id <= BIGINT_MAX else None
    if p is None or not store.path(p.path).is_file():
        raise not_found("照片", "photo", photo_id)
    return store.path(p.path), p.content_type
