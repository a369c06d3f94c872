"""The credentials file: named connection profiles on disk, and which credentials a command uses.

The file holds live secrets (API keys, OAuth refresh tokens), so it is written 0600 and
atomically: a crash mid-write leaves the previous file intact, never a truncated one, because a
truncated file would lose the only valid refresh token after Close's rotation. A file that group
or others can read is *tightened* to 0600 with a warning rather than refused: refusing would lock
the user out of a working login, and the secrets may already have leaked, which the warning says.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import stat
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx2
from authlib.common.security import generate_token
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from closeflow._clock import Clock
from closeflow.close._auth import ApiKey, Credentials
from closeflow.close._client import DEFAULT_BASE_URL
from closeflow.close._errors import ConfigError
from closeflow.close._oauth import OAuthApp, OAuthCredentials, OAuthToken

NO_CREDENTIALS = "no Close credentials: run `closeflow auth login`, or set CLOSE_API_KEY"

log = logging.getLogger(__name__)


class ApiKeyProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["api_key"] = "api_key"
    api_key: SecretStr
    base_url: str | None = None


class OAuthProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["oauth"] = "oauth"
    client_id: str
    client_secret: SecretStr
    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: float | None = None
    organization_id: str | None = None
    user_id: str | None = None
    base_url: str | None = None

    @classmethod
    def from_token(
        cls, client_id: str, client_secret: str, token: OAuthToken, *, base_url: str | None = None
    ) -> OAuthProfile:
        return cls(
            client_id=client_id,
            client_secret=SecretStr(client_secret),
            base_url=base_url,
            **_token_fields(token),
        )

    def token(self) -> OAuthToken:
        return OAuthToken(
            access_token=self.access_token.get_secret_value(),
            refresh_token=self.refresh_token.get_secret_value() if self.refresh_token else None,
            expires_at=self.expires_at,
            organization_id=self.organization_id,
            user_id=self.user_id,
        )


Profile = Annotated[ApiKeyProfile | OAuthProfile, Field(discriminator="kind")]
_PROFILES: TypeAdapter[dict[str, Profile]] = TypeAdapter(dict[str, Profile])


def _token_fields(token: OAuthToken) -> dict[str, Any]:
    return {
        "access_token": SecretStr(token.access_token),
        "refresh_token": SecretStr(token.refresh_token) if token.refresh_token else None,
        "expires_at": token.expires_at,
        "organization_id": token.organization_id,
        "user_id": token.user_id,
    }


@dataclass(frozen=True)
class CredentialsDocument:
    default_profile: str | None
    profiles: dict[str, ApiKeyProfile | OAuthProfile]


def _validate(raw: object, *, where: str) -> dict[str, ApiKeyProfile | OAuthProfile]:
    try:
        return _PROFILES.validate_python(raw)
    except PydanticValidationError as exc:
        # Pydantic's message repeats the input, which holds secrets: report locations only.
        problems = "; ".join(
            f"profiles.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None


def default_credentials_path(env: Mapping[str, str] = os.environ) -> Path:
    config_dir = env.get("CLOSEFLOW_CONFIG_DIR")
    base = Path(config_dir) if config_dir else Path.home() / ".config" / "closeflow"
    return base / "credentials.json"


def _plain(profile: ApiKeyProfile | OAuthProfile) -> dict[str, Any]:
    """The profile as JSON-ready data, secrets revealed: only ever written to the 0600 file."""
    return {
        key: value.get_secret_value() if isinstance(value, SecretStr) else value
        for key, value in profile.model_dump().items()
    }


class CredentialsFile:
    """``{"default_profile": name, "profiles": {name: profile}}`` in one JSON file."""

    def __init__(self, path: Path | str | None = None, *, env: Mapping[str, str] = os.environ) -> None:
        self.path = Path(path) if path is not None else default_credentials_path(env)

    def load(self) -> CredentialsDocument:
        """The default profile's name and every profile; an absent file is an empty one."""
        try:
            raw = self._read()
        except FileNotFoundError:
            return CredentialsDocument(None, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.path}: expected a JSON object at the top level")
        default = raw.get("default_profile")
        if default is not None and not isinstance(default, str):
            raise ConfigError(f"{self.path}: default_profile must be a profile name")
        return CredentialsDocument(default, _validate(raw.get("profiles") or {}, where=str(self.path)))

    def profiles(self) -> dict[str, ApiKeyProfile | OAuthProfile]:
        return self.load().profiles

    def default_profile(self) -> str | None:
        return self.load().default_profile

    def get(self, name: str) -> ApiKeyProfile | OAuthProfile:
        profiles = self.profiles()
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile {name!r} in {self.path} (profiles: {known})")
        return profiles[name]

    def save_profile(self, name: str, profile: ApiKeyProfile | OAuthProfile | Mapping[str, Any]) -> None:
        """Add or replace a profile (a model or its plain fields); the first one saved is the default."""
        if not name or not name.strip():
            raise ConfigError("a profile needs a name")
        if not isinstance(profile, ApiKeyProfile | OAuthProfile):
            profile = _validate({name: dict(profile)}, where=f"profile {name!r}")[name]
        document = self.load()
        self._write(document.default_profile or name, {**document.profiles, name: profile})

    def delete_profile(self, name: str) -> None:
        document = self.load()
        if name not in document.profiles:
            raise ConfigError(f"no profile {name!r} in {self.path}")
        remaining = {key: value for key, value in document.profiles.items() if key != name}
        self._write(None if document.default_profile == name else document.default_profile, remaining)

    def set_default(self, name: str) -> None:
        document = self.load()
        if name not in document.profiles:
            raise ConfigError(f"no profile {name!r} in {self.path}")
        self._write(name, document.profiles)

    def token_store(self, name: str) -> ProfileTokenStore:
        return ProfileTokenStore(self, name)

    def _read(self) -> Any:
        with open(self.path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                log.warning(
                    "%s was readable by other users (mode %o); tightened to 0600. "
                    "Consider rotating the secrets it holds.",
                    self.path,
                    stat.S_IMODE(mode),
                )
                os.fchmod(handle.fileno(), 0o600)
            try:
                return json.load(handle)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{self.path}: not valid JSON (line {exc.lineno})") from None

    def _write(self, default: str | None, profiles: Mapping[str, ApiKeyProfile | OAuthProfile]) -> None:
        document = {
            "default_profile": default,
            "profiles": {name: _plain(profile) for name, profile in profiles.items()},
        }
        write_private_file(self.path, json.dumps(document, indent=2) + "\n")

    def __repr__(self) -> str:
        return f"CredentialsFile({str(self.path)!r})"


def write_private_file(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, readable by the owner only.

    The temporary file is created 0600 from the start (never chmod-ed after the secret is in
    it), flushed to disk, then renamed over the target: readers see the old file or the new one.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{generate_token(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        # The rename is only durable once the directory entry is on disk.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# Declared registry: one asyncio lock per (event loop, credentials file, profile), so every
# OAuthCredentials of one profile in this process refreshes one at a time. Across processes the
# same is done with an advisory lock on a file beside the credentials file.
_REFRESH_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


class ProfileTokenStore:
    """Writes each rotated OAuth token pair back into its profile (``OAuthCredentials``'s store),
    and lets every holder of the profile, in this process or another, refresh one at a time."""

    def __init__(self, file: CredentialsFile, name: str) -> None:
        self.file = file
        self.name = name

    def latest(self) -> OAuthToken | None:
        profile = self.file.profiles().get(self.name)
        return profile.token() if isinstance(profile, OAuthProfile) else None

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        locks = _REFRESH_LOCKS.setdefault(asyncio.get_running_loop(), {})
        async with locks.setdefault((str(self.file.path), self.name), asyncio.Lock()):
            self.file.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(f"{self.file.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the advisory lock

    def save(self, token: OAuthToken) -> None:
        profile = self.file.get(self.name)
        if not isinstance(profile, OAuthProfile):
            raise ConfigError(f"profile {self.name!r} is not an OAuth profile")
        self.file.save_profile(self.name, profile.model_copy(update=_token_fields(token)))

    def __repr__(self) -> str:
        return f"ProfileTokenStore({self.file!r}, {self.name!r})"


@dataclass(frozen=True)
class Connection:
    """What a command connects with, and where that came from (for `closeflow auth status`)."""

    credentials: Credentials
    base_url: str
    profile_name: str | None
    source: Literal["flag", "env", "profile"]


def resolve_connection(
    *,
    profile: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] = os.environ,
    path: Path | str | None = None,
    clock: Clock | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Connection:
    """Pick credentials and base URL: flags, then environment, then the credentials file.

    An explicitly named ``profile`` counts as a flag and beats ``CLOSE_API_KEY``: someone who
    typed ``--profile prod`` must not silently write to whatever org the environment points at.
    The file's *default* profile comes after the environment. ``clock`` and ``transport`` are
    handed to OAuth credentials for token refreshes.
    """
    env_base = env.get("CLOSE_BASE_URL") or None
    if api_key:
        return Connection(ApiKey(api_key), base_url or env_base or DEFAULT_BASE_URL, None, "flag")
    file = CredentialsFile(path, env=env)
    if profile is None and env.get("CLOSE_API_KEY"):
        return Connection(ApiKey(env["CLOSE_API_KEY"]), base_url or env_base or DEFAULT_BASE_URL, None, "env")
    name = profile or file.default_profile()
    if name is None:
        raise ConfigError(NO_CREDENTIALS)
    stored = file.get(name)
    # CLOSE_BASE_URL pairs with CLOSE_API_KEY; a stored profile keeps its own host unless a
    # --base-url flag says otherwise, so a profile's secrets never travel to another server.
    url = base_url or stored.base_url or DEFAULT_BASE_URL
    credentials: Credentials
    if isinstance(stored, ApiKeyProfile):
        credentials = ApiKey(stored.api_key.get_secret_value())
    else:
        app = OAuthApp.for_base_url(stored.client_id, stored.client_secret.get_secret_value(), url)
        credentials = OAuthCredentials(
            app, stored.token(), store=file.token_store(name), clock=clock, transport=transport
        )
    return Connection(credentials, url, name, "profile")
