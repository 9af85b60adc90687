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
    from aiswatch.config import defaults as config_defaults

    DEFAULTS = config_defaults()

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


# -- typos and wrong values are refused, with the key's path and the nearest known name ---------

@pytest.mark.parametrize("text, says", [
    ("elasticsearh: {url: 'http://x:9200'}\n", "elasticsearh: unknown key (did you mean 'elasticsearch'?)"),
    ("sources:\n  - {type: udp, hots: 0.0.0.0}\n", "sources[0].hots: unknown key (did you mean 'host'?)"),
    ("sink: {batchsize: 500}\n", "sink.batchsize: unknown key (did you mean 'batch_size'?)"),
    ("sink: {batch_sise: 500}\n", "sink.batch_sise: unknown key (did you mean 'batch_size'?)"),
    ("namespce: test-\n", "namespce: unknown key (did you mean 'elasticsearch.namespace'"),
    ("sink: {batch_size: lots}\n", "sink.batch_size: expected a whole number, got 'lots'"),
    ("sink: fast\n", "sink: expected a mapping, got 'fast'"),
    ("sink: {queue_size: -5}\n", "sink.queue_size: must be greater than 0, got -5"),
    ("sources:\n  - {type: udpp}\n", "sources[0].type: unknown source type 'udpp' (did you mean 'udp'?)"),
    ("sources:\n  - {type: tcp, address: 'feed:99999'}\n", "sources[0].address: port 99999 in 'feed:99999' is out of range"),
    ("detect: {gap: {min_hour: 3}}\n", "detect.gap.min_hour: unknown key (did you mean 'min_hours'?)"),
    ("detect: {schedule: {every: soon}}\n", "detect.schedule.every: duration 'soon'"),
    ("elasticsearch: {namespace: Test}\n", "elasticsearch.namespace: 'Test': index names are lower case"),
    ("geography: {extra_ports: [{name: X, lat: 95, lon: 0}]}\n", "geography.extra_ports[0].lat: must be less than or equal to 90"),
])
def test_a_typo_or_a_wrong_value_names_the_key_and_the_file(tmp_path, text, says):
    path = tmp_path / "aiswatch.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and says in message, message
    assert "\n" not in message


def test_every_problem_of_a_file_is_listed_at_once(tmp_path):
    path = tmp_path / "aiswatch.yaml"
    path.write_text("elasticsearh: {}\nsink: {batchsize: 1, queue_size: 0}\n")
    with pytest.raises(ConfigError, match="3 problems: .*sink.queue_size.*sink.batchsize.*elasticsearh"):
        load_config(path, environ={})


def test_environment_overrides_are_checked_and_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^AISWATCH_SINK__BATCHSIZE: sink.batchsize: unknown key \(did you mean 'batch_size'\?\)$"):
        load_config(None, environ={"AISWATCH_SINK__BATCHSIZE": "5"})
    with pytest.raises(ConfigError, match="^AISWATCH_SINK__BATCH_SIZE: sink.batch_size: expected a whole number, got 'lots'"):
        load_config(None, environ={"AISWATCH_SINK__BATCH_SIZE": "lots"})
    with pytest.raises(ConfigError, match="^ES_URL: elasticsearch.url: bad Elasticsearch URL"):
        load_config(None, environ={"ES_URL": "ftp://x"})
    assert load_config(None, environ={"AISWATCH_SINK__BATCH_SIZE": "5"})["sink"]["batch_size"] == 5


def test_the_example_file_is_valid_and_paths_expand(tmp_path):
    from pathlib import Path

    cfg = load_config(Path(__file__).parent.parent / "aiswatch.example.yaml", environ={})
    assert not cfg["embedded"]["data_dir"].startswith("~")
    assert cfg["sources"] == [{"type": "udp", "host": "127.0.0.1", "port": 10110}]


def test_config_check_prints_the_effective_configuration_redacted(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "aiswatch.yaml"
    path.write_text("sink: {batch_size: 500}\nsources:\n  - {type: tcp, host: feed.example, port: 5631}\n")
    env = {"PATH": "/usr/bin:/bin", "ES_URL": "https://elastic:s3cret@es.example:9200", "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "config", "check", str(path)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "batch_size: 500" in run.stdout and "es.example:9200" in run.stdout and "s3cret" not in run.stdout
    assert run.stderr.strip() == f"{path}: ok"
    path.write_text("sink: {batchsize: 500}\n")
    run = subprocess.run([sys.executable, "-c", "from aiswatch.cli import main; main()", "config", "check", str(path)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip() == f"Error: {path}: sink.batchsize: unknown key (did you mean 'batch_size'?)"
