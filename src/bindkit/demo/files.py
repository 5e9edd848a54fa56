"""The demo's scored data as files, read back through `bindkit.data`'s loaders, plus what `bindkit eval` needs.

The report scores the held-out split exactly as a user's files would be scored: `test/` (every modality of the
held-out writers and voices) and `probe/` (the few-shot pool, train instances) are written with
`bindkit.worlds.to_files`, then loaded with `bindkit.data.load(..., config=model.config)`, which takes input sizes
and the fitted constants from the saved model. `eval/` holds one CSV per modality (`file,label,split`: probe rows
are `train`, test rows `test`), `classnames.txt` and `templates.txt`, so `bindkit eval` reproduces the report:

    bindkit eval --task csv --root RUN/eval/audio.csv --model RUN/model \\
        --templates RUN/eval/templates.txt --class-names RUN/eval/classnames.txt
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bindkit.config import ImageBindConfig
from bindkit.data import load
from bindkit.worlds import to_files
from bindkit.worlds.captions import PROMPT_TEMPLATES, WORDS

from .data import DemoData

SCORED = ("image", "video", "audio", "depth", "thermal", "imu")  # modalities with files in test/ and probe/


@dataclass
class Split:
    """One split read back from its files: the manifest rows and a model input per modality."""

    rows: list[dict]
    inputs: dict[str, torch.Tensor]  # modality (image, video, audio, ...) -> model input

    @property
    def digits(self) -> np.ndarray:
        """The class (digit) of every row."""
        return np.asarray([r["digit"] for r in self.rows], dtype=np.int64)

    @property
    def surfaces(self) -> list[str]:
        """The surface attribute of every row (the arithmetic query's image attribute)."""
        return self.attribute("surface")

    def attribute(self, name: str) -> list[str]:
        """One attribute (surface, relief, ink, ...) of every row, from the manifest."""
        return [r["attributes"][name] for r in self.rows]


def write_splits(data: DemoData, run: Path) -> dict[str, Path]:
    """Write `test/` and `probe/` (manifests + files) and the `eval/` CSVs; returns the paths by name."""
    test = to_files(data.test, run / "test")
    probe = to_files(data.probe, run / "probe")
    return {"test": test, "probe": probe, **write_eval_folder(run / "eval", {"train": probe, "test": test})}


def write_eval_folder(folder: Path, manifests: dict[str, Path]) -> dict[str, Path]:
    """One `file,label,split` CSV per scored modality over the manifests, plus class names and templates."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {split: read_manifest(path) for split, path in manifests.items()}
    out = {}
    for m in SCORED:
        out[m] = folder / f"{m}.csv"
        with open(out[m], "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["file", "label", "split"])
            for split, path in manifests.items():
                rel = Path("..") / path.parent.name
                w.writerows([(rel / r["files"][m]).as_posix(), str(r["digit"]), split] for r in rows[split])
    # labels are the numerals, which sort in digit order, so class i is digit i and its name is WORDS[i]
    out["classnames"] = folder / "classnames.txt"
    out["classnames"].write_text("\n".join(WORDS) + "\n")
    out["templates"] = folder / "templates.txt"
    out["templates"].write_text("\n".join(PROMPT_TEMPLATES) + "\n")
    return out


def read_manifest(path: Path) -> list[dict]:
    """The rows of a `to_files` manifest."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def read_split(manifest: Path, config: ImageBindConfig, modalities=SCORED) -> Split:
    """Load every modality's files of a split with `bindkit.data.load` and the model config's sizes and constants."""
    folder, rows = manifest.parent, read_manifest(manifest)
    inputs = {m: load(m, [folder / r["files"][m] for r in rows], config=config) for m in modalities}
    return Split(rows, inputs)
