"""Drive single-server secure aggregation rounds in process, stage by stage, for the SecAgg
tests: clients talk to the service through ``DirectServerLink`` (recording what they send,
optionally holding an upload back so a test can alter it), the round state can be
snapshotted, and the expected aggregate is computed from the plaintext updates."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import numpy as np

from crypten_lite.client.links import DirectServerLink
from crypten_lite.client.secagg_client import SecAggClient
from crypten_lite.edge.encode import decode_aggregate, encode_update
from crypten_lite.edge.messages import QuantSpec
from crypten_lite.edge.secagg_messages import (
    KeyAdvert,
    MaskedUpload,
    SecAggStage,
    SecAggState,
    ShareKeysUpload,
    UnmaskUpload,
)
from crypten_lite.edge.secagg_params import Neighbours, SecAggParams
from crypten_lite.fl.secagg import SecAggConfig, SecAggRound, SecAggRoundResult, SecAggService

JOB = "secagg-test"


def expected_aggregate(
    updates: Iterable[np.ndarray], quant: QuantSpec, ring_bits: int
) -> np.ndarray:
    """decode(Σ encode_update(x)) mod 2^ring_bits: what the server must output."""
    total: np.ndarray | None = None
    for x in updates:
        ring = encode_update(x, quant, ring_bits).astype(np.uint64)
        total = ring if total is None else total + ring  # uint64 wraps mod 2^64
    assert total is not None
    return decode_aggregate(total, quant, ring_bits)


class RecordingLink(DirectServerLink):
    """``DirectServerLink`` that records every upload it delivered (``sent``) and, while
    ``hold`` is set, keeps uploads back (``held``) instead of delivering them."""

    def __init__(self, service: SecAggService, client_id: str) -> None:
        super().__init__(service, client_id)
        self.sent: list[object] = []
        self.held: list[object] = []
        self.hold = False

    def _deliver(self, method: str, upload: object) -> int:
        if self.hold:
            self.held.append(upload)
            return 0
        size = getattr(super(), method)(upload)
        self.sent.append(upload)
        return int(size)

    def advertise(self, advert: KeyAdvert) -> int:
        return self._deliver("advertise", advert)

    def share_keys(self, upload: ShareKeysUpload) -> int:
        return self._deliver("share_keys", upload)

    def submit_masked(self, upload: MaskedUpload) -> int:
        return self._deliver("submit_masked", upload)

    def unmask(self, upload: UnmaskUpload) -> int:
        return self._deliver("unmask", upload)

    def take(self) -> object:
        """The one held upload (and stop holding)."""
        assert len(self.held) == 1, self.held
        self.hold = False
        return self.held.pop()


class Harness:
    """One service with round 1 open and ``n`` clients ``client-0 .. client-<n-1>``.

    Stage methods make every client still in (not :meth:`drop`-ped, not in ``skip``) answer
    the stage, then close it (``close=False`` leaves it open); they return the stage the
    round is at afterwards."""

    def __init__(
        self,
        n: int,
        m: int = 32,
        *,
        ring_bits: int = 32,
        quant: QuantSpec | None = None,
        neighbours: Neighbours = "all",
        threshold: int | float = 0.6,
        min_clients: int = 3,
        out_of_range: str = "clip",
        updates: dict[str, np.ndarray] | None = None,
        seed: int = 0,
        model: np.ndarray | None = None,
        allowed_clients: tuple[str, ...] | None = None,
    ) -> None:
        self.quant = quant or QuantSpec("int16", 1.0)
        self.config = SecAggConfig(
            job_id=JOB,
            num_elements=m,
            ring_bits=ring_bits,
            quant=self.quant,
            params=SecAggParams(neighbours, threshold),
            min_clients=min_clients,
            expected_clients=max(n, min_clients),
            collect_timeout_s=2.0,
            first_round_timeout_s=2.0,
            out_of_range=out_of_range,  # type: ignore[arg-type]
            allowed_clients=allowed_clients,
        )
        self.service = SecAggService(self.config)
        self.m, self.ring_bits = m, ring_bits
        self.ids = [f"client-{i}" for i in range(n)]
        self.links = {cid: RecordingLink(self.service, cid) for cid in self.ids}
        self.clients = {cid: SecAggClient(self.links[cid], poll_s=0.01) for cid in self.ids}
        rng = np.random.default_rng(seed)
        clip = self.quant.clip
        # a little beyond the clip, so the encoding's clipping is exercised too
        self.updates = {cid: rng.uniform(-1.2 * clip, 1.2 * clip, m) for cid in self.ids}
        if updates:
            self.updates.update(updates)
        self.gone: set[str] = set()
        self.round = self.service.open_round(np.zeros(m, np.float32) if model is None else model)

    # -- views -------------------------------------------------------------------------------
    @property
    def rnd(self) -> SecAggRound:
        current = self.service.current
        assert current is not None
        return current

    def index(self, cid: str) -> int:
        return self.rnd.by_id[cid].index

    def id_of(self, index: int) -> str:
        return self.rnd.by_index[index].client_id

    def state(self, cid: str) -> SecAggState:
        return self.links[cid].secagg_state(self.round)

    def active(self, skip: Iterable[str] = ()) -> list[str]:
        """The clients still in (not dropped), less ``skip``."""
        out = set(self.gone) | set(skip)
        return [cid for cid in self.ids if cid not in out]

    def drop(self, *cids: str) -> None:
        self.gone.update(cids)

    def encoded(self, cid: str) -> np.ndarray:
        return encode_update(self.updates[cid], self.quant, self.ring_bits)

    def expected(self, cids: Iterable[str]) -> np.ndarray:
        """decode(Σ encode_update(x_u)) over ``cids``, mod 2^ring_bits."""
        return expected_aggregate([self.updates[c] for c in cids], self.quant, self.ring_bits)

    # -- stages ------------------------------------------------------------------------------
    def close(self) -> SecAggStage:
        return self.service.close_stage()

    def advertise(self, close: bool = True, skip: Iterable[str] = ()) -> SecAggStage:
        info = self.service.round_info(self.ids[0])
        for cid in self.active(skip):
            self.clients[cid].advertise(info)
        return self.close() if close else self.rnd.stage

    def share_keys(self, close: bool = True, skip: Iterable[str] = ()) -> SecAggStage:
        for cid in self.active(skip):
            self.clients[cid].share_keys(self.state(cid))
        return self.close() if close else self.rnd.stage

    def masked(self, close: bool = True, skip: Iterable[str] = ()) -> SecAggStage:
        for cid in self.active(skip):
            self.clients[cid].masked_input(self.state(cid), self.updates[cid])
        return self.close() if close else self.rnd.stage

    def unmask(self, close: bool = True, skip: Iterable[str] = ()) -> SecAggStage:
        for cid in self.active(skip):
            self.clients[cid].unmask(self.state(cid))
        return self.close() if close else self.rnd.stage

    def finish(self) -> SecAggRoundResult:
        return self.service.finish_round()

    def run(self) -> SecAggRoundResult:
        """All four stages for the active clients, then the aggregate."""
        assert self.advertise() is SecAggStage.SHARE_KEYS
        assert self.share_keys() is SecAggStage.MASKED_INPUT
        assert self.masked() is SecAggStage.UNMASK
        self.unmask()
        return self.finish()


def snapshot(rnd: SecAggRound) -> dict[str, object]:
    """Everything a refused upload must leave unchanged (deep copies)."""
    people = {
        cid: {
            name: copy.deepcopy(getattr(p, name))
            for name in (
                "index", "neighbours", "commitment", "outgoing", "shared", "masked",
                "complaints", "seed_shares", "key_shares", "unmasked", "cipher_public",
                "mask_public",
            )
        }
        for cid, p in rnd.by_id.items()
    }
    return {
        "stage": rnd.stage,
        "failure": rnd.failure,
        "threshold": rnd.threshold,
        "by_index": sorted(rnd.by_index),
        "people": people,
        "keys_seen": set(rnd._keys_seen),
        "running_sum": rnd.running_sum.copy(),
        "pruned": rnd.pruned,
        "unmask_closed": rnd.unmask_closed,
    }


def same_snapshot(a: dict[str, object], b: dict[str, object]) -> bool:
    sum_a, sum_b = a["running_sum"], b["running_sum"]
    rest_a = {k: v for k, v in a.items() if k != "running_sum"}
    rest_b = {k: v for k, v in b.items() if k != "running_sum"}
    return rest_a == rest_b and np.array_equal(sum_a, sum_b)  # type: ignore[arg-type]
