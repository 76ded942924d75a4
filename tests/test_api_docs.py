"""docs/api.md is current and covers the DESIGN.md public API contract with docstrings."""

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
GEN = ROOT / "docs" / "gen_api.py"

pytest.importorskip("torch", reason="chansim.codecs needs PyTorch; docs/api.md documents the codecs")

# (module, attribute path) for every callable in DESIGN.md "Public API contract".
CONTRACT = [
    ("chansim.prng", "philox4x32"), ("chansim.prng", "uniform"), ("chansim.prng", "normal"),
    ("chansim.prng", "exponential"),
    ("chansim.rans", "Encoder"), ("chansim.rans", "Decoder"),
    ("chansim.dq", "quantize"), ("chansim.dq", "dequantize"),
    ("chansim.pfr", "encode_gaussian"), ("chansim.pfr", "decode_gaussian"),
    ("chansim.grc", "encode_gaussian"), ("chansim.grc", "decode_gaussian"),
    ("chansim.errors", "FormatError"),
]
CODEC_MEMBERS = ["pretrained", "compress", "decompress", "decompress_progressive", "qualities"]
CONTRACT += [("chansim.codecs", f"{c}.{m}") for c in ("UQDM", "DiffC") for m in CODEC_MEMBERS]


def _load_generator():
    spec = importlib.util.spec_from_file_location("chansim_gen_api", GEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed():
    assert API_MD.exists(), "docs/api.md is missing: run `python docs/gen_api.py`"
    return API_MD.read_text(encoding="utf-8")


def test_api_md_is_current(committed):
    fresh = _load_generator().render()
    assert fresh == committed, (
        "docs/api.md is stale (a public docstring or signature changed): run `python docs/gen_api.py` and commit it")


def test_render_is_deterministic_and_machine_independent():
    gen = _load_generator()
    text = gen.render()
    assert text == gen.render()
    assert not re.search(r" at 0x[0-9a-fA-F]+", text), "memory address leaked into docs/api.md"
    assert str(ROOT) not in text, "absolute checkout path leaked into docs/api.md"


def _documented(owner, name):
    """Docstring of owner.name; for plain instance attributes, the owner's Attributes entry."""
    raw = inspect.getattr_static(owner, name, None)
    if raw is not None:
        if isinstance(raw, property):
            doc = inspect.getdoc(raw)
            if doc:
                return doc
        else:
            target = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
            if callable(target):
                return inspect.getdoc(target)
    # `qualities` may be an instance attribute or an undocumented property: DESIGN.md's
    # contract is then met by the class docstring's Attributes entry.
    class_doc = inspect.getdoc(owner) or ""
    match = re.search(rf"^\s*{re.escape(name)}:\s*\S.*$", class_doc, flags=re.M)
    return match.group(0).strip() if match else ""


@pytest.mark.parametrize("modname, path", CONTRACT, ids=[f"{m}.{p}" for m, p in CONTRACT])
def test_contract_name_documented(committed, modname, path):
    module = importlib.import_module(modname)
    *owners, name = path.split(".")
    owner = module
    for part in owners:
        owner = getattr(owner, part)
    assert hasattr(owner, name) or name in (inspect.getdoc(owner) or ""), f"{modname}.{path} does not exist"
    qual = f"{modname}.{path}"
    if owners:
        # Class members appear as `chansim.codecs.UQDM.compress` headings or in the class docstring.
        heading = f"### class `{modname}.{'.'.join(owners)}`"
        assert heading in committed, f"{heading} missing from docs/api.md: run `python docs/gen_api.py`"
        section = re.split(r"^### ", committed.split(heading, 1)[1], maxsplit=1, flags=re.M)[0]
        assert f"`{qual}`" in section or re.search(rf"^\s*{re.escape(name)}:", section, flags=re.M), (
            f"{qual} missing from its class section of docs/api.md: run `python docs/gen_api.py`")
        doc = _documented(owner, name)
    else:
        assert f"`{qual}`" in committed, f"{qual} missing from docs/api.md: run `python docs/gen_api.py`"
        doc = inspect.getdoc(getattr(owner, name))
    assert doc and doc.strip(), f"{qual} is in the public API contract but has no docstring"
