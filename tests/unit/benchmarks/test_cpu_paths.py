"""benchmarks/cpu_paths.py: --variants names the reference loop as 'reference' and refuses unknown names."""

import pytest

from tests.conftest import PROJECT_ROOT, load_script

CPU_PATHS = load_script(PROJECT_ROOT / "benchmarks" / "cpu_paths.py")


def test_reference_names_the_reference_loop():
    args = CPU_PATHS.parse_args(["--variants", "reference", "fp32 NCHW"])
    assert args.variants == [CPU_PATHS.REFERENCE, "fp32 NCHW"]


def test_an_unknown_variant_is_refused_by_name_before_any_work(capsys):
    with pytest.raises(SystemExit):
        CPU_PATHS.parse_args(["--variants", "refrence"])
    assert "--variants: no variant named 'refrence'; choose from 'reference' and 'fp32 NCHW'" in capsys.readouterr().err
