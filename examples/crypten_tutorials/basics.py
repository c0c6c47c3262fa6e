"""CrypTen Tutorial 1 ("Basics of CrypTen Tensors") ported to crypten_lite.

Run it on 2 parties (separate processes, gRPC with mutual TLS)::

    crypten-lite-launch -n 2 examples/crypten_tutorials/basics.py

or in-process (threads)::

    from crypten_lite.runtime.testing import run_parties
    run_parties(lambda session: basics.main(), world_size=2)

Differences from the CrypTen notebook: numpy arrays instead of torch tensors, no
``crypten.init()`` (the launcher or ``run_parties`` gives every party its session), and
``crypten.print`` becomes a ``print`` on party 0. ``main()`` returns the revealed values
(every party gets them) so that tests can compare them with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import crypten_lite as cl


def main(argv: list[str] | None = None) -> dict[str, Any]:
    del argv  # no options
    rank = cl.current_session().rank
    results: dict[str, Any] = {}

    def show(label: str, key: str, tensor: cl.MPCTensor) -> None:
        value = tensor.get_plain_text()  # revealed to every party (dst=k: to party k only)
        results[key] = value
        if rank == 0:  # CrypTen's crypten.print: party 0 prints
            print(f"{label:<28} {np.array2string(np.round(value, 4), separator=', ')}")

    # -- encrypt and decrypt --------------------------------------------------------------
    x = np.array([1.0, 2.0, 3.0])
    x_enc = cl.cryptensor(x)  # party 0 (src=0 by default) shares x
    show("decrypted x:", "x", x_enc)
    y_enc = cl.cryptensor([4.0, 5.0, 6.0])  # python lists work too
    show("decrypted y:", "y", y_enc)

    # -- arithmetic: public (numpy/number) and private (MPCTensor) operands ------------------
    y = 2.0
    y_enc = cl.cryptensor(2.0)
    for name, op in [
        ("addition", lambda a, b: a + b),
        ("subtraction", lambda a, b: a - b),
        ("multiplication", lambda a, b: a * b),
        ("division", lambda a, b: a / b),
    ]:
        show(f"public  {name}:", f"public_{name}", op(x_enc, y))
        show(f"private {name}:", f"private_{name}", op(x_enc, y_enc))

    # -- comparisons: the result is a secret-shared 0/1 tensor --------------------------------
    x_enc = cl.cryptensor([1.0, 2.0, 3.0, 4.0, 5.0])
    y_plain = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    y_enc = cl.cryptensor(y_plain)
    for name, op in [
        ("x < y", lambda a, b: a < b),
        ("x <= y", lambda a, b: a <= b),
        ("x > y", lambda a, b: a > b),
        ("x >= y", lambda a, b: a >= b),
        ("x == y", lambda a, b: a == b),  # a shared tensor, not a Python bool
        ("x != y", lambda a, b: a != b),
    ]:
        show(f"public  ({name}):", f"public {name}", op(x_enc, y_plain))
        show(f"private ({name}):", f"private {name}", op(x_enc, y_enc))

    # -- nonlinear functions (approximations with stated error bounds) -----------------------
    z = np.array([0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 2.5])
    z_enc = cl.cryptensor(z)
    for name in ["reciprocal", "log", "exp", "sqrt", "tanh"]:
        show(f"private {name}:", name, getattr(z_enc, name)())

    # -- control flow: a secret cannot drive an `if` ---------------------------------------
    a_enc, b_enc = cl.cryptensor(2.0), cl.cryptensor(4.0)
    a, b = 2, 3
    try:
        z = a if a_enc < b_enc else b
    except TypeError as error:  # CrypTen raises RuntimeError here
        results["control_flow_error"] = str(error)
        if rank == 0:
            print(f'TypeError caught: "{error}"')
    use_a = a_enc < b_enc  # instead: a mathematical expression
    show("z:", "select", use_a * a + (1 - use_a) * b)
    show("z (where):", "where", cl.where(a_enc < b_enc, a, b))  # or the `where` function

    # -- indexing, concatenation, stacking, reshaping ----------------------------------------
    x_enc = cl.cryptensor([1.0, 2.0, 3.0])
    y_enc = cl.cryptensor([4.0, 5.0, 6.0])
    show("indexing x[:-1]:", "indexing", x_enc[:-1])
    show("concatenation:", "cat", cl.cat([x_enc, y_enc]))
    stacked = cl.stack([x_enc, y_enc])
    show("stacking:", "stack", stacked)
    show("reshaping:", "reshape", stacked.reshape(-1, 6))
    return results


if __name__ == "__main__":
    main()
