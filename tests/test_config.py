"""Configuration: defaults, file, environment overrides, and secrets kept out of files and logs."""
import pytest

from aiswatch.config import ConfigError, load_config, read_secret


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, environ={})
    assert cfg["elasticsearch"]["url"] is None
    assert cfg["sink"]["batch_size"] == 2000
    assert cfg["sources"] == []


def test_file_then_environment(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("elasticsearch:\n  url: http://file:9200\nsink:\n  batch_size: 10\n"
                    "sources:\n  - {type: udp, port: 5000}\n")
    cfg = load_config(path, environ={"AISWATCH_SINK__BATCH_SIZE": "77", "AISWATCH_ASSEMBLER__TIMEOUT_SECONDS": "2.5"})
    assert cfg["elasticsearch"]["url"] == "http://file:9200"
    assert cfg["sink"]["batch_size"] == 77
    assert cfg["sink"]["flush_seconds"] == 1.0  # untouched default survives the merge
    assert cfg["assembler"]["timeout_seconds"] == 2.5
    assert cfg["sources"] == [{"type": "udp", "port": 5000}]
    cfg = load_config(path, environ={"ES_URL": "http://env:9200"})
    assert cfg["elasticsearch"]["url"] == "http://env:9200"


def test_inline_secret_is_refused(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("sources:\n  - {type: aisstream, api_key: abc123}\n")
    with pytest.raises(ConfigError, match="secrets are not read from the config file"):
        load_config(path, environ={})


def test_bad_yaml_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("elasticsearch: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_redacted_hides_credentials(tmp_path):
    cfg = load_config(None, environ={"ES_URL": "https://elastic:s3cret@es:9200"})
    text = repr(cfg.redacted())
    assert "s3cret" not in text and "es:9200" in text


def test_read_secret_env_then_file(tmp_path):
    key = tmp_path / "key"
    key.write_text("from-file\n")
    assert read_secret("K", str(key), environ={}) == "from-file"
    assert read_secret("K", str(key), environ={"K": "from-env"}) == "from-env"
    assert read_secret("K", None, environ={}) is None
    with pytest.raises(ConfigError):
        read_secret("K", str(tmp_path / "missing"), environ={})


def test_example_config_documents_every_option_with_its_default():
    """aiswatch.example.yaml lists every option of every section, with the default the code uses."""
    from pathlib import Path

    import yaml

    from aiswatch.behavior.settings import DEFAULTS as DETECT_DEFAULTS
    from aiswatch.config import DEFAULTS

    example = yaml.safe_load((Path(__file__).parent.parent / "aiswatch.example.yaml").read_text())
    assert set(example) == set(DEFAULTS)
    for section, defaults in DEFAULTS.items():
        if section in ("sources", "detect", "geography"):
            continue
        assert set(example[section]) == set(defaults), section
        for key, value in defaults.items():
            if not str(value).startswith(str(Path.home())) and "/" not in str(value):  # paths depend on AISWATCH_HOME
                assert example[section][key] == value, (section, key)
    assert example["detect"] == DETECT_DEFAULTS
    # the geography example is what the code does when the section is empty
    from aiswatch.behavior.geo import Geography
    default_geo, example_geo = Geography({}), Geography(example["geography"])
    assert [p.name for p in example_geo.ports] == [p.name for p in default_geo.ports]
    assert [r.name for r in example_geo.regions] == [r.name for r in default_geo.regions]
    assert {s["type"] for s in example["sources"]} == {"udp"}  # the others are commented examples
