"""psu-torch: the Parallel Spiking Unit family (PSU, IPSU, RPSU) for PyTorch.

The names of SPEC §11 are here at the top level: ``psu``, ``ipsu``, ``rpsu`` (returning spikes, or
``PSUOutput``), ``init_state``/``step`` (pure online steps) and ``OnlineStepper`` (their stateful
wrapper), ``PSUOutput`` and ``StepOutput``. Modules:

* :mod:`psu_torch.functional` — ``psu``, ``ipsu``, ``rpsu`` (and ``call`` by variant name) on
  ``[T, ...]`` tensors (fused autograd);
* :mod:`psu_torch.nn` — modules ``PSU``, ``IPSU``, ``RPSU``, the folded-time helper ``TimeFolded``,
  ``set_batch_shard`` (a DDP rank draws as the whole batch) and ``load_published_state_dict`` for
  the published code's checkpoints;
* :mod:`psu_torch.online` — ``init_state``, ``step``, ``OnlineStepper``;
* :mod:`psu_torch.random` — the Threefry-2x32 stream of sampled resets in torch integer arithmetic.
"""

from psu_core.api import PSUOutput, StepOutput
from psu_torch import functional, online, random
from psu_torch.functional import ipsu, psu, rpsu
from psu_torch.nn import (
    IPSU,
    PSU,
    RPSU,
    TimeFolded,
    load_published_state_dict,
    merge_time,
    set_batch_shard,
    split_time,
)
from psu_torch.online import OnlineStepper, init_state, step

__all__ = [
    "functional",
    "online",
    "random",
    "psu",
    "ipsu",
    "rpsu",
    "init_state",
    "step",
    "OnlineStepper",
    "PSUOutput",
    "StepOutput",
    "PSU",
    "IPSU",
    "RPSU",
    "TimeFolded",
    "split_time",
    "merge_time",
    "set_batch_shard",
    "load_published_state_dict",
]
__version__ = "0.1.0"
