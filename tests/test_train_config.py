"""Training configs are checked against train/schema.py: a misspelt key fails instead of being ignored."""

import pytest

from fhsdk.errors import ConfigError
from train.config import load_config


@pytest.mark.parametrize(
    "override, wrong",
    [
        ("loss.identity_wieght=1", "loss.identity_wieght"),  # a loss weight of the method
        ("generator.num_feature=32", "generator.num_feature"),  # an argument of the generator's constructor
        ("degradation.realistc=true", "degradation.realistc"),  # a field of the Degradation
        ("optim.generator.learning_rate=0.1", "optim.generator.learning_rate"),
        ("train.step=10", "train.step"),
        ("trian.steps=10", "trian"),  # an unknown section
    ],
)
def test_a_misspelt_key_is_refused_with_the_keys_that_exist(override, wrong):
    with pytest.raises(ConfigError, match=f"unknown config key '{wrong}'"):
        load_config("lai", "cpu_small", [override])


def test_the_refusal_suggests_the_closest_key():
    with pytest.raises(ConfigError, match="did you mean 'identity_weight'"):
        load_config("lai", "cpu_small", ["loss.identity_wieght=1"])


def test_a_key_of_another_method_is_refused():
    # C-Face's compare_k means nothing to Lai et al.'s procedure
    with pytest.raises(ConfigError, match="loss.compare_k"):
        load_config("lai", "cpu_small", ["loss.compare_k=5"])


def test_defaults_are_filled_from_one_place_and_overrides_still_apply():
    cfg = load_config("fhgan", "cpu_small", ["loss.gp_weight=5"])
    assert cfg["loss"]["gp_weight"] == 5 and cfg["loss"]["critic_steps"] >= 1
    assert cfg["optim"]["generator"]["weight_decay"] == 0.0 and cfg["optim"]["generator"]["milestones"] is not None
    assert cfg["train"]["checkpoint_every"] > 0 and cfg["deploy"]["recognizer"] in ("original", "finetuned")


def test_every_shipped_config_passes_the_check():
    from train.config import CONFIG_DIR, JITTER_DIR

    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        if JITTER_DIR not in path.parents:  # tables that configs name, not configs
            load_config(path)


def test_a_measured_jitter_table_is_named_once_and_read_into_the_config():
    import yaml

    from train.config import JITTER_DIR

    with open(JITTER_DIR / "mtcnn.yaml") as handle:
        measured = yaml.safe_load(handle)
    assert len(measured) >= 2 and all(len(row) == 6 for row in measured.values())
    for name in ("pipeline_finetune", "distill"):  # both name it; the resolved config holds the rows
        assert load_config(name)["degradation"]["jitter"] == measured
    rows = load_config("distill", overrides=["degradation.jitter={12: [0, 0, 0, 0.1, 0.1, 5]}"])
    assert rows["degradation"]["jitter"] == {12: [0, 0, 0, 0.1, 0.1, 5]}  # explicit rows still work
    with pytest.raises(ConfigError, match="mtcnn"):
        load_config("distill", overrides=["degradation.jitter=retinaface"])  # no such table: the refusal lists them


def test_an_old_key_name_is_refused_with_the_new_one():
    with pytest.raises(ConfigError, match="identity_weight"):
        load_config("sicnn", "cpu_small", ["loss.alpha=4"])  # SICNN's weight is named like every other method's
