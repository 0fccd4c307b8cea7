"""A stateful Picsellia API emulator that the real picsellia SDK talks to over HTTP."""

from tests.emulator.emulator import Emulator, loopback_env
from tests.emulator.faults import FaultRule, Faults
from tests.emulator.seeding import SeededIds
from tests.emulator.state import RequestRecord, State

__all__ = ["Emulator", "FaultRule", "Faults", "RequestRecord", "SeededIds", "State", "loopback_env"]
