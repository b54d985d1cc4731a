"""Tables at 80 columns and when piped: one line per row, long cells cut with an ellipsis, times and counts whole."""

from __future__ import annotations

import io

from rich import box
from rich.cells import cell_len
from rich.console import Console

from drainage.terminal import Column, fitted_table

URL = "https://go.example.com/c/AbCdEf123?utm_source=social-outbox&utm_campaign=christmas-sale"


def rendered(table, width: int = 80) -> list[str]:
    console = Console(file=io.StringIO(), width=width, no_color=True, highlight=False)
    console.print(table)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_long_cells_are_cut_and_fixed_cells_stay_whole() -> None:
    columns = [Column("sent (UTC)", whole=True), Column("campaign"), Column("channel"), Column("clicks", whole=True,
                                                                                                justify="right"),
               Column("url")]
    rows = [["2026-12-01 10:00", "christmas-sale-for-the-whole-family", "newsletter-outbox", "1,234", URL]] * 3
    lines = rendered(fitted_table(80, columns, rows, title="top posts"))
    assert all(cell_len(line) <= 80 for line in lines)
    body = [line for line in lines if "2026-12-01 10:00" in line]
    assert len(body) == 3  # one line per row: nothing folded onto a second line
    assert all("1,234" in line and "…" in line and "https://go.ex" in line for line in body)


def test_optional_columns_go_first_when_nothing_else_fits() -> None:
    columns = [Column("sent (UTC)", whole=True), Column("campaign"), Column("previews+bots", whole=True,
                                                                             optional=True),
               Column("uniques", whole=True), Column("url", optional=True)]
    rows = [["2026-12-01 10:00", "christmas-sale", "12", "7", URL]]
    lines = rendered(fitted_table(44, columns, rows, box=box.SIMPLE_HEAD), width=44)
    assert all(cell_len(line) <= 44 for line in lines)
    header = next(line for line in lines if "sent (UTC)" in line)
    assert "uniques" in header and "url" not in header and "previews" not in header


def test_a_table_that_fits_is_left_alone() -> None:
    rows = [["a", "b"]]
    lines = rendered(fitted_table(80, [Column("x"), Column("y")], rows))
    assert "…" not in "".join(lines)


def test_plan_at_80_columns_has_one_line_per_post(project_dir, cli) -> None:
    result = cli("plan", "--days", "2", "--from", "2026-12-07T00:00:00+00:00", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), result.output
    posts = int(lines[0].split()[0])
    rows = [line for line in lines if line.startswith("│ ")]
    assert len(rows) == posts > 0
    assert all(line.startswith(("│ Mon 2026-12-07", "│ Tue 2026-12-08")) for line in rows)
    assert any("…" in line for line in rows)
