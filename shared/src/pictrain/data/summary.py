"""What one split's conversion wrote, fixed and dropped: counts and a few examples, never one
log line per object, so a million annotations still give a report a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pictrain.config import task_spec

EXAMPLES = 3


@dataclass
class ConversionSummary:
    """Counters shared by the three tasks; those a task never touches stay 0 and are not shown."""

    split: str
    task: str = "detect"  # a `pictrain.config.Task`
    images_in: int = 0
    images_written: int = 0
    background_images: int = 0  # written with an empty label file (detect, segment)
    labels_written: int = 0  # boxes, polygons, or images placed in a class folder
    # fixed: images
    images_rotated: int = 0  # EXIF orientation applied to the pixels
    sizes_from_file: int = 0  # JSON width/height disagreed with the file
    images_renamed: int = 0  # same flattened stem as another image
    images_copied: int = 0  # hard link impossible (other filesystem)
    # fixed: labels
    boxes_clipped: int = 0
    polygons_clipped: int = 0  # objects with a point moved onto the image border
    objects_merged: int = 0  # multi-part objects joined into one polygon (obb: one box)
    boxes_turned: int = 0  # obb: the tightest box reached too far out of the image
    holes_filled: int = 0  # mask holes, which a YOLO polygon cannot represent
    boxes_from_points: int = 0  # pose: the box was the labelled points' hull (Picsellia's)
    boxes_from_rectangles: int = 0  # pose: the same-label rectangle holding the points (MULTI)
    areas_recomputed: int = 0  # pose: the file's area absent or 1.0 (Picsellia's)
    boxes_without_keypoints: int = 0  # pose: rectangles no keypoints went with, every point 0
    # dropped: annotations
    annotations_crowd: int = 0
    annotations_unknown_category: int = 0
    annotations_unknown_image: int = 0
    annotations_malformed: int = 0  # without integer image_id/category_id
    annotations_of_dropped_images: int = 0
    boxes_missing: int = 0  # no bbox, or not 4 numbers (a classification export?)
    boxes_outside: int = 0
    boxes_degenerate: int = 0  # NaN, zero or negative size, or under 1 px after clipping
    parts_degenerate: int = 0  # polygon parts under 3 points, malformed, or of zero area
    objects_without_shape: int = 0  # no usable polygon or mask left
    keypoints_malformed: int = 0  # pose: not 3 x K numbers, or a labelled point not finite
    keypoints_bad_visibility: int = 0  # pose: a visibility other than 0, 1, 2
    keypoints_outside: int = 0  # pose: labelled points outside the image, made unlabelled
    poses_without_points: int = 0  # pose: no labelled point (left)
    # dropped: images
    images_malformed: int = 0  # image entry without integer id or file_name
    images_duplicate_id: int = 0
    images_unsafe_name: int = 0  # absolute, or climbing out with '..'
    images_missing: int = 0
    images_corrupt: int = 0
    images_unlabelled: int = 0  # classify: no category
    images_ambiguous: int = 0  # classify: several different categories
    empty_classes: list[str] = field(default_factory=list)  # classify: folders left empty
    class_counts: dict[str, int] = field(default_factory=dict)  # labels written per class
    examples: dict[str, list[str]] = field(default_factory=dict)
    # COCO image id -> converted file name, for every image written
    written: dict[int, str] = field(default_factory=dict, repr=False)
    # converted file name -> COCO file_name, only where they differ
    source_names: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def unit(self) -> str:
        """What the task writes, plural ("boxes")."""
        return task_spec(self.task).unit

    @property
    def _folders(self) -> bool:
        return task_spec(self.task).per_image

    def source_name(self, converted: str) -> str:
        """The platform's file name of a converted image (evaluations are keyed by it)."""
        return self.source_names.get(converted, converted)

    def note(self, kind: str, example: str) -> None:
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES:
            examples.append(example)

    def drop_image(self, missing: bool, example: str) -> None:
        if missing:
            self.images_missing += 1
        else:
            self.images_corrupt += 1
        self.note("missing images" if missing else "corrupt images", example)

    def fixed(self) -> dict[str, int]:
        """What was repaired, by description; only the kinds that happened."""
        return _nonzero(
            {
                "boxes clipped to the image": self.boxes_clipped,
                "polygons clipped to the image": self.polygons_clipped,
                f"multi-part objects joined into one {self._shape}": self.objects_merged,
                "oriented boxes turned to fit the image": self.boxes_turned,
                "mask holes filled": self.holes_filled,
                "boxes made from the labelled keypoints, padded": self.boxes_from_points,
                "boxes taken from the same-label rectangle holding the keypoints": (
                    self.boxes_from_rectangles
                ),
                "object areas recomputed from the box (none, or 1.0)": self.areas_recomputed,
                "boxes without keypoints, every point unlabelled": self.boxes_without_keypoints,
                "images rotated to their EXIF orientation": self.images_rotated,
                "image sizes taken from the file": self.sizes_from_file,
                "images renamed (same name as another)": self.images_renamed,
                "images copied (no hard link possible)": self.images_copied,
            }
        )

    @property
    def _shape(self) -> str:
        return "box" if self.task == "obb" else "polygon"

    def dropped(self) -> dict[str, int]:
        """What was left out, by description; only the kinds that happened."""
        return _nonzero(
            {
                "annotations without a box": self.boxes_missing,
                "boxes outside the image": self.boxes_outside,
                "degenerate boxes": self.boxes_degenerate,
                "degenerate polygon parts": self.parts_degenerate,
                "objects without a usable shape": self.objects_without_shape,
                "keypoint lists not of 3 numbers per point": self.keypoints_malformed,
                "keypoint lists with a visibility other than 0, 1, 2": (
                    self.keypoints_bad_visibility
                ),
                "keypoints outside the image (made unlabelled)": self.keypoints_outside,
                "objects without a labelled keypoint": self.poses_without_points,
                "crowd annotations": self.annotations_crowd,
                "annotations of unknown category": self.annotations_unknown_category,
                "annotations of unknown image id": self.annotations_unknown_image,
                "malformed annotations": self.annotations_malformed,
                "annotations of dropped images": self.annotations_of_dropped_images,
                "malformed image entries": self.images_malformed,
                "images with a duplicate id": self.images_duplicate_id,
                "unsafe file names": self.images_unsafe_name,
                "missing images": self.images_missing,
                "corrupt images": self.images_corrupt,
                "unlabelled images": self.images_unlabelled,
                "ambiguous images (several classes)": self.images_ambiguous,
            }
        )

    def table(self) -> dict[str, list[Any]]:
        """The whole report as a TABLE log: one count per row (written, fixed, dropped, and
        the labels of each class)."""
        counts = {
            "images in": self.images_in,
            "images written": self.images_written,
            **({} if self._folders else {"background images": self.background_images}),
            f"{self.unit} written": self.labels_written,
            **{f"fixed: {what}": count for what, count in self.fixed().items()},
            **{f"dropped: {what}": count for what, count in self.dropped().items()},
            **{f"class {name}": count for name, count in self.class_counts.items()},
        }
        return {"columns": ["count"], "rows": list(counts), "data": [[n] for n in counts.values()]}

    def why_unlabelled(self) -> str:
        """Why no label was written, for a failure message."""
        dropped = self.dropped()
        if not dropped:
            return "it has no annotation"
        reasons = ", ".join(f"{n} {what}" for what, n in dropped.items())
        hint = (
            " (a classification dataset?)" if list(dropped) == ["annotations without a box"] else ""
        )
        return f"every annotation was dropped: {reasons}{hint}"

    def label_distribution(self) -> dict[str, list[Any]]:
        """Labels written per class, as a BAR log: `{"x": names, "y": counts}`."""
        return {"x": list(self.class_counts), "y": list(self.class_counts.values())}

    def __str__(self) -> str:
        head = f"{self.split}: {self.images_written} of {self.images_in} images written"
        if not self._folders:
            head += f" ({self.background_images} background)"
        lines = [f"{head}, {self.labels_written} {self.unit}"]
        for title, counts in (("fixed", self.fixed()), ("dropped", self.dropped())):
            if counts:
                lines.append(f"  {title}: {', '.join(f'{n} {what}' for what, n in counts.items())}")
        if self.empty_classes:
            shown = ", ".join(self.empty_classes[:EXAMPLES])
            lines.append(f"  {len(self.empty_classes)} classes without images, e.g.: {shown}")
        for kind, names in self.examples.items():
            lines.append(f"  {kind}, e.g.: {'; '.join(names)}")
        return "\n".join(lines)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {what: count for what, count in counts.items() if count}
