"""No file a user might have downloaded is unpickled with code execution: every `torch.load` and every Lightning
`ckpt_path` load in src/ passes weights_only=True (weights_only=False is allowed only where a checkpoint is saved)."""

import ast

from src.config import REPO_ROOT

LOADERS = {"load", "fit", "validate", "test", "predict", "load_from_checkpoint"}


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """(called name, call) for every call in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            found.append((name, node))
    return found


def _weights_only(call: ast.Call) -> object:
    """The literal value of the call's weights_only keyword (None when absent or not a literal)."""
    keyword = next((k for k in call.keywords if k.arg == "weights_only"), None)
    return keyword.value.value if keyword is not None and isinstance(keyword.value, ast.Constant) else None


def test_no_load_in_src_unpickles_with_weights_only_false():
    unsafe, torch_loads = [], 0
    for path in sorted((REPO_ROOT / "src").rglob("*.py")):
        for name, call in _calls(ast.parse(path.read_text())):
            where = f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
            if name in LOADERS and _weights_only(call) is False:
                unsafe.append(where)
            if ast.unparse(call.func) == "torch.load":
                torch_loads += 1
                if _weights_only(call) is not True:
                    unsafe.append(f"{where} (torch.load without weights_only=True)")
    assert unsafe == [], f"user-supplied files loaded unsafely at {unsafe}"
    assert torch_loads >= 3  # the scan sees the loads it guards (checkpoints, init_checkpoint, legacy int8)
