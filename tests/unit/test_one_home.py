"""One home per concept (issue 10): one DER reader/writer, one keys module, one name per class.

Read from the source tree itself (``ast``), so a second DER length decoder, a second
``KeyAlgorithm``, a second serial generator or back-date, or a second key-encryption scheme
fails here the day it is written.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "certwarden"
# Duplicates this test allows, each with its reason (keep the list short).
KNOWN_DUPLICATE_CLASSES = {
    # acme.server's route record vs discovery's scan target: acme/server.py is being split
    # into request context and dispatch table by the ACME work of issue 10.
    "Endpoint",
}


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(SRC)): ast.parse(p.read_text(), str(p)) for p in SRC.rglob("*.py")}


def _functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _masks_7f(fn: ast.AST) -> bool:
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitAnd)
               and isinstance(n.right, ast.Constant) and n.right.value == 0x7F
               for n in ast.walk(fn))


def _calls(fn: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and (
        (isinstance(n.func, ast.Attribute) and n.func.attr == name)
        or (isinstance(n.func, ast.Name) and n.func.id == name)) for n in ast.walk(fn))


def test_one_der_length_decoder() -> None:
    # A DER long-form length: mask the count of length octets (& 0x7F), then read them
    # (int.from_bytes). Exactly one function in the package does both.
    decoders = sorted(f"{mod}:{fn.name}" for mod, tree in _modules().items()
                      for fn in _functions(tree) if _masks_7f(fn) and _calls(fn, "from_bytes"))
    assert decoders == ["x509/der.py:tlv"]


def test_der_helpers_are_defined_only_in_x509_der() -> None:
    tlv_like = sorted(f"{mod}:{fn.name}" for mod, tree in _modules().items()
                      for fn in _functions(tree)
                      if "tlv" in fn.name.lower() or "der_len" in fn.name.lower())
    assert tlv_like == ["x509/der.py:tlv", "x509/der.py:tlv_within"]
    assert not (SRC / "ca" / "der.py").exists()


def test_one_key_algorithm_enum_and_one_keys_module() -> None:
    mods = _modules()
    classes = [mod for mod, tree in mods.items() for n in ast.walk(tree)
               if isinstance(n, ast.ClassDef) and n.name == "KeyAlgorithm"]
    assert classes == ["x509/keys.py"]
    keys_jobs = {"generate_private_key", "generate_key", "hash_for", "_hash_for",
                 "random_serial", "_serial", "encrypt_pkcs8", "key_pem"}
    defined = sorted(f"{mod}:{fn.name}" for mod, tree in mods.items()
                     for fn in _functions(tree) if fn.name in keys_jobs
                     and not isinstance(getattr(fn, "parent", None), ast.ClassDef))
    # Forged/CertifiedKey.key_pem are methods that delegate to x509.keys.key_pem.
    assert [d for d in defined if not d.startswith("x509/keys.py:")] == [
        "cli/demo_forge.py:key_pem", "x509/create.py:key_pem"]
    backdates = sorted(mod for mod, tree in mods.items() for n in ast.walk(tree)
                       if isinstance(n, ast.Assign | ast.AnnAssign)
                       and any(isinstance(t, ast.Name) and t.id == "BACKDATE"
                               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])))
    assert backdates == ["x509/keys.py"]


def test_one_key_encryption_scheme() -> None:
    # Private keys at rest: scrypt PKCS#8 (x509.keys.encrypt_pkcs8), never a second scheme.
    for mod, tree in _modules().items():
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        # A PKCS#12 truststore holds no key; a keystore's key uses x509.keys.pkcs12_encryption.
        if mod not in ("lifecycle/trust.py", "x509/keys.py"):
            assert "BestAvailableEncryption" not in names, mod
        if mod != "x509/keys.py":
            assert "Scrypt" not in names, mod
            assert not any(_calls(fn, "randbits") for fn in _functions(tree)), mod


def test_each_class_name_means_one_thing() -> None:
    where: defaultdict[str, list[str]] = defaultdict(list)
    for mod, tree in _modules().items():
        for n in ast.walk(tree):
            if isinstance(n, ast.ClassDef):
                where[n.name].append(mod)
    twice = {name: mods for name, mods in where.items()
             if len(mods) > 1 and name not in KNOWN_DUPLICATE_CLASSES}
    assert twice == {}
