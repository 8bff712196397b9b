"""psu-torch: the Parallel Spiking Unit family (PSU, IPSU, RPSU) for PyTorch.

* :mod:`psu_torch.functional` — ``psu``, ``ipsu``, ``rpsu`` on ``[T, ...]`` tensors (fused autograd);
* :mod:`psu_torch.nn` — modules ``PSU``, ``IPSU``, ``RPSU`` and the folded-time helper ``TimeFolded``;
* :mod:`psu_torch.online` — ``OnlineStepper``, the step-by-step form with explicit state;
* :mod:`psu_torch.random` — the Threefry-2x32 stream of sampled resets in torch integer arithmetic.
"""

from psu_torch import functional, online, random
from psu_torch.functional import ipsu, psu, rpsu
from psu_torch.nn import IPSU, PSU, RPSU, TimeFolded, merge_time, split_time
from psu_torch.online import OnlineStepper

__all__ = [
    "functional", "online", "random", "psu", "ipsu", "rpsu",
    "PSU", "IPSU", "RPSU", "TimeFolded", "split_time", "merge_time", "OnlineStepper",
]
__version__ = "0.1.0"
