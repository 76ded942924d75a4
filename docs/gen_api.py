"""Generate docs/api.md from the docstrings of chansim's public modules.

Run ``python docs/gen_api.py`` after changing a public docstring or signature;
``tests/test_api_docs.py`` fails while the committed docs/api.md is stale.
``render()`` returns the text without writing it, for that test.
"""

import importlib
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

MODULES = [
    "chansim.prng", "chansim.rans", "chansim.dq", "chansim.pfr", "chansim.grc",
    "chansim.codecs", "chansim.codecs.base", "chansim.codecs.container", "chansim.codecs.streams",
    "chansim.codecs.ntc", "chansim.ntc",
    "chansim.diffusion", "chansim.diffusion.pretrained", "chansim.codecs.step_report", "chansim.metrics", "chansim.perceptual", "chansim.evaluation", "chansim.varint", "chansim.testing",
    "chansim.errors",
]

# Values worth printing in full; anything else is shown by type only, so the text never
# depends on object identity.
_PLAIN = (bool, int, float, str, bytes, type(None))
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _clean(text: str) -> str:
    # Defaults such as Paths or objects may carry machine-specific details.
    text = _ADDRESS.sub("", text)
    return text.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")


def _doc(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return _clean(doc.strip())


def _signature(name: str, obj) -> str:
    try:
        return _clean(name + str(inspect.signature(obj)))
    except (TypeError, ValueError):
        # pybind11 builtins have no introspectable signature; their docstring's first line is one.
        first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
        if first and first[0].startswith(getattr(obj, "__name__", name) + "("):
            return _clean(name + first[0][first[0].index("("):])
        return name + "(...)"


def _builtin_doc(obj) -> str:
    # pybind11 puts the signature on the docstring's first line; drop it once shown above.
    doc = _doc(obj)
    lines = doc.splitlines()
    if lines and lines[0].startswith(getattr(obj, "__name__", "") + "(") and not _has_signature(obj):
        doc = "\n".join(lines[1:]).strip()
    return doc


def _has_signature(obj) -> bool:
    try:
        inspect.signature(obj)
        return True
    except (TypeError, ValueError):
        return False


def _plain_value(value) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (tuple, list, frozenset)):
        return all(_plain_value(v) for v in value)
    if isinstance(value, dict):
        return all(_plain_value(k) and _plain_value(v) for k, v in value.items())
    return False


def _value(value) -> str:
    if isinstance(value, frozenset):
        return "frozenset({" + ", ".join(repr(v) for v in sorted(value, key=repr)) + "})"
    if _plain_value(value) and len(repr(value)) <= 200:
        return repr(value)
    return "<" + type(value).__name__ + ">"


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    picked = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isroutine(obj):
            if getattr(obj, "__module__", None) == module.__name__:
                picked.append(name)
        elif name.isupper() and _plain_value(obj):
            # Module constants (format limits, magic numbers) are part of the interface.
            picked.append(name)
    return picked


def _block(doc: str) -> list:
    return [doc, ""] if doc else ["*(no docstring)*", ""]


def _class_members(cls):
    """(name, object) of public members defined by cls or its chansim bases, nearest first."""
    seen, members = set(), []
    for klass in cls.__mro__:
        if not (getattr(klass, "__module__", "") or "").startswith("chansim"):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            members.append((name, raw))
    return sorted(members)


def _render_class(qualname: str, cls, lines: list) -> None:
    init = cls.__dict__.get("__init__")
    sig = _signature(qualname, cls) if init is not None or _has_signature(cls) else qualname + "(...)"
    lines += [f"### class `{qualname}`", "", f"```python\n{sig}\n```", ""]
    lines += _block(_doc(cls))
    home = cls.__module__
    if qualname.rsplit(".", 1)[0] != home and home.startswith("chansim"):
        # Re-exported classes (chansim.codecs.UQDM) keep their usage notes in the defining module.
        notes = _doc(importlib.import_module(home))
        if notes:
            lines += [f"*From the docstring of `{home}`:*", "", notes, ""]
    for name, raw in _class_members(cls):
        if isinstance(raw, property):
            lines += [f"#### property `{qualname}.{name}`", ""]
            lines += _block(_doc(raw))
        elif isinstance(raw, (classmethod, staticmethod)):
            kind = "classmethod" if isinstance(raw, classmethod) else "staticmethod"
            func = getattr(cls, name)
            lines += [f"#### {kind} `{qualname}.{name}`", "", f"```python\n{_signature(name, func)}\n```", ""]
            lines += _block(_builtin_doc(raw.__func__))
        elif inspect.isroutine(raw):
            lines += [f"#### method `{qualname}.{name}`", "", f"```python\n{_signature(name, raw)}\n```", ""]
            lines += _block(_builtin_doc(raw))
        elif inspect.isclass(raw):
            lines += [f"#### class `{qualname}.{name}`", ""]
            lines += _block(_doc(raw))
        elif _plain_value(raw) or not callable(raw):
            lines += [f"- `{qualname}.{name}` = `{_value(raw)}`", ""]


def render_module(modname: str) -> str:
    module = importlib.import_module(modname)
    lines = [f"## `{modname}`", ""]
    lines += _block(_doc(module))
    constants = []
    for name in public_names(module):
        obj = getattr(module, name)
        qual = f"{modname}.{name}"
        if inspect.ismodule(obj):
            lines += [f"- submodule `{qual}`: see its own section or `help({obj.__name__})`", ""]
        elif inspect.isclass(obj):
            _render_class(qual, obj, lines)
        elif callable(obj):
            lines += [f"### `{qual}`", "", f"```python\n{_signature(qual, obj)}\n```", ""]
            lines += _block(_builtin_doc(obj))
        else:
            constants.append(f"- `{name}` = `{_value(obj)}`")
    if constants:
        lines += ["### Constants", ""] + constants + [""]
    return "\n".join(lines)


def render() -> str:
    parts = [
        "# chansim API reference",
        "",
        "Generated from the docstrings by `python docs/gen_api.py`; do not edit by hand.",
        "The stable contract is the \"Public API contract\" of DESIGN.md; the command line is in",
        "[cli.md](cli.md), the file formats in [format.md](format.md).",
        "",
        "Modules: " + ", ".join(f"[`{m}`](#{m.replace('.', '')})" for m in MODULES),
        "",
    ]
    parts += [render_module(m) for m in MODULES]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    text = render()
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
