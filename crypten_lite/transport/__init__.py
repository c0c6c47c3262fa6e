"""L1: moving arrays between ranks. Knows nothing about shares."""

from __future__ import annotations

from crypten_lite.transport.base import CommSnapshot, CommStats, Communicator
from crypten_lite.transport.inprocess import InProcessCommunicator, InProcessHub

__all__ = ["CommSnapshot", "CommStats", "Communicator", "InProcessCommunicator", "InProcessHub"]
