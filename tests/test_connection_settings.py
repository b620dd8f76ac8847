from __future__ import annotations

import json

import pytest

from airflow_provider_videogen import get_provider_info
from airflow_provider_videogen.exceptions import VideoGenConfigurationError
from airflow_provider_videogen.hooks.videogen import (
    VideoGenConnectionSettings,
    VideoGenHook,
    check_video_task_id,
)
from airflow_provider_videogen.styles import STYLES

KEY = "sk-settings-test-123"


def resolve(host=None, password=KEY, port=None, **extra):
    return VideoGenConnectionSettings.from_connection_fields(
        "my_videogen", host=host, password=password, port=port, extra=extra
    )


def test_defaults_are_beijing_contents_generations():
    s = resolve()
    assert s.base_url == "https://ai.rong-api.com"
    assert s.data_center == "beijing"
    assert s.api_style == "contents_generations"
    assert s.path_prefix == "/llm/v1"
    assert s.timeout == 30.0
    assert s.task_url("cgt-1") == "https://ai.rong-api.com/llm/v1/contents/generations/tasks/cgt-1"


@pytest.mark.parametrize("spelling", ["north_america", "North-America", "NORTH_AMERICA", " north-america "])
def test_north_america_tolerates_case_and_separators(spelling):
    s = resolve(data_center=spelling)
    assert s.base_url == "https://ai.us-light-api.com"
    assert s.data_center == "north_america"


@pytest.mark.parametrize("spelling", ["Beijing", "BEIJING", ""])
def test_beijing_spellings(spelling):
    assert resolve(data_center=spelling).base_url == "https://ai.rong-api.com"


def test_unknown_data_center_lists_the_choices():
    with pytest.raises(VideoGenConfigurationError, match=r"data_center='shanghai'.*beijing, north_america"):
        resolve(data_center="shanghai")


def test_host_wins_over_data_center():
    s = resolve(host="http://127.0.0.1:9000", data_center="north_america")
    assert s.base_url == "http://127.0.0.1:9000"
    assert s.data_center is None


def test_host_without_scheme_means_https():
    assert resolve(host="gateway.example.com").base_url == "https://gateway.example.com"


def test_host_with_separate_port_field():
    assert resolve(host="127.0.0.1", port=9000).base_url == "https://127.0.0.1:9000"


def test_host_trailing_slash_and_credentials_are_dropped():
    assert resolve(host="https://user:pw@gw.example.com/").base_url == "https://gw.example.com"


def test_non_http_host_is_refused():
    with pytest.raises(VideoGenConfigurationError, match="not an http"):
        resolve(host="ftp://files.example.com")


def test_video_generations_style_uses_v1_prefix():
    s = resolve(host="https://gw.example.com", api_style="video-generations")
    assert s.api_style == "video_generations"
    assert s.task_url("task_abc") == "https://gw.example.com/v1/video/generations/task_abc"
    assert s.tasks_url == "https://gw.example.com/v1/video/generations"


def test_ark_is_reached_with_host_and_path_prefix():
    s = resolve(host="https://ark.cn-beijing.volces.com", path_prefix="api/v3/")
    assert s.task_url("cgt-1") == "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks/cgt-1"


def test_empty_path_prefix_is_allowed():
    assert resolve(host="https://gw.example.com", api_style="video_generations", path_prefix="").tasks_url == (
        "https://gw.example.com/video/generations"
    )


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/llm/v1?x=1", "'\\?'"),
        ("/llm/v1#top", "'#'"),
        ("/llm/../admin", r"'\.\.' segment"),
        ("/llm/./v1", r"'\.' segment"),
        ("/llm/%2e%2e/admin", "'%'"),
        ("/llm\\v1", "'\\\\\\\\'"),
        ("/llm v1", "white space"),
        ("/llm/v1\n", "control character"),
        ("/llm/v1\t/x", "control character"),
        ("https://gw.example.com/llm/v1", "full URL"),
        ("//gw.example.com/llm/v1", "full URL"),
    ],
    ids=["query", "fragment", "dot-dot", "dot", "percent", "backslash", "space", "newline", "tab", "url", "netloc"],
)
def test_a_path_prefix_that_is_not_a_plain_path_is_refused(prefix, problem):
    with pytest.raises(VideoGenConfigurationError, match=problem) as caught:
        resolve(host="https://gw.example.com", path_prefix=prefix)
    message = str(caught.value)
    assert "path_prefix" in message and "'my_videogen'" in message and "/llm/v1" in message


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [("api/v3/", "/api/v3"), (" /v1beta ", "/v1beta"), ("/", ""), ("/a-b_c.d~e/v1", "/a-b_c.d~e/v1")],
)
def test_a_plain_path_prefix_is_kept_with_one_leading_slash(prefix, expected):
    assert resolve(host="https://gw.example.com", path_prefix=prefix).path_prefix == expected


def test_unknown_api_style_lists_the_choices():
    with pytest.raises(VideoGenConfigurationError, match="contents_generations, video_generations"):
        resolve(api_style="images")


@pytest.mark.parametrize("timeout", ["0", -1, "abc", "inf"])
def test_bad_timeout_is_refused(timeout):
    with pytest.raises(VideoGenConfigurationError, match="timeout"):
        resolve(timeout=timeout)


def test_timeout_and_retry_extras():
    s = resolve(timeout="12.5", max_attempts=2, max_retry_seconds=10)
    assert s.timeout == 12.5
    assert s.retry_policy.max_attempts == 2
    assert s.retry_policy.max_seconds == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", True),
        ("timeout", "1e12"),
        ("max_retry_seconds", True),
        ("max_retry_seconds", 1e12),
        ("max_attempts", 0.5),
        ("max_attempts", "3.9"),
        ("max_attempts", True),
        ("max_attempts", "nan"),
    ],
)
def test_a_number_extra_that_is_not_finite_in_range_and_a_number_is_refused_naming_it(name, value):
    with pytest.raises(VideoGenConfigurationError, match=rf"Connection 'my_videogen': {name} must be"):
        resolve(**{name: value})


def test_number_extras_written_as_text_are_read_as_numbers():
    s = resolve(timeout=" 12.5 ", max_attempts="3", max_retry_seconds="60")
    assert (s.timeout, s.retry_policy.max_attempts, s.retry_policy.max_seconds) == (12.5, 3, 60.0)


@pytest.mark.parametrize("password", [None, "", "   "])
def test_missing_api_key_names_the_connection(password):
    with pytest.raises(VideoGenConfigurationError, match="'my_videogen' has no API key"):
        resolve(password=password)


def test_api_key_never_appears_in_repr():
    assert KEY not in repr(resolve())


def test_redact_removes_the_key_from_foreign_text():
    assert resolve().redact(f"invalid key {KEY} given") == "invalid key *** given"


def test_hook_reads_the_connection_from_an_environment_variable(monkeypatch):
    conn = {
        "conn_type": "videogen",
        "password": KEY,
        "extra": {"data_center": "north_america", "api_style": "video_generations"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_VG_ENV", json.dumps(conn))
    settings = VideoGenHook("vg_env").settings
    assert settings.base_url == "https://ai.us-light-api.com"
    assert settings.tasks_url == "https://ai.us-light-api.com/v1/video/generations"


async def test_async_hook_reads_the_connection_without_the_sync_api(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VG_ASYNC", json.dumps({"conn_type": "videogen", "password": KEY}))

    def no_sync_lookup(*args, **kwargs):
        raise AssertionError("the async path must not use the blocking connection lookup")

    monkeypatch.setattr(VideoGenHook, "get_connection", classmethod(no_sync_lookup))
    settings = await VideoGenHook("vg_async").aget_settings()
    assert settings.base_url == "https://ai.rong-api.com"


@pytest.mark.parametrize("task_id", ["cgt-20250331175019-68d9t", "task_0123456789abcdefABCDEF0123456789", "a:b=c"])
def test_real_looking_ids_pass_and_are_one_path_segment(task_id):
    url = resolve().task_url(task_id)
    assert url.startswith("https://ai.rong-api.com/llm/v1/contents/generations/tasks/")
    assert "/" not in url.rsplit("/tasks/", 1)[1]


@pytest.mark.parametrize(
    ("task_id", "problem"),
    [
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\\\\\'"),
        ("x?status=succeeded", "'\\?'"),
        ("x#frag", "'#'"),
        ("x y", "' '"),
        ("x%2F..", "'%'"),
        ("x\ny", "'\\\\n'"),
        ("", "empty"),
        ("..", "relative path"),
        ("x" * 257, "257 characters"),
    ],
)
def test_unsafe_ids_are_refused_before_any_request(task_id, problem):
    with pytest.raises(VideoGenConfigurationError, match=problem):
        check_video_task_id(task_id)


@pytest.mark.parametrize("task_id", [None, 12345, ["cgt-1"]])
def test_non_string_ids_are_refused(task_id):
    with pytest.raises(VideoGenConfigurationError, match="must be a string"):
        check_video_task_id(task_id)


def test_provider_info_declares_the_connection_form():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-videogen"
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "videogen"
    assert conn_type["hook-class-name"] == "airflow_provider_videogen.hooks.videogen.VideoGenHook"
    fields = conn_type["conn-fields"]
    # Every style of the registry in its order, and their data centers once each (styles share some).
    data_centers = [center.name for style in STYLES.values() for center in style.data_centers]
    assert fields["data_center"]["schema"]["enum"] == list(dict.fromkeys(data_centers))
    assert fields["api_style"]["schema"]["enum"] == list(STYLES)
    assert fields["runway_version"]["schema"]["default"] == "2024-11-06"
    behaviour = conn_type["ui-field-behaviour"]
    assert behaviour["relabeling"]["password"] == "API key"
    assert set(behaviour["hidden-fields"]) == {"schema", "port", "login"}


def test_provider_info_matches_airflow_schema():
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_the_prices_extra_is_read_as_a_mapping_or_as_its_json_text():
    entry = {"seedance-*": {"per_million_tokens": 2.5, "currency": "USD"}}
    for value in (entry, json.dumps(entry)):
        (price,) = resolve(prices=value).prices.prices
        assert (price.model, price.unit, str(price.amount), price.currency) == (
            "seedance-*",
            "per_million_tokens",
            "2.5",
            "USD",
        )
    assert resolve().prices.prices == ()


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "not a mapping of models to prices"),
        ({"": {"per_video": 1, "currency": "USD"}}, "empty model key"),
        ({"m": 0.5}, "entry 'm' is float, not a mapping"),
        ({"m": {"per_vid": 1, "currency": "USD"}}, "entry 'm' has unknown field(s) 'per_vid'"),
        (
            {"m": {"currency": "USD"}},
            "entry 'm' must set exactly one of per_second, per_million_tokens, per_video (it sets none)",
        ),
        ({"m": {"per_video": 1, "per_second": 1, "currency": "USD"}}, "entry 'm' must set exactly one"),
        ({"m": {"per_video": 1}}, "entry 'm' has currency=None"),
        ({"m": {"per_video": 1, "currency": "US dollars"}}, "entry 'm' has currency='US dollars'"),
        ({"m": {"per_video": -1, "currency": "USD"}}, "entry 'm' has per_video=-1, which is negative"),
        ({"m": {"per_video": "cheap", "currency": "USD"}}, "entry 'm' has per_video='cheap', which is not a number"),
        ({"m": {"per_video": "NaN", "currency": "USD"}}, "entry 'm' has per_video='NaN', which is not finite"),
        ({"m": {"per_video": True, "currency": "USD"}}, "entry 'm' has per_video=True, which is a bool"),
        (
            {"a": {"per_video": 1, "currency": "USD"}, "b": {"per_video": 1, "currency": "CNY"}},
            "more than one currency (CNY, USD)",
        ),
    ],
)
def test_a_bad_prices_extra_is_refused_naming_the_model_and_the_field(value, named):
    with pytest.raises(VideoGenConfigurationError) as caught:
        resolve(prices=value)
    assert named in str(caught.value)
    assert "Connection 'my_videogen'" in str(caught.value)
