"""Index templates installed on a real ES-compatible server; retention by name where there is no ILM."""
import datetime as dt

from ingest.setup import install_templates, prune_daily_indices


def test_templates_installed_and_applied(es, names):
    report = install_templates(es, names, retention_days=30, echo=lambda *_: None)
    assert names.template_name("ais") in report
    es.index(index=names.messages("2026.11.22"), id="1", refresh=True,
             document={"@timestamp": "2026-11-22T00:00:00.000Z", "mmsi": "244123456", "location": {"lat": 52.0, "lon": 4.0}})
    props = es.indices.get_mapping(index=names.messages("2026.11.22"))[names.messages("2026.11.22")]["mappings"]["properties"]
    assert props["location"]["type"] == "geo_point"
    assert props["mmsi"]["type"] == "keyword"
    assert props["name"]["fields"]["keyword"]["type"] == "keyword"
    es.index(index=names.ships, id="244123456", refresh=True, document={"mmsi": "244123456"})
    ships = es.indices.get_mapping(index=names.ships)[names.ships]["mappings"]["properties"]
    assert ships["location"]["type"] == "geo_point"
    # helper indices never match the raw pattern
    for helper in (names.events, names.metrics, names.state, names.ships):
        assert not helper.startswith(names.messages(""))
    # idempotent
    install_templates(es, names, retention_days=30, echo=lambda *_: None)


def test_prune_deletes_only_old_daily_indices(es, names):
    install_templates(es, names, retention_days=None, echo=lambda *_: None)
    for day in ("2026.01.01", "2026.11.20", "2026.11.22"):
        es.indices.create(index=names.messages(day))
    es.indices.create(index=names.messages("notadate"))
    deleted = prune_daily_indices(es, names, retention_days=30, today=dt.date(2026, 11, 22))
    assert deleted == [names.messages("2026.01.01")]
    left = {row["index"] for row in es.cat.indices(index=names.messages_pattern, format="json")}
    assert left == {names.messages("2026.11.20"), names.messages("2026.11.22"), names.messages("notadate")}
