"""The parameters an experiment inherits from a model version set up by Picsellia's own
ultralytics images: every key their engine reads, at its default.

Read from picselliahq/picsellia-cv-engine: `core/parameters/hyper_parameters.py` (epochs...
device), `frameworks/ultralytics/parameters/hyper_parameters.py` (time... plots),
`frameworks/ultralytics/parameters/augmentation_parameters.py` (hsv_h... crop_fraction) and
`core/parameters/export_parameters.py` (export_format). Optional values as their forms send
them ("None"), a few numbers and bools as text, as their reader coerces them.
"""

from __future__ import annotations

from typing import Any

PICSELLIA_ENGINE_PARAMETERS: dict[str, Any] = {
    # HyperParameters
    "epochs": 10,
    "batch_size": 8,
    "image_size": 640,
    "seed": 0,
    "validate": False,
    "prop_train_split": 0.8,
    "device": "cuda:0",
    # UltralyticsHyperParameters
    "time": "None",
    "patience": 100,
    "save_period": 100,
    "cache": "false",
    "workers": 8,
    "optimizer": "auto",
    "deterministic": True,
    "single_cls": False,
    "rect": False,
    "cos_lr": "false",
    "close_mosaic": 10,
    "amp": True,
    "fraction": 1.0,
    "profile": False,
    "freeze": "None",
    "lr0": 0.01,
    "lrf": 0.1,
    "momentum": 0.937,
    "weight_decay": 0.0005,
    "warmup_epochs": "3.0",
    "warmup_momentum": 0.8,
    "warmup_bias_lr": 0.1,
    "box": 7.5,
    "cls": 0.5,
    "dfl": 1.5,
    "pose": 12.0,
    "kobj": 2.0,
    "label_smoothing": 0.0,
    "nbs": "64",
    "overlap_mask": True,
    "mask_ratio": 4,
    "dropout": 0.0,
    "plots": True,
    # UltralyticsAugmentationParameters
    "hsv_h": 0.015,
    "hsv_s": 0.7,
    "hsv_v": 0.4,
    "degrees": 0.0,
    "translate": 0.1,
    "scale": 0.5,
    "shear": 0.0,
    "perspective": 0.0,
    "flipud": 0.0,
    "fliplr": 0.5,
    "bgr": 0.0,
    "mosaic": 1.0,
    "mixup": 0.0,
    "copy_paste": 0.0,
    "auto_augment": "randaugment",
    "erasing": 0.4,
    "crop_fraction": 1.0,
    # ExportParameters
    "export_format": "onnx",
}
# The keys among them that configure nothing in pictrain (each ignored, with its reason).
NO_EFFECT_KEYS = {
    "validate",
    "profile",
    "plots",
    "label_smoothing",
    "crop_fraction",
}
