from __future__ import annotations

import pytest

from cscprog.config import LOCAL_MAX_TOKENS, ROLES, config_from_dict, load_config
from cscprog.errors import ConfigError

FULL = """
[lm]
model = "openai/gpt-4o-mini"
api_base = "http://127.0.0.1:8000/v1"
api_key_env = "OPENAI_API_KEY"
temperature = 0.8
max_tokens = 1024
[roles.customer]
model = "openai/other"
temperature = 1.0
[cache]
dir = "~/.cache/cscprog"
mode = "replay"
[run]
concurrency = 8
seed = 1234
language = "zh"
[framework]
taxonomy = "csc"
[framework.stages]
"Emotional Management" = "Exploring"
"""


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.source == "<defaults>"
    assert config.lm.is_local and config.cache.mode == "readwrite"
    assert config.lm_for("rewriter") == config.lm
    # the embedded model: each role gets its own completion limit unless one is configured
    assert config.lm_for("judge") == config.lm.model_copy(update={"max_tokens": LOCAL_MAX_TOKENS["judge"]})
    assert config.lm_for("responder").max_tokens == LOCAL_MAX_TOKENS["responder"] < 512
    set_limit = config_from_dict({"lm": {"max_tokens": 700}}, environ={})
    assert {set_limit.lm_for(role).max_tokens for role in ("customer", "responder")} == {700}
    hosted = config_from_dict({"lm": {"model": "openai/gpt-4o-mini"}}, environ={})
    assert hosted.lm_for("responder").max_tokens is None
    # the RoleCS roles run at the method's temperature and seed unless configured
    customer = config.lm_for("customer")
    assert (customer.temperature, customer.seed) == (0.8, 1234)
    assert customer.model_copy(update={"temperature": None, "seed": None}) == config.lm.model_copy(
        update={"max_tokens": LOCAL_MAX_TOKENS["customer"]})


def test_roleplay_defaults_give_way_to_configured_values(tmp_path):
    config = load_config(write(tmp_path, "[lm]\ntemperature = 0.2\n[roles.planner]\nseed = 7\n"), environ={})
    assert (config.lm_for("planner").temperature, config.lm_for("planner").seed) == (0.2, 7)
    assert (config.lm_for("customer").temperature, config.lm_for("customer").seed) == (0.2, 1234)
    assert config.lm_for("rewriter").temperature == 0.2 and config.lm_for("rewriter").seed is None


def test_full_file_and_role_overrides(tmp_path):
    config = load_config(write(tmp_path, FULL), environ={})
    assert config.lm.model == "openai/gpt-4o-mini" and config.lm.max_tokens == 1024
    customer = config.lm_for("customer")
    assert (customer.model, customer.temperature, customer.max_tokens) == ("openai/other", 1.0, 1024)
    assert customer.api_base == "http://127.0.0.1:8000/v1"
    assert config.lm_for("planner").model == "openai/gpt-4o-mini"
    assert config.run.language == "zh" and config.cache.mode == "replay"
    assert config.taxonomy().stage_of("Emotional Management") == "Exploring"
    assert set(ROLES) >= {"planner", "supporter_assistant", "supporter", "customer_assistant", "customer",
                          "rewriter", "judge", "classifier", "responder", "profiler"}


def test_precedence_argument_then_env_variable_then_local_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[lm]\nmodel = "openai/local-file"\n', "cscprog.toml")
    env_file = write(tmp_path, '[lm]\nmodel = "openai/from-env"\n', "env.toml")
    arg_file = write(tmp_path, '[lm]\nmodel = "openai/from-arg"\n', "arg.toml")
    assert load_config(environ={}).lm.model == "openai/local-file"
    assert load_config(environ={"CSCPROG_CONFIG": str(env_file)}).lm.model == "openai/from-env"
    assert load_config(arg_file, environ={"CSCPROG_CONFIG": str(env_file)}).lm.model == "openai/from-arg"


def test_environment_overrides_common_keys(tmp_path):
    environ = {"CSCPROG_MODEL": "openai/env-model", "CSCPROG_API_BASE": "http://127.0.0.1:9/v1",
               "CSCPROG_CACHE_DIR": str(tmp_path / "c"), "CSCPROG_CACHE_MODE": "off"}
    config = load_config(write(tmp_path, FULL), environ=environ)
    assert config.lm.model == "openai/env-model" and config.lm.api_base == "http://127.0.0.1:9/v1"
    assert config.cache.path == tmp_path / "c" and config.cache.mode == "off"
    assert config.lm_for("customer").model == "openai/other"  # a role override still wins for its role


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[lm]\nmodle = "x"\n', "lm.modle: unknown key"),
        ('[lm]\ntemperature = 5\n', "lm.temperature"),
        ('[cache]\nmode = "sometimes"\n', "cache.mode"),
        ('[roles.boss]\nmodel = "x"\n', "unknown role 'boss'"),
        ('[roles.customer]\nmodle = "x"\n', "roles.customer: unknown key"),
        ('[run]\nconcurrency = 0\n', "run.concurrency"),
        ('[lm]\napi_key_env = "sk-123 secret"\n', "NAME of an environment variable"),
        ('[lm\nmodel = "x"\n', "not valid TOML"),
        ('[surprise]\nx = 1\n', "surprise: unknown key"),
    ],
)
def test_errors_name_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_env_override_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cache.mode"):
        load_config(write(tmp_path, ""), environ={"CSCPROG_CACHE_MODE": "bogus"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="CSCPROG_CONFIG"):
        load_config(environ={"CSCPROG_CONFIG": str(tmp_path / "nope.toml")})


def test_api_key_comes_from_the_named_variable_only(tmp_path, monkeypatch):
    config = load_config(write(tmp_path, FULL), environ={})
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set") as info:
        config.lm.api_key()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-123")
    assert config.lm.api_key() == "sk-sentinel-123"
    assert "sk-sentinel-123" not in str(config.redacted()) and "sk-sentinel-123" not in str(info.value)


def test_bad_framework_override(tmp_path):
    config = load_config(write(tmp_path, '[framework.stages]\n"Greeting" = "Nowhere"\n'), environ={})
    with pytest.raises(ConfigError, match="no stage 'Nowhere'"):
        config.taxonomy()
