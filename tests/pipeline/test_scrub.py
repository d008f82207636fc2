"""The scrubber on report files: a secret is found however the report's format spells it."""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

from pipeline.scrub import Scrubber

SECRET = 'p&ss<w"rd>é-1'


def test_a_report_file_loses_the_secret_as_xml_and_json_spell_it(tmp_path: Path) -> None:
    xml = tmp_path / "test-junit.xml"
    xml.write_text(f"<failure message='{escape(SECRET)}'>{escape(SECRET)}</failure>", encoding="utf-8")
    report = tmp_path / "trivy-fs.json"
    report.write_text(json.dumps({"a": SECRET, "b": [SECRET]}), encoding="utf-8")
    raw = tmp_path / "test.log"
    raw.write_bytes(b"\xff\xfe not utf-8, then " + SECRET.encode())

    scrub = Scrubber([SECRET]).in_files()

    assert all(scrub.file(p) for p in (xml, report, raw))
    assert xml.read_text(encoding="utf-8") == "<failure message='***'>***</failure>"
    assert json.loads(report.read_text(encoding="utf-8")) == {"a": "***", "b": ["***"]}
    assert raw.read_bytes() == b"\xff\xfe not utf-8, then ***"
    assert not scrub.file(raw)  # nothing left: the file is not written again
