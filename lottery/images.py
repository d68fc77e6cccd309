"""Where the images a page shows may come from: this server's own `/static/` files and uploaded
`/media/` images (lottery/media.py), or https on
an allowed host (WeChat's avatar and image CDNs by default). A viewer's browser fetches every
image on the join, result and winners pages, so an image on any other host would hand that host
the viewer's address; the pages' Content-Security-Policy names the same hosts."""
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# thirdwx.qlogo.cn and wx.qlogo.cn serve WeChat avatars (getUserInfo's avatarUrl);
# mmbiz.qpic.cn serves images uploaded through WeChat's platforms.
WECHAT_IMAGE_HOSTS = ("thirdwx.qlogo.cn", "wx.qlogo.cn", "mmbiz.qpic.cn")
MAX_IMAGE_URL = 512
# Characters of a URL, less those that could close an attribute or a CSS url() (quotes,
# parentheses, backslash, spaces, angle brackets).
URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]+")
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


@dataclass(frozen=True)
class ImageSources:
    """The allowed image hosts; `/static/` and `/media/` on this server are always allowed."""

    hosts: tuple[str, ...] = WECHAT_IMAGE_HOSTS

    @classmethod
    def parse(cls, text: str) -> "ImageSources":
        """From a comma-separated list of host names; ValueError naming a malformed one."""
        hosts = tuple(dict.fromkeys(h.strip().lower() for h in text.split(",") if h.strip()))
        for host in hosts:
            if not HOST_NAME.fullmatch(host):
                raise ValueError(f"not a host name: {host!r} (no scheme, port or path)")
        return cls(hosts)

    def allows(self, url: object) -> bool:
        """Whether `url` is an image a page may show."""
        if not isinstance(url, str) or not 0 < len(url) <= MAX_IMAGE_URL or not URL_CHARACTERS.fullmatch(url):
            return False
        if url.startswith("/"):
            path = url.split("?", 1)[0].split("#", 1)[0]
            return path.startswith(("/static/", "/media/")) and "//" not in path and ".." not in path.split("/")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        return (parts.scheme == "https" and parts.hostname in self.hosts and port in (None, 443)
                and parts.username is None and parts.password is None)
