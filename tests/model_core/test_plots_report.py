import base64

import numpy as np
import pytest

from model_core import plots
from model_core.report import (
    ReportSection,
    markdown_image,
    markdown_table,
    png_data_uri,
    render_html,
)

PNG_SIGNATURE = b"\x89PNG"
MAX_PNG_BYTES = 60_000

ERAS = [f"{i:04d}" for i in range(1, 121)]
RNG = np.random.default_rng(0)
CORRS = {"ensemble": RNG.normal(0.01, 0.03, 120), "fold_0": RNG.normal(0.005, 0.03, 120)}
CORRS["fold_0"][[5, 50]] = np.nan


@pytest.fixture(scope="module")
def pngs() -> dict[str, bytes]:
    attention = RNG.random((10, 10))
    return {
        "cumulative": plots.cumulative_corr_png(ERAS, CORRS),
        "per_era": plots.per_era_corr_png(ERAS, CORRS["fold_0"]),
        "rolling": plots.rolling_sharpe_png(ERAS, CORRS, window=20),
        "importance": plots.importance_png({"strength": 0.004, "wisdom": -0.001, "serenity": 0.0}),
        "cross_attention": plots.cross_attention_png(attention / attention.sum(1, keepdims=True)),
        "temporal": plots.temporal_attention_png(np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])),
    }


def test_plots_are_small_pngs(pngs):
    for name, png in pngs.items():
        assert png.startswith(PNG_SIGNATURE), name
        assert 1_000 < len(png) < MAX_PNG_BYTES, (name, len(png))


def test_plots_refuse_series_that_do_not_match_the_eras():
    with pytest.raises(ValueError, match="'fold_0'"):
        plots.cumulative_corr_png(ERAS, {"fold_0": [0.01, 0.02]})
    with pytest.raises(ValueError, match="bins"):
        plots.cross_attention_png(np.ones((3, 4)))


def test_markdown_pieces():
    png = b"\x89PNG fake"
    assert png_data_uri(png) == "data:image/png;base64," + base64.b64encode(png).decode()
    assert markdown_image(png, "cumulative corr") == f"![cumulative corr]({png_data_uri(png)})"
    table = markdown_table(["model", "corr", "n"], [["a|b", 0.012345, 3], ["c", float("nan"), None]])
    assert table.splitlines() == [
        "| model | corr | n |",
        "| --- | --- | --- |",
        "| a\\|b | 0.0123 | 3 |",
        "| c | – | – |",
    ]
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])


def test_html_is_self_contained_and_escaped(pngs):
    sections = [
        ReportSection(
            heading="Scores <b>",
            text="CORR & friends",
            images=[("cumulative", pngs["cumulative"]), ("per era", pngs["per_era"])],
            tables=[(["metric", "value"], [["corr_mean", np.float32(0.02)], ["<td>", float("nan")]])],
        ),
        ReportSection(heading="Attention", images=[("decile map", pngs["cross_attention"])]),
    ]
    page = render_html("<script>alert(1)</script> report", sections)
    assert page.count('<img src="data:image/png;base64,') == 3
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Scores &lt;b&gt;" in page and "CORR &amp; friends" in page and "&lt;td&gt;" in page
    assert "0.0200" in page and "–" in page
    assert "http" not in page.lower()
    assert base64.b64encode(pngs["cumulative"]).decode() in page
