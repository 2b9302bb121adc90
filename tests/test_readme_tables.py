"""The README's generated tables are what `scripts/update_readme.py` makes from the committed
results/ (so every number there reproduces from the result files)."""
import importlib.util
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location("update_readme", os.path.join(ROOT, "scripts", "update_readme.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_readme_blocks_match_the_committed_results():
    mod = _script()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    want = {"counts": mod.counts_table(), "status": mod.status_line(), "results": mod.results_section(),
            "protocol1": mod.protocol1_section(), "beyond": mod.beyond_section()}
    for name, body in want.items():
        m = re.search(rf"<!-- generated:{name} -->\n(.*?)<!-- end:{name} -->", text, re.S)
        assert m, f"README.md has no generated block {name!r}"
        assert m.group(1).strip() == body.strip(), (
            f"README block {name!r} is stale: run `python scripts/update_readme.py`")
