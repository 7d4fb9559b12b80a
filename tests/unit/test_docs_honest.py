"""The README and the guides name only things that exist: parameters, make targets, files.

Each check collects every offence first and fails naming the file and the text, so
one run lists everything to fix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import PROJECT_ROOT
from classwise.ablation.__main__ import _split_items  # the ablation CLI's own --params splitter
from classwise.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS

ROOT = PROJECT_ROOT
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARKDOWN = [README, *DOCS]
README_MAX_LINES = 150

# The top-level parameter blocks a run accepts (classwise.framework.parameters refuses any other).
BLOCKS = ("data", "split", "normalization", "train", "evaluate", "predict", "diagnose", "ablation")
# Dict-valued options whose keys belong to the model or loss chosen, not to conf/base.
OPEN_DICTS = ("model_options", "loss_options")
# Typos the guides show on purpose, next to the refusal they get.
DELIBERATE_TYPOS = {"trian.epochs"}

# `--params=a.b=1,c=2` or `--params a.b=1,c=2` (the ablation command's form); the value
# runs to the next space, backtick or quote. Only values that start with `key=` count, so
# prose such as "`--params` merges" is not taken for a parameter.
PARAMS = re.compile(r"--params(?:=|\s+)([A-Za-z_][\w.]*=[^\s`'\"]*)")
MAKE = re.compile(r"(?:^|[\s;&|(`])make\s+((?:[A-Za-z_][\w]*=\S*\s+)*)([A-Za-z][\w.-]*)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _code(text: str) -> list[str]:
    """The code in a Markdown text: fenced blocks and inline spans."""
    fenced = FENCE.findall(text)
    rest = FENCE.sub("", text)
    return fenced + INLINE.findall(rest)


@pytest.fixture(scope="module")
def base_parameters() -> dict:
    loader = CONFIG_LOADER_CLASS(str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "base"})
    return loader["parameters"]


@pytest.fixture(scope="module")
def option_names() -> dict[str, set[str]]:
    """Every key a model or a loss accepts, for keys written under model_options / loss_options."""
    from classwise.models import available_models
    from classwise.models.registry import model_option_names
    from classwise.training.losses import LOSS_OPTIONS

    models: set[str] = set()
    for name in available_models():
        models |= set(model_option_names(name) or [])
    losses = {key for options in LOSS_OPTIONS.values() for key in options}
    return {"model_options": models, "loss_options": losses | {"beta"}}


def _param_keys(path: Path) -> list[str]:
    """Every key named in a `--params` value of ``path``, e.g. `train.epochs` from `--params=train.epochs=3`."""
    keys = []
    for value in PARAMS.findall(path.read_text(encoding="utf-8")):
        for item in _split_items(value):
            key, sep, _ = item.partition("=")
            keys.append(key.strip() if sep else item)
    return keys


def _key_problem(key: str, params: dict, option_names: dict[str, set[str]]) -> str | None:
    """Why ``key`` names no parameter, or None when it does."""
    parts = key.split(".")
    if parts[0] not in BLOCKS:
        return f"'{parts[0]}' is not a parameter block ({', '.join(BLOCKS)})"
    node = params.get(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if parts[i - 1] in OPEN_DICTS:
            if part not in option_names[parts[i - 1]]:
                return f"no model or loss takes the option '{part}'"
            return None if i == len(parts) - 1 else f"'{'.'.join(parts[: i + 1])}' is not a dict"
        if not isinstance(node, dict) or part not in node:
            return f"'{'.'.join(parts[: i + 1])}' is not in conf/base"
        node = node[part]
    return None


def test_every_params_key_in_the_docs_exists(base_parameters, option_names):
    offences, seen = [], 0
    for path in MARKDOWN:
        for key in _param_keys(path):
            seen += 1
            if key in DELIBERATE_TYPOS:
                continue
            problem = _key_problem(key, base_parameters, option_names)
            if problem:
                offences.append(f"{_rel(path)}: --params key '{key}': {problem}")
    assert seen, "no --params example found in README.md or docs/*.md; the pattern is broken"
    assert not offences, "\n".join(offences)


def test_the_key_check_can_fail(base_parameters, option_names):
    """The check above is only worth something if it refuses made-up keys."""
    assert _key_problem("trian.epochs", base_parameters, option_names)
    assert _key_problem("train.epoch", base_parameters, option_names)
    assert _key_problem("train.model_options.preactivation", base_parameters, option_names)
    assert _key_problem("data.cifar100.seedlike", base_parameters, option_names)
    assert _key_problem("train.model_options.depth", base_parameters, option_names) is None
    assert _key_problem("train.loss_options.tau", base_parameters, option_names) is None
    assert _key_problem("diagnose.recipe.model_options.width", base_parameters, option_names) is None
    assert _param_keys_of("kedro run --params=train.epochs=3,data.root=x") == ["train.epochs", "data.root"]
    assert _param_keys_of("python -m classwise.ablation --params train.milestones=[60,90],train.lr=0.1") == [
        "train.milestones", "train.lr"]
    assert _param_keys_of("`--params` merges key by key") == []


def _param_keys_of(text: str) -> list[str]:
    return [item.partition("=")[0] for value in PARAMS.findall(text) for item in _split_items(value)]


def _make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.$()/ -]+?)\s*:(?![=:])", line)
        if match and not line.startswith(("\t", ".PHONY")):
            targets.update(t for t in match.group(1).split() if not t.startswith(("$", ".")))
    return targets


def test_every_make_target_in_the_docs_exists():
    targets = _make_targets()
    assert {"run", "test"} <= targets, f"Makefile targets not parsed: {sorted(targets)}"
    offences = []
    for path in MARKDOWN:
        for code in _code(path.read_text(encoding="utf-8")):
            for _, target in MAKE.findall(code):
                if target not in targets:
                    offences.append(f"{_rel(path)}: 'make {target}' is not a Makefile target "
                                    f"(targets: {', '.join(sorted(targets))})")
    assert not offences, "\n".join(offences)


def test_the_readme_fits_on_one_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}; move detail into a guide under docs/")


def _anchors(path: Path) -> set[str]:
    """The heading anchors GitHub gives a Markdown file: lower case, punctuation dropped, spaces to '-'."""
    anchors: set[str] = set()
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for line in text.splitlines():
        if line.startswith("#"):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            anchor, n = slug, 0
            while anchor in anchors:
                n += 1
                anchor = f"{slug}-{n}"
            anchors.add(anchor)
    return anchors


def _broken_links(path: Path, only_docs: bool) -> list[str]:
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # a URL
        file_part, _, anchor = target.partition("#")
        if only_docs and not file_part.startswith("docs/"):
            continue
        linked = path.parent / file_part if file_part else path
        if not linked.exists():
            broken.append(f"{_rel(path)}: link '{target}' points at no file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{_rel(path)}: link '{target}' points at no heading of {_rel(linked)}")
    return broken


def test_every_readme_link_into_docs_exists():
    links = [t for t in LINK.findall(README.read_text(encoding="utf-8")) if t.startswith("docs/")]
    assert links, "README.md links to no guide under docs/"
    broken = _broken_links(README, only_docs=True)
    assert not broken, "\n".join(broken)


def test_every_relative_link_in_the_guides_exists():
    """Files and headings, so that a renamed section does not leave a dead link behind."""
    broken = [b for path in DOCS for b in _broken_links(path, only_docs=False)]
    assert not broken, "\n".join(broken)
