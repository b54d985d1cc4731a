"""`drainage subscribers ...`: consent is required, addresses are normalised and merged, lists counted."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from drainage.email import suppression
from tests.email_helpers import engine_for, write_project

ROWS = """\
email,name,locale,consent_source,consent_at,plan,attributes
 Ann@Example.COM ,Ann,de_DE,checkout,2025-01-02T10:00:00Z,gold,
bob@example.com,Bob,,,,,
not-an-address,X,,form,2025-01-01,,
jörg@example.com,Jörg,,form,2025-01-01,,
carl@example.com,Carl,,form,yesterday,,
ann@example.com,Annie,,newsletter form,2025-03-01,,"{""vip"": true}"
dora@Bücher.example,Dora,fr_FR,form,2025-02-01,silver,
"""


def test_import_refuses_rows_without_consent_or_valid_address_and_merges_duplicates(
        tmp_path: Path, cli: Callable[..., object]) -> None:
    config = str(write_project(tmp_path, 2525))
    source = tmp_path / "subscribers.csv"
    source.write_text(ROWS, encoding="utf-8")
    result = cli("subscribers", "import", str(source), "--list", "newsletter", "--list", "vip", "--config", config)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    lines = result.output.splitlines()  # type: ignore[attr-defined]
    assert lines[:4] == [
        f"{source}:3: bob@example.com: no consent (consent_source and consent_at are required)",
        f"{source}:4: invalid address: An email address must have an @-sign.",
        f"{source}:5: invalid address: Internationalized characters before the @-sign are not supported: 'ö'.",
        f"{source}:6: carl@example.com: consent_at 'yesterday' is not an ISO 8601 date or time"]
    assert lines[4] == ("7 rows: 2 added, 0 updated, 1 duplicates merged, 4 refused (2 without consent, 2 invalid "
                        "addresses); 0 stay suppressed (unsubscribed or bounced earlier); list(s): newsletter, vip")
    exported = cli("subscribers", "export", "--config", config)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))  # type: ignore[attr-defined]
    assert [(r["email"], r["name"], r["locale"], r["consent_source"], r["lists"]) for r in rows] == [
        ("ann@example.com", "Annie", "de_DE", "newsletter form", "newsletter vip"),
        ("dora@xn--bcher-kva.example", "Dora", "fr_FR", "form", "newsletter vip")]
    assert json.loads(rows[0]["attributes"]) == {"plan": "gold", "vip": True}
    assert rows[0]["consent_at"] == "2025-03-01T00:00:00+00:00"
    # a re-import of the export changes nothing but is counted as updates; a suppressed address stays suppressed
    suppression.suppress(engine_for(tmp_path), "dora@xn--bcher-kva.example", "unsubscribed", source="test")
    back = tmp_path / "export.csv"
    back.write_text(exported.stdout, encoding="utf-8")  # type: ignore[attr-defined]
    again = cli("subscribers", "import", str(back), "--list", "newsletter", "--config", config)
    assert "2 rows: 0 added, 2 updated, 0 duplicates merged, 0 refused" in again.output  # type: ignore[attr-defined]
    assert "1 stay suppressed" in again.output  # type: ignore[attr-defined]
    listed = cli("subscribers", "list", "--config", config).output  # type: ignore[attr-defined]
    assert "│ newsletter │       2 │        1 │       0 │          1 │" in listed
    assert "suppression list: 1 unsubscribed" in listed
    removed = cli("subscribers", "remove", "ANN@example.com", "--list", "vip", "--config", config)
    assert "removed 1 from list 'vip'" in removed.output  # type: ignore[attr-defined]
    gone = cli("subscribers", "remove", "ann@example.com", "--suppress", "--config", config)
    assert "removed 1 from the subscribers; 1 suppressed" in gone.output  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(cli("subscribers", "export", "--config", config).stdout)))  # type: ignore
    assert [r["email"] for r in rows] == ["dora@xn--bcher-kva.example"]


def test_a_file_without_an_email_column_is_a_problem_with_its_position(
        tmp_path: Path, cli: Callable[..., object]) -> None:
    config = str(write_project(tmp_path, 2525))
    source = tmp_path / "bad.csv"
    source.write_text("address,name\nx@example.com,X\n", encoding="utf-8")
    result = cli("subscribers", "import", str(source), "--list", "newsletter", "--config", config)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.output.splitlines()[0] == (  # type: ignore[attr-defined]
        f"{source}:1: the first line must name the columns, one of them 'email' (and 'consent_source', "
        "'consent_at'; optional 'name', 'locale', any other column becomes an attribute)")


CONSENT_ROWS = """\
email,consent,consent_source,consent_at
no@example.com,no,form,2025-01-01
false@example.com,FALSE,form,2025-01-01
zero@example.com,0,form,2025-01-01
n@example.com,N,form,2025-01-01
off@example.com,Off,form,2025-01-01
empty@example.com,,form,2025-01-01
maybe@example.com,maybe,form,2025-01-01
future@example.com,yes,form,2099-01-01
yes@example.com,Yes,form,2025-01-01
true@example.com,true,form,2025-01-01T08:00:00+02:00
"""


def test_consent_that_means_no_or_lies_in_the_future_refuses_the_row_whatever_its_date(
        tmp_path: Path, cli: Callable[..., object]) -> None:
    config = str(write_project(tmp_path, 2525))
    source = tmp_path / "consent.csv"
    source.write_text(CONSENT_ROWS, encoding="utf-8")
    result = cli("subscribers", "import", str(source), "--list", "newsletter", "--config", config)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    lines = result.output.splitlines()  # type: ignore[attr-defined]
    assert lines[:9] == [
        f"{source}:2: no@example.com: consent is 'no', which means no",
        f"{source}:3: false@example.com: consent is 'FALSE', which means no",
        f"{source}:4: zero@example.com: consent is '0', which means no",
        f"{source}:5: n@example.com: consent is 'N', which means no",
        f"{source}:6: off@example.com: consent is 'Off', which means no",
        f"{source}:7: empty@example.com: consent is '', which means no",
        f"{source}:8: maybe@example.com: consent is 'maybe', which is not a yes (yes, true, 1, y, on)",
        f"{source}:9: future@example.com: consent_at 2099-01-01 is in the future",
        "10 rows: 2 added, 0 updated, 0 duplicates merged, 8 refused (8 without consent, 0 invalid addresses); "
        "0 stay suppressed (unsubscribed or bounced earlier); list(s): newsletter"]
    exported = cli("subscribers", "export", "--config", config)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))  # type: ignore[attr-defined]
    assert [(r["email"], r["consent_at"]) for r in rows] == [("yes@example.com", "2025-01-01T00:00:00+00:00"),
                                                              ("true@example.com", "2025-01-01T06:00:00+00:00")]


def test_addresses_are_compared_in_one_normal_form_for_import_suppression_and_removal(
        tmp_path: Path, cli: Callable[..., object]) -> None:
    config = str(write_project(tmp_path, 2525))
    source = tmp_path / "idn.csv"
    source.write_text("email,consent_source,consent_at\nIDN@Bücher.Example,form,2025-01-01\n", encoding="utf-8")
    assert cli("subscribers", "import", str(source), "--list", "newsletter", "--config", config).exit_code == 0  # type: ignore
    engine = engine_for(tmp_path)
    assert suppression.suppress(engine, " Idn@BÜCHER.example ", "bounced", source="test")
    assert suppression.is_suppressed(engine, "idn@xn--bcher-kva.example") == "bounced"
    assert not suppression.suppress(engine, "idn@xn--bcher-kva.EXAMPLE", "unsubscribed", source="test")
    listed = cli("subscribers", "list", "--config", config).output  # type: ignore[attr-defined]
    assert "│ newsletter │       1 │        0 │       0 │          1 │" in listed
    assert suppression.lift(engine, "idn@bücher.example")
    removed = cli("subscribers", "remove", "IDN@bücher.example", "--config", config)
    assert "removed 1 from the subscribers" in removed.output  # type: ignore[attr-defined]
