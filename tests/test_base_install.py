"""A base install (``pip install chansim``, no extras): what must work without PyTorch, and the
import graph of the package (no cycles among the CLI's modules, no upward imports).

Each test runs a fresh interpreter in which ``torch`` cannot be imported (a meta-path finder
refuses it, as if it were not installed), so it runs in the normal test venv too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "chansim"

BLOCK_TORCH = textwrap.dedent('''
    import sys

    class _NoTorch:
        """Acts as if PyTorch (and what needs it) were not installed."""
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "triton", "pytorch_msssim", "diffusers"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoTorch())
''')


def run_without_torch(code: str, *args, cwd=None):
    """Run ``code`` (after the torch blocker) in a fresh interpreter: (status, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code), *map(str, args)],
                       capture_output=True, text=True, timeout=300, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


CLI = "import sys\nfrom chansim.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def test_file_level_modules_import_without_torch():
    status, out, err = run_without_torch('''
        import chansim, chansim.metrics, chansim.varint, chansim.evaluation, chansim.cli
        import chansim.codecs, chansim.codecs.base, chansim.codecs.container
        import numpy as np
        from chansim.codecs.container import Container, unpack
        from chansim.metrics import bpp, psnr
        data = Container("uqdm", bytes(8), 20, 30, 7, b"s", [b"ab"]).pack()
        assert unpack(data).width == 30
        a = np.zeros((4, 4, 3), np.uint8)
        assert psnr(a, a) == float("inf") and bpp(b"x" * 3, 2, 3) == 4.0
        assert "torch" not in sys.modules
        try:
            chansim.codecs.UQDM
        except ImportError as e:
            print(e)
    ''')
    assert status == 0, err
    assert 'pip install "chansim[codecs]"' in out


def test_decompress_without_torch_names_the_fix(tmp_path):
    # A missing file: said so, exit 2.
    status, out, err = run_without_torch(CLI, "decompress", tmp_path / "missing.chsm", tmp_path / "o.png")
    assert status == 2 and err.count("\n") == 1 and "no such file" in err, err
    # A valid file of a codec that needs PyTorch: the extra to install, exit 2, no traceback.
    from chansim.codecs.container import Container

    for codec in ("uqdm", "diffc", "ntc"):
        (tmp_path / "a.chsm").write_bytes(Container(codec, bytes(8), 20, 30, 7, b"s", [b"ab"]).pack())
        status, out, err = run_without_torch(CLI, "decompress", tmp_path / "a.chsm", tmp_path / "o.png")
        assert status == 2, err
        assert err.count("\n") == 1 and f"the {codec} codec needs PyTorch: " in err, err
        assert 'pip install "chansim[codecs]"' in err and "Traceback" not in err and "internal error" not in err
        assert not (tmp_path / "o.png").exists()


def test_compress_help_and_compress_without_torch(tmp_path):
    status, out, err = run_without_torch(CLI, "compress", "--help")
    assert status == 0, err
    for name in ("uqdm", "diffc"):
        assert f"  {name}" in out
    assert 'pip install "chansim[codecs]"' in out
    from PIL import Image
    import numpy as np

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    status, out, err = run_without_torch(CLI, "compress", tmp_path / "in.png", tmp_path / "x.chsm")
    assert status == 2 and 'pip install "chansim[codecs]"' in err and "Traceback" not in err, err
    assert not (tmp_path / "x.chsm").exists()


def test_eval_without_dask_names_the_extra(tmp_path):
    from PIL import Image
    import numpy as np

    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    code = ('import sys\nclass _NoDask:\n    def find_spec(self, name, path=None, target=None):\n'
            '        if name.split(".")[0] in ("distributed", "dask"):\n'
            '            raise ModuleNotFoundError(f"No module named {name!r}", name=name)\n'
            'sys.meta_path.insert(0, _NoDask())\n' + CLI)
    status, out, err = run_without_torch(code, "eval", tmp_path / "imgs", "--out", tmp_path / "o")
    assert status == 2 and 'pip install "chansim[eval]"' in err and "Traceback" not in err, err


# ---- the import graph -----------------------------------------------------------------------


def _imports(path: Path, module: str, modules):
    """The chansim modules ``module`` (the file at ``path``) imports, at any depth of the file;
    ``from pkg import sub`` counts as importing the submodule, not the package."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("chansim")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base[:len(base) - node.level + 1]
                target = ".".join(pkg + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("chansim"):
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                out.add(sub if sub in modules else target)
    return out


def _graph():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    mods["chansim._core"] = None  # the compiled extension: imports nothing of chansim
    graph = {m: {t for t in _imports(p, m, mods) if t in mods} if p else set() for m, p in mods.items()}
    return graph


def _cycles(graph, nodes):
    """Strongly connected components with more than one node (or a self-loop), among ``nodes``."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v] & nodes:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def test_package_has_no_import_cycle():
    graph = _graph()
    assert _cycles(graph, set(graph)) == []


def test_cli_modules_form_no_cycle():
    graph = _graph()
    cli = {m for m in graph if m == "chansim.cli" or m.startswith("chansim.cli.")}
    assert {"chansim.cli.main", "chansim.cli.common", "chansim.cli.compress", "chansim.cli.eval",
            "chansim.cli.demo", "chansim.cli.bench"} <= cli
    assert _cycles(graph, cli) == []
    assert "chansim.cli.main" not in graph["chansim.cli.common"]


@pytest.mark.parametrize("layer,forbidden", [
    ("core", ("chansim.codecs", "chansim.cli", "chansim.diffusion", "chansim.ntc", "chansim.train",
              "chansim.evaluation")),
    ("codecs", ("chansim.cli", "chansim.evaluation", "chansim.train")),
    ("evaluation", ("chansim.cli", "chansim.codecs", "chansim.train")),
])
def test_no_upward_imports(layer, forbidden):
    graph = _graph()
    core = ("chansim.prng", "chansim.prng_reference", "chansim.rans", "chansim.dq", "chansim.pfr", "chansim.grc",
            "chansim.varint", "chansim.errors", "chansim.metrics", "chansim._validate", "chansim.data")
    members = {"core": [m for m in graph if m in core],
               "codecs": [m for m in graph if m.startswith("chansim.codecs")],
               "evaluation": ["chansim.evaluation"]}[layer]
    assert members
    bad = {m: sorted(t for t in graph[m] if t.startswith(forbidden)) for m in members}
    assert {m: t for m, t in bad.items() if t} == {}
