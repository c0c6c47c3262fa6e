"""Which of CrypTen's public tensor methods and ``crypten.nn`` names crypten_lite has.

Reads CrypTen's source from a git mirror (``git show <rev>:<path>``, nothing is imported
or executed) and checks each name with ``getattr`` on ``crypten_lite.MPCTensor`` and
``crypten_lite.nn``::

    .venv/bin/python benchmarks/crypten_names.py    # prints, writes docs/crypten_coverage.md
    .venv/bin/python benchmarks/crypten_names.py --repo /path/to/CrypTen/.git --out -

CrypTen's ``MPCTensor`` names are: the methods and properties of ``crypten/mpc/mpc.py``'s
``MPCTensor`` and of ``crypten/cryptensor.py``'s ``CrypTensor`` (public names and the
operator dunders), the passthrough lists ``UNARY_FUNCTIONS``/``BINARY_FUNCTIONS`` of
``mpc.py`` and every name in ``__all__`` of ``crypten/common/functions/*.py`` (CrypTen
attaches those to ``CrypTensor`` with ``setattr``). GPU/device and Python 2 names are listed
as not applicable and not counted. ``crypten.nn`` names: ``crypten/nn/__init__.py``
``__all__``.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import crypten_lite as cl

DEFAULT_REPO = "/work/.mirror/facebookresearch+CrypTen/repo"
ROOT = Path(__file__).resolve().parents[1]

#: CrypTen names with no meaning here (no GPU/torch devices, Python 2, torch internals).
NOT_APPLICABLE = {
    "cuda": "no GPU backend",
    "cpu": "no GPU backend (always on the CPU)",
    "is_cuda": "no GPU backend",
    "device": "no torch devices",
    "__nonzero__": "Python 2",
    "__div__": "Python 2",
    "__idiv__": "Python 2",
}
#: dunders that are object plumbing, not API
_PLUMBING = {
    "__init__",
    "__new__",
    "__getattribute__",
    "__torch_function__",
    "__init_subclass__",
    "__repr__",
    "__hash__",
}


@dataclass(frozen=True)
class Name:
    name: str
    source: str
    covered: bool
    note: str = ""


def _git(repo: str, *args: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise SystemExit("git is not installed")
    done = subprocess.run(  # noqa: S603 - git itself, fixed subcommands, no shell
        [git, "-C", repo, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git -C {repo} {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def git_show(repo: str, rev: str, path: str) -> str:
    return _git(repo, "show", f"{rev}:{path}")


def git_ls(repo: str, rev: str, path: str) -> list[str]:
    return [line for line in _git(repo, "ls-tree", "--name-only", f"{rev}:{path}").splitlines()]


def _public(name: str) -> bool:
    return not name.startswith("_") or (
        name.startswith("__") and name.endswith("__") and name not in _PLUMBING
    )


def class_methods(source: str, class_name: str) -> list[str]:
    """Names of the functions (methods, properties, static methods) of ``class_name``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return [
                item.name
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and _public(item.name)
            ]
    raise SystemExit(f"class {class_name} not found")


def module_list(source: str, variable: str) -> list[str]:
    """The string list assigned to ``variable`` at module level (``__all__`` etc.)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == variable for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return [str(v) for v in value]
    return []


def crypten_tensor_names(repo: str, rev: str) -> dict[str, str]:
    """name -> where CrypTen defines it (first source wins)."""
    names: dict[str, str] = {}

    def add(items: list[str], where: str) -> None:
        for item in items:
            names.setdefault(item, where)

    mpc = git_show(repo, rev, "crypten/mpc/mpc.py")
    add(class_methods(mpc, "MPCTensor"), "mpc/mpc.py")
    add(module_list(mpc, "UNARY_FUNCTIONS") + module_list(mpc, "BINARY_FUNCTIONS"), "mpc/mpc.py")
    for file in sorted(git_ls(repo, rev, "crypten/common/functions")):
        if file.endswith(".py") and file != "__init__.py":
            text = git_show(repo, rev, f"crypten/common/functions/{file}")
            add(module_list(text, "__all__"), f"common/functions/{file}")
    add(class_methods(git_show(repo, rev, "crypten/cryptensor.py"), "CrypTensor"), "cryptensor.py")
    return names


def check(repo: str, rev: str) -> tuple[list[Name], list[Name]]:
    tensor = [
        Name(name, where, hasattr(cl.MPCTensor, name), NOT_APPLICABLE.get(name, ""))
        for name, where in sorted(crypten_tensor_names(repo, rev).items())
    ]
    nn_names = module_list(git_show(repo, rev, "crypten/nn/__init__.py"), "__all__")
    nn = [Name(name, "nn/__init__.py", hasattr(cl.nn, name)) for name in sorted(set(nn_names))]
    return tensor, nn


def _counts(names: list[Name]) -> tuple[int, int]:
    counted = [n for n in names if not n.note]
    return sum(n.covered for n in counted), len(counted)


def render(tensor: list[Name], nn: list[Name], rev: str, commit: str) -> str:
    t_cov, t_all = _counts(tensor)
    n_cov, n_all = _counts(nn)
    lines = [
        "# CrypTen API coverage",
        "",
        f"Generated by `benchmarks/crypten_names.py` from CrypTen `{rev}` (commit "
        f"`{commit[:12]}`): each CrypTen name checked with `getattr` on "
        "`crypten_lite.MPCTensor` / `crypten_lite.nn`. A name being present says nothing about "
        "identical signatures or semantics; see `docs/porting_from_crypten.md` for the "
        "intended differences. Not-applicable names (GPU, Python 2) are not counted.",
        "",
        f"- `MPCTensor` methods: **{t_cov} / {t_all}** covered",
        f"- `crypten.nn` names: **{n_cov} / {n_all}** covered",
        "",
    ]
    for title, names in (("MPCTensor", tensor), ("crypten.nn", nn)):
        missing = [n.name for n in names if not n.covered and not n.note]
        lines += [f"## {title}", "", f"Missing ({len(missing)}): "
                  + (", ".join(f"`{m}`" for m in missing) or "none"), "",
                  "| name | CrypTen source | crypten_lite |", "|---|---|---|"]
        for n in names:
            status = f"n/a ({n.note})" if n.note else ("yes" if n.covered else "**missing**")
            lines.append(f"| `{n.name}` | {n.source} | {status} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repo", default=os.environ.get("CRYPTEN_REPO", DEFAULT_REPO),
                        help="CrypTen git directory (bare mirror or checkout)")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--out", default=str(ROOT / "docs" / "crypten_coverage.md"),
                        help="markdown output file, '-' for none")
    args = parser.parse_args(argv)
    commit = _git(args.repo, "rev-parse", args.rev).strip()
    tensor, nn = check(args.repo, args.rev)
    width = max(len(n.name) for n in tensor + nn)
    for title, names in (("MPCTensor", tensor), ("crypten.nn", nn)):
        print(f"{title}:")
        for n in names:
            status = f"n/a ({n.note})" if n.note else ("covered" if n.covered else "MISSING")
            print(f"  {n.name:<{width}}  {n.source:<32} {status}")
    t_cov, t_all = _counts(tensor)
    n_cov, n_all = _counts(nn)
    print(f"MPCTensor methods covered: {t_cov}/{t_all}; crypten.nn names covered: {n_cov}/{n_all}")
    if args.out != "-":
        Path(args.out).write_text(render(tensor, nn, args.rev, commit) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
