"""Every image's model.toml is a valid config: known task, a model of that task, valid defaults."""

from pathlib import Path

import pytest

from pictrain.config import load_model_config
from pictrain.params import parse_parameters
from pictrain.train.models import check_model_name

IMAGES = Path(__file__).parents[2] / "images"
CONFIGS = sorted(IMAGES.glob("*/model.toml"))
# Processing images (pre-annotation) train nothing: tests/images/test_static.py checks them.
PROCESSINGS = {p.parent.name for p in IMAGES.glob("*/processing.toml")}


def test_every_model_image_has_a_config():
    folders = {
        p.name for p in IMAGES.iterdir() if p.is_dir() and p.name not in {"base", *PROCESSINGS}
    }
    assert folders == {c.parent.name for c in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_model_config_is_valid(path):
    config = load_model_config(path)
    check_model_name(config.task, config.model)
    parse_parameters({}, config.defaults)
    assert path.parent.name.endswith(f"-{config.spec.image_suffix}")


def test_readme_image_table_is_the_configs():
    """README's "Images" table: task, dataset type, model and defaults as each model.toml says."""
    readme = (IMAGES.parent / "README.md").read_text()
    table = readme[readme.index("\n## Images\n") :].split("\n## ")[1]
    rows = {
        cells[0].strip("` "): [c.strip() for c in cells[1:]]
        for line in table.splitlines()
        if line.startswith("| `") and (cells := line.strip("|").split("|"))
    }
    assert sorted(rows) == [c.parent.name for c in CONFIGS]
    for path in CONFIGS:
        config = load_model_config(path)
        params = parse_parameters({}, config.defaults).params
        task, dataset_type, model, defaults = rows[path.parent.name]
        assert (task, dataset_type, model) == (
            config.task,
            " or ".join(config.spec.dataset_types),
            f"`{config.model}`",
        ), path.parent.name
        expected = f"{params.epochs} epochs, batch {params.batch_size}, {params.image_size} px"
        assert defaults.startswith(expected), (path.parent.name, defaults)
