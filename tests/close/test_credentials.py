"""The credentials file (0600, atomic writes, profiles) and where a command's credentials come from."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from closeflow._clock import FakeClock
from closeflow.close._auth import ApiKey
from closeflow.close._client import DEFAULT_BASE_URL
from closeflow.close._credentials import (
    ApiKeyProfile,
    CredentialsFile,
    OAuthProfile,
    default_credentials_path,
    resolve_connection,
)
from closeflow.close._errors import ConfigError
from closeflow.close._oauth import OAuthCredentials, OAuthToken

FILE_KEY = "api_fromTheFileSecret"
ENV_KEY = "api_fromTheEnvironmentSecret"
FLAG_KEY = "api_fromTheFlagSecret"


def oauth_profile(**overrides: object) -> OAuthProfile:
    fields: dict[str, object] = {
        "client_id": "oa2client_1",
        "client_secret": SecretStr("client-secret-value"),
        "access_token": SecretStr("access-token-value"),
        "refresh_token": SecretStr("refresh-token-value"),
        "expires_at": 1_767_229_200.0,
        "organization_id": "orga_1",
        "user_id": "user_1",
        "base_url": "http://127.0.0.1:8765/api/v1",
    }
    fields.update(overrides)
    return OAuthProfile.model_validate(fields)


@pytest.fixture
def file(tmp_path: Path) -> CredentialsFile:
    return CredentialsFile(tmp_path / "config" / "credentials.json")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_default_path_honours_closeflow_config_dir(tmp_path: Path) -> None:
    assert default_credentials_path({"CLOSEFLOW_CONFIG_DIR": str(tmp_path)}) == tmp_path / "credentials.json"
    assert default_credentials_path({}) == Path.home() / ".config" / "closeflow" / "credentials.json"


def test_file_is_created_owner_only_in_an_owner_only_directory(file: CredentialsFile) -> None:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    assert mode(file.path) == 0o600
    assert mode(file.path.parent) == 0o700


def test_profiles_round_trip_through_the_file(file: CredentialsFile) -> None:
    key = ApiKeyProfile(api_key=SecretStr(FILE_KEY))
    prod = oauth_profile()
    file.save_profile("default", key)
    file.save_profile("prod", prod)

    reread = CredentialsFile(file.path)
    assert reread.profiles() == {"default": key, "prod": prod}
    assert reread.default_profile() == "default"
    on_disk = json.loads(file.path.read_text())
    assert on_disk["profiles"]["default"] == {"kind": "api_key", "api_key": FILE_KEY, "base_url": None}
    assert on_disk["profiles"]["prod"]["refresh_token"] == "refresh-token-value"


def test_a_profile_can_be_saved_from_plain_fields(file: CredentialsFile) -> None:
    token = OAuthToken(access_token="access-token-value", refresh_token="refresh-token-value", expires_at=2e9)
    file.save_profile("key", {"kind": "api_key", "api_key": FILE_KEY, "base_url": None})
    file.save_profile(
        "prod",
        {
            "kind": "oauth",
            "client_id": "oa2client_1",
            "client_secret": "client-secret-value",
            **token.to_profile(),
        },
    )
    document = file.load()
    assert document.default_profile == "key"
    assert document.profiles["key"] == ApiKeyProfile(api_key=SecretStr(FILE_KEY))
    prod = document.profiles["prod"]
    assert isinstance(prod, OAuthProfile)
    assert prod.token() == token


def test_saving_invalid_plain_fields_is_a_config_error_without_the_secret(file: CredentialsFile) -> None:
    with pytest.raises(ConfigError, match=r"profiles\.prod\.api_key\.api_key: Field required") as caught:
        file.save_profile("prod", {"kind": "api_key", "apikey": FILE_KEY})
    assert FILE_KEY not in f"{caught.value} {caught.value!r}"
    assert not file.path.exists()


def test_missing_file_reads_as_no_profiles(file: CredentialsFile) -> None:
    assert file.profiles() == {}
    assert file.default_profile() is None


def test_set_default_and_delete_profile(file: CredentialsFile) -> None:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    file.save_profile("prod", oauth_profile())
    file.set_default("prod")
    assert file.default_profile() == "prod"

    file.delete_profile("prod")
    assert list(file.profiles()) == ["default"]
    assert file.default_profile() is None
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        file.set_default("prod")
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        file.delete_profile("prod")


def test_a_crash_between_write_and_replace_leaves_the_old_file_whole(
    file: CredentialsFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    before = file.path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        file.save_profile("prod", oauth_profile())

    assert file.path.read_bytes() == before
    assert sorted(p.name for p in file.path.parent.iterdir()) == ["credentials.json"]


def test_the_temporary_file_is_owner_only_before_the_secret_is_written(
    file: CredentialsFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_replace = os.replace

    def check(src: str, dst: str) -> None:
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", check)
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    assert modes == [0o600]


def test_a_file_readable_by_others_is_tightened_with_a_warning(
    file: CredentialsFile, caplog: pytest.LogCaptureFixture
) -> None:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    os.chmod(file.path, 0o644)
    with caplog.at_level(logging.WARNING):
        assert list(file.profiles()) == ["default"]

    assert mode(file.path) == 0o600
    assert "readable by other users" in caplog.text
    assert FILE_KEY not in caplog.text


def test_a_malformed_profile_names_the_field_without_echoing_secrets(file: CredentialsFile) -> None:
    file.path.parent.mkdir(parents=True)
    file.path.write_text(
        json.dumps({"profiles": {"prod": {"kind": "oauth", "client_secret": "leaky-secret", "x": 1}}})
    )
    with pytest.raises(ConfigError) as caught:
        file.profiles()
    message = str(caught.value)
    assert "profiles.prod.oauth.client_id" in message
    assert "leaky-secret" not in f"{message} {caught.value!r}"


def test_invalid_json_is_a_config_error_naming_the_file(file: CredentialsFile) -> None:
    file.path.parent.mkdir(parents=True)
    file.path.write_text('{"profiles": ')
    with pytest.raises(ConfigError, match="not valid JSON"):
        file.profiles()


def test_profiles_never_show_secrets_in_repr(file: CredentialsFile) -> None:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    file.save_profile("prod", oauth_profile())
    shown = repr(file.profiles()) + str(file.profiles())
    for secret in (FILE_KEY, "client-secret-value", "access-token-value", "refresh-token-value"):
        assert secret not in shown


def test_token_store_writes_the_rotated_pair_into_its_profile(file: CredentialsFile) -> None:
    file.save_profile("prod", oauth_profile())
    rotated = OAuthToken(
        access_token="access-2", refresh_token="refresh-2", expires_at=2e9, organization_id="orga_1"
    )
    file.token_store("prod").save(rotated)

    stored = CredentialsFile(file.path).get("prod")
    assert isinstance(stored, OAuthProfile)
    assert stored.token().refresh_token == "refresh-2"
    assert stored.token().access_token == "access-2"
    assert stored.expires_at == 2e9
    assert stored.client_secret.get_secret_value() == "client-secret-value"
    assert mode(file.path) == 0o600


# --- precedence: flags > environment > profile ------------------------------------------------


@pytest.fixture
def with_profiles(file: CredentialsFile) -> CredentialsFile:
    file.save_profile("default", ApiKeyProfile(api_key=SecretStr(FILE_KEY)))
    file.save_profile("prod", oauth_profile())
    return file


def test_explicit_api_key_beats_environment_and_profiles(with_profiles: CredentialsFile) -> None:
    env = {"CLOSE_API_KEY": ENV_KEY}
    connection = resolve_connection(api_key=FLAG_KEY, profile="prod", env=env, path=with_profiles.path)
    assert connection.credentials == ApiKey(FLAG_KEY)
    assert (connection.source, connection.profile_name) == ("flag", None)
    assert connection.base_url == DEFAULT_BASE_URL


def test_environment_key_beats_the_files_default_profile(with_profiles: CredentialsFile) -> None:
    connection = resolve_connection(env={"CLOSE_API_KEY": ENV_KEY}, path=with_profiles.path)
    assert connection.credentials == ApiKey(ENV_KEY)
    assert connection.source == "env"


def test_an_explicitly_named_profile_beats_the_environment_key(with_profiles: CredentialsFile) -> None:
    connection = resolve_connection(profile="prod", env={"CLOSE_API_KEY": ENV_KEY}, path=with_profiles.path)
    assert isinstance(connection.credentials, OAuthCredentials)
    assert (connection.source, connection.profile_name) == ("profile", "prod")
    assert connection.base_url == "http://127.0.0.1:8765/api/v1"
    assert connection.credentials.app.token_url == "http://127.0.0.1:8765/oauth2/token/"
    assert connection.credentials.organization_id == "orga_1"


def test_the_default_profile_is_used_when_nothing_else_is_given(with_profiles: CredentialsFile) -> None:
    connection = resolve_connection(env={}, path=with_profiles.path)
    assert connection.credentials == ApiKey(FILE_KEY)
    assert (connection.source, connection.profile_name) == ("profile", "default")
    assert connection.base_url == DEFAULT_BASE_URL


def test_a_profile_keeps_its_own_host_unless_a_base_url_flag_overrides_it(
    with_profiles: CredentialsFile,
) -> None:
    # CLOSE_BASE_URL pairs with CLOSE_API_KEY; it must never send a stored profile's secrets elsewhere.
    env = {"CLOSE_BASE_URL": "http://env.test/api/v1"}
    path = with_profiles.path
    assert resolve_connection(profile="prod", env={}, path=path).base_url == "http://127.0.0.1:8765/api/v1"
    assert resolve_connection(profile="prod", env=env, path=path).base_url == "http://127.0.0.1:8765/api/v1"
    assert resolve_connection(env=env, path=path).base_url == DEFAULT_BASE_URL  # the default profile
    flagged = resolve_connection(profile="prod", base_url="http://flag.test/api/v1", env=env, path=path)
    assert flagged.base_url == "http://flag.test/api/v1"
    with_env_key = {**env, "CLOSE_API_KEY": ENV_KEY}
    assert resolve_connection(env=with_env_key, path=path).base_url == "http://env.test/api/v1"


def test_the_environment_chooses_the_default_file_location(tmp_path: Path) -> None:
    CredentialsFile(tmp_path / "credentials.json").save_profile(
        "default", ApiKeyProfile(api_key=SecretStr(FILE_KEY))
    )
    connection = resolve_connection(env={"CLOSEFLOW_CONFIG_DIR": str(tmp_path)})
    assert connection.credentials == ApiKey(FILE_KEY)


def test_no_credentials_anywhere_is_a_config_error_saying_how_to_fix_it(file: CredentialsFile) -> None:
    with pytest.raises(ConfigError, match=r"closeflow auth login.*CLOSE_API_KEY"):
        resolve_connection(env={}, path=file.path)


def test_an_unknown_profile_name_lists_the_known_ones(with_profiles: CredentialsFile) -> None:
    with pytest.raises(ConfigError, match=r"no profile 'staging'.*default, prod"):
        resolve_connection(profile="staging", env={}, path=with_profiles.path)


async def test_oauth_profile_connection_persists_rotations_into_the_file(
    with_profiles: CredentialsFile,
) -> None:
    clock = FakeClock(start=1_767_229_200.0)  # the profile's access token expires right now

    def close(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth2/token/":
            assert b"refresh_token=refresh-token-value" in request.content
            return httpx2.Response(
                200, json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 3600}
            )
        assert request.headers["Authorization"] == "Bearer access-2"
        return httpx2.Response(200, json={})

    transport = httpx2.MockTransport(close)
    connection = resolve_connection(
        profile="prod", env={}, path=with_profiles.path, clock=clock, transport=transport
    )
    async with httpx2.AsyncClient(
        transport=transport, base_url=connection.base_url, auth=connection.credentials.httpx_auth()
    ) as http:
        assert (await http.get("/me/")).status_code == 200

    stored = CredentialsFile(with_profiles.path).get("prod")
    assert isinstance(stored, OAuthProfile)
    assert stored.token() == OAuthToken(
        access_token="access-2",
        refresh_token="refresh-2",
        expires_at=clock.now() + 3600,
        organization_id="orga_1",
        user_id="user_1",
    )
    assert mode(with_profiles.path) == 0o600


def test_connection_repr_shows_no_secret(with_profiles: CredentialsFile) -> None:
    connection = resolve_connection(profile="prod", env={}, path=with_profiles.path)
    assert repr(connection).count("…****") >= 2
    for secret in ("client-secret-value", "access-token-value", "refresh-token-value"):
        assert secret not in repr(connection)
