"""The server's media folder: product images the operator uploads in the console, served at
`/media/<name>`. Only PNG, JPEG, GIF and WebP are kept, told by their first bytes (never by the
name or the type the browser claims), at most MAX_IMAGE_BYTES; a file is named by the SHA-256 of
its content, so the same picture twice is one file and no name comes from the uploader."""
import hashlib
import os

from lottery.errors import InvalidInput

MAX_IMAGE_BYTES = 800 * 1024  # under the HTTP server's 1 MiB body limit, with room for the form
URL_PREFIX = "/media/"


def image_type(data: bytes) -> str | None:
    """The file extension of an image format we keep, from the data's signature; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class MediaFolder:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def save_image(self, data: bytes) -> str:
        """Keep an uploaded image; its URL path (`/media/<sha256>.<ext>`). InvalidInput when it is
        empty, too large or not an image of a kept type."""
        if not data:
            raise InvalidInput("请选择图片文件")
        if len(data) > MAX_IMAGE_BYTES:
            raise InvalidInput(f"图片不能超过 {MAX_IMAGE_BYTES // 1024} KB")
        extension = image_type(data)
        if extension is None:
            raise InvalidInput("只支持 PNG、JPEG、GIF 或 WebP 图片")
        name = f"{hashlib.sha256(data).hexdigest()[:32]}.{extension}"
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, name)
        if not os.path.exists(path):
            partial = f"{path}.{os.getpid()}.part"
            with open(partial, "wb") as out:
                out.write(data)
            os.replace(partial, path)  # whole or absent, never half-written
        return URL_PREFIX + name
