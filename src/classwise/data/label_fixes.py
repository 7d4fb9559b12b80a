"""A person's decisions about suspected label errors, applied at ingest: a CSV of ``id, action, new_class, note``
(action ``drop`` or ``relabel``; a row with no action is a suspect not yet decided, and is kept as it is).

The diagnose pipeline writes such a file from its suspects with the action column empty
(``data/08_reporting/label_fixes_template.csv``); filled in and named by ``data.label_fixes``, it changes
exactly the named images. The fixed labels and the dropped images change the dataset's fingerprint, so a
model trained before the fixes is refused on the fixed data, in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from classwise.core.errors import ConfigError
from classwise.data.sources.base import LabelledImages

COLUMNS = ["id", "action", "new_class", "note"]
ACTIONS = ("drop", "relabel")


@dataclass
class Applied:
    data: LabelledImages
    log: pd.DataFrame  # one row a decided fix: id, action, from_class, to_class, note


def read_label_fixes(path: str | Path) -> pd.DataFrame:
    """The fixes file, checked for its columns and actions (one sentence naming the file when it is wrong)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Parameter 'data.label_fixes' points at '{path}', which is not a file; give the CSV "
                          f"of fixes (id, action, new_class, note) or set it to null.")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "action") if c not in table.columns]
    if missing:
        raise ConfigError(f"The label fixes '{path}' lack the column(s) {', '.join(missing)}; it needs "
                          f"{', '.join(COLUMNS)} (data/08_reporting/label_fixes_template.csv has them).")
    for column in ("new_class", "note"):
        if column not in table.columns:
            table[column] = ""
    table["action"] = table["action"].str.strip().str.lower()
    wrong = table[~table["action"].isin(("", *ACTIONS))]
    if len(wrong):
        row = wrong.iloc[0]
        raise ConfigError(f"The label fixes '{path}' give action '{row['action']}' for image '{row['id']}'; "
                          f"use drop, relabel, or leave it empty to keep the image as it is.")
    duplicated = table.loc[table["action"] != "", "id"]
    duplicated = duplicated[duplicated.duplicated()]
    if len(duplicated):
        raise ConfigError(f"The label fixes '{path}' decide image '{duplicated.iloc[0]}' twice; keep one row "
                          f"per image.")
    return table[COLUMNS]


def apply_label_fixes(data: LabelledImages, fixes: pd.DataFrame, path: str | Path) -> Applied:
    """``data`` with the decided rows of ``fixes`` applied: ``drop`` removes the image, ``relabel`` gives it
    ``new_class``. An id the data does not hold, or a class it does not know, is refused in one sentence."""
    decided = fixes[fixes["action"] != ""]
    row_of = {image_id: i for i, image_id in enumerate(data.ids)}
    unknown = [i for i in decided["id"] if i not in row_of]
    if unknown:
        raise ConfigError(f"The label fixes '{path}' name image '{unknown[0]}', which the data does not hold"
                          f"{f' (and {len(unknown) - 1} more)' if len(unknown) > 1 else ''}; use the ids of "
                          f"label_issues.csv from a diagnosis of this data, or remove the row.")
    classes = {name: c for c, name in enumerate(data.class_names)}
    relabel = decided[decided["action"] == "relabel"]
    bad = relabel[~relabel["new_class"].isin(classes)]
    if len(bad):
        row = bad.iloc[0]
        raise ConfigError(f"The label fixes '{path}' relabel image '{row['id']}' as '{row['new_class']}', which is "
                          f"not a class of the data; use one of: {', '.join(data.class_names[:10])}"
                          f"{' ...' if len(data.class_names) > 10 else ''}.")
    labels = data.labels.copy()
    rows = []
    for fix in decided.itertuples(index=False):
        i = row_of[fix.id]
        to = fix.new_class if fix.action == "relabel" else ""
        rows.append({"id": fix.id, "action": fix.action, "from_class": data.class_names[labels[i]],
                     "to_class": to, "note": fix.note})
        if fix.action == "relabel":
            labels[i] = classes[fix.new_class]
    keep = np.ones(len(data), dtype=bool)
    keep[[row_of[i] for i in decided.loc[decided["action"] == "drop", "id"]]] = False
    fixed = LabelledImages(images=data.images[keep], labels=labels[keep], class_names=list(data.class_names),
                           ids=[image_id for image_id, k in zip(data.ids, keep) if k])
    return Applied(fixed, pd.DataFrame(rows, columns=["id", "action", "from_class", "to_class", "note"]))


def fixes_template(issues: pd.DataFrame) -> pd.DataFrame:
    """The diagnosis's suspects as a fixes file to fill in: the action left empty, the suggested class as
    new_class, the reason and confidence as the note."""
    agree = issues["dynamics_agree"] if "dynamics_agree" in issues else pd.Series(False, index=issues.index)
    aum = issues["training_aum"] if "training_aum" in issues else pd.Series(np.nan, index=issues.index)
    note = [f"{reason}; given {given}, self-confidence {conf:.2f}"
            + (f"; training dynamics agree (AUM {a:.2f})" if agreed else "")
            for reason, given, conf, agreed, a in zip(issues["reason"], issues["given_class"],
                                                      issues["self_confidence"], agree, aum)]
    return pd.DataFrame({"id": issues["id"].astype(str), "action": "", "new_class": issues["suggested_class"],
                         "note": note}, columns=COLUMNS)
