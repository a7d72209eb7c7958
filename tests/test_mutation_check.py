"""scripts/mutation_check.py keeps working as the code moves: every mutant's text is in its file exactly once,
and the mutated file still parses, as Python or as setup.cfg (a mutant must be a plausible bug, not a syntax
error). CI also runs the whole check (.ci/run)."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "scripts" / "mutation_check.py")
mc = importlib.util.module_from_spec(spec)
sys.modules["mutation_check"] = mc  # dataclasses look their module up there
spec.loader.exec_module(mc)


@pytest.mark.parametrize("mutant", mc.MUTANTS, ids=[m.name for m in mc.MUTANTS])
def test_mutant_applies_and_parses(mutant):
    mc.check_applies(mutant)
    text = (ROOT / mutant.file).read_text()
    mutated = text.replace(mutant.old, mutant.new)
    assert mutated != text
    if mutant.file.endswith(".py"):
        ast.parse(mutated)
    else:  # a configuration file (setup.cfg) must still read as one
        import configparser

        configparser.ConfigParser().read_string(mutated)
    for t in mutant.tests:
        assert (ROOT / t.split("::")[0]).is_file(), t


def test_the_issue_26_mutants_are_all_there():
    names = {m.name for m in mc.MUTANTS}
    assert {"pairs_wrong_codes", "env_fixed_blur", "ddpg_resume_skips_weights", "zeta_always_minus",
            "env_ignores_noise", "l1_error_without_gt"} <= names and len(names) == len(mc.MUTANTS)
