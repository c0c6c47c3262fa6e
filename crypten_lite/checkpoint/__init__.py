"""Checkpoints of secret shares, encrypted models and public state: one file per party.

``save(obj, path)`` on every party writes that party's file; ``load(path)`` in the same or a
later job (same number of parties) gives every party back its own shares, so revealing gives
the saved values. Party ``r``'s file is ``path`` with ``{rank}`` replaced by ``r`` when
``path`` contains ``{rank}``, else ``f"{path}.party{r}"``::

    cl.checkpoint.save(model, "ckpt/model-{rank}.clck", job_id="train-7")   # job 1
    state = cl.checkpoint.load("ckpt/model-{rank}.clck")                    # job 2

Saveable objects: ``MPCTensor`` (arithmetic or binary, any precision, names kept), numpy
arrays and scalars (bool/int/float/complex), ``None``/``bool``/``int``/``float``/``str``,
``dict`` (str keys), ``OrderedDict``, ``list``, ``tuple``, an ``nn.Module`` (saved as its
``state_dict()``, loaded as that OrderedDict) and autograd variables (saved as ``.data``).
No pickle is involved; the file format is documented in :mod:`crypten_lite.checkpoint.format`.
Every failure raises :class:`CheckpointError` on every party alike, naming the parties at
fault (unsupported objects raise ``TypeError`` naming the key path, before any message).

``save_from_party``/``load_from_party`` (CrypTen's access-control helpers) are the other
kind of file: ONE party's PLAINTEXT numpy file (``.npy``/``.npz``, no pickle), secret-shared
on load and revealed to that party only on save; see :mod:`crypten_lite.checkpoint.party_files`.
"""

from __future__ import annotations

from crypten_lite.checkpoint.api import load, party_path, save
from crypten_lite.checkpoint.format import FORMAT_VERSION, CheckpointError
from crypten_lite.checkpoint.party_files import load_from_party, save_from_party

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "load",
    "load_from_party",
    "party_path",
    "save",
    "save_from_party",
]
