"""vendors/ is a leaf: the apps use it, it uses none of them (models are named by string)."""

import ast
from pathlib import Path

from django.conf import settings

VENDORS = Path(__file__).resolve().parents[2] / "vendors"


def test_it_imports_nothing_of_the_apps():
    apps = {name.split(".")[0] for name in settings.INSTALLED_APPS} - {"vendors", "django"}
    found = []
    for path in VENDORS.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] in apps]
    assert found == []
