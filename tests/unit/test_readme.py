"""The README's settings table is the generated one: a new setting cannot go undocumented."""

from pathlib import Path

from footfall.settings_doc import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_holds_the_generated_settings_table() -> None:
    readme = README.read_text()
    assert settings_table() in readme, (
        "README settings table is stale: run `python -m footfall.settings_doc` and paste it"
    )
    assert readme.count("<!-- settings:begin") == 1, "the settings table is in the README twice"
    assert readme.count("<!-- settings:end") == 1, "the settings table's end marker is doubled"
