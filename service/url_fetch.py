"""Fetching a query image from a URL, guarded against server-side request forgery.

A URL query makes the service itself send a request, so a URL must not reach what the
client could not: image URLs are off unless hosts are allowlisted; only http(s); the
host must be on the allowlist; every address it resolves to must be public unless the
allowlist names that address or its network (no loopback, private or link-local
services); the connection goes to the address that was checked (no second lookup to
rebind); a redirect may stay on the same host only; the body must say it is an image
and stay under a size limit; and the whole fetch, redirects included, has a time limit.
Each refusal is an :class:`ImageUrlError` with its 4xx status.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from .settings import Settings
from .uploads import UploadError

MAX_REDIRECTS = 3
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ImageUrlError(UploadError):
    """An image URL the service refuses or cannot fetch; ``status`` is the 4xx to answer."""


@dataclass(frozen=True)
class UrlPolicy:
    """What image URLs may reach: host names and address networks, size and time limits."""

    hosts: frozenset[str]
    networks: tuple[Network, ...]
    max_bytes: int
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        hosts, networks = set(), []
        for entry in settings.image_url_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(
            frozenset(hosts),
            tuple(networks),
            settings.image_url_max_bytes,
            settings.image_url_timeout_s,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.hosts or self.networks)

    def listed(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def _address(text: str) -> Address | None:
    """An IP address (IPv4-mapped IPv6 as IPv4), or None for a host name."""
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _check_host(host: str, policy: UrlPolicy) -> None:
    literal = _address(host)
    if (literal is not None and policy.listed(literal)) or host in policy.hosts:
        return
    raise ImageUrlError(
        403, f"image URLs from host {host!r} are not allowed (not on the allowlist)"
    )


async def _resolve(host: str, port: int, policy: UrlPolicy) -> Address:
    """The first address of ``host``, after checking that every one of them may be reached."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ImageUrlError(422, f"cannot resolve the image URL's host {host!r}") from exc
    addresses = [a for a in (_address(str(info[4][0])) for info in infos) if a is not None]
    if not addresses:
        raise ImageUrlError(422, f"the image URL's host {host!r} has no address")
    for address in addresses:
        if not address.is_global and not policy.listed(address):
            raise ImageUrlError(
                403,
                f"the image URL's host {host!r} resolves to a private, loopback or reserved "
                "address, which is refused unless the allowlist names that address",
            )
    return addresses[0]


def _target(url: str, policy: UrlPolicy) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an allowed URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ImageUrlError(422, f"image URLs must be http or https, not {scheme or 'none'!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise ImageUrlError(422, "the image URL has an invalid port") from exc
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ImageUrlError(422, "the image URL has no host")
    _check_host(host, policy)
    return scheme, host, port


async def _get(client: httpx.AsyncClient, url: str, policy: UrlPolicy) -> httpx.Response:
    """One request to the checked address of ``url``'s host (the response is streamed)."""
    scheme, host, port = _target(url, policy)
    address = await _resolve(host, port, policy)
    parts = urlsplit(url)
    netloc = f"[{address}]" if address.version == 6 else str(address)
    pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
    name = f"[{host}]" if ":" in host else host  # an IPv6 literal
    default_port = port == (443 if scheme == "https" else 80)
    headers = {"Host": name if default_port else f"{name}:{port}", "Accept": "image/*"}
    request = client.build_request("GET", pinned, headers=headers)
    if scheme == "https":
        request.extensions["sni_hostname"] = host  # certificate checked against the name
    return await client.send(request, stream=True)


async def _read(response: httpx.Response, max_bytes: int) -> bytes:
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not kind.startswith("image/"):
        raise ImageUrlError(415, f"the image URL answered {kind or 'no type'!r}, not an image")
    too_large = f"the image URL's body exceeds the limit of {max_bytes} bytes"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ImageUrlError(413, too_large)
    data = bytearray()
    async for chunk in response.aiter_bytes():  # counted as decoded: no gzip bombs either
        data += chunk
        if len(data) > max_bytes:
            raise ImageUrlError(413, too_large)
    return bytes(data)


async def _fetch(url: str, policy: UrlPolicy) -> bytes:
    host = _target(url, policy)[1]
    client = httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=policy.timeout_s)
    async with client:
        for _ in range(MAX_REDIRECTS + 1):
            response = await _get(client, url, policy)
            try:
                if not response.is_redirect:
                    if response.status_code != 200:
                        raise ImageUrlError(
                            422, f"the image URL answered {response.status_code}, not 200"
                        )
                    return await _read(response, policy.max_bytes)
                url = urljoin(url, response.headers["location"])
                if (urlsplit(url).hostname or "").rstrip(".") != host:
                    raise ImageUrlError(403, "the image URL redirects to another host: refused")
            finally:
                await response.aclose()
    raise ImageUrlError(422, f"the image URL redirects more than {MAX_REDIRECTS} times")


async def fetch_image(url: str, policy: UrlPolicy) -> bytes:
    """The bytes of the image at ``url``, or :class:`ImageUrlError` (403 when image URLs
    are off or the URL may not be reached, 413 too large, 415 not an image, 422 when it
    cannot be fetched in time or at all)."""
    if not policy.enabled:
        raise ImageUrlError(403, "image URL queries are off on this service (see --image-url-host)")
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await _fetch(url, policy)
    except TimeoutError as exc:
        raise ImageUrlError(
            422, f"the image URL did not deliver within {policy.timeout_s:g} s"
        ) from exc
    except httpx.HTTPError as exc:
        raise ImageUrlError(422, f"cannot fetch the image URL: {type(exc).__name__}") from exc
