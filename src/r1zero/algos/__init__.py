"""RL math as pure functions on tensors, registered by name.

The trainer only looks functions up (``ADVANTAGES[name]``, ``LOSS_AGGREGATIONS[name]``);
it never branches on the algorithm.
"""

from r1zero.algos.advantages import ADVANTAGES, zero_std_fraction
from r1zero.algos.kl import kl_k3
from r1zero.algos.logprobs import selective_logprobs
from r1zero.algos.losses import LOSS_AGGREGATIONS, clipped_surrogate, policy_loss

__all__ = [
    "ADVANTAGES",
    "LOSS_AGGREGATIONS",
    "clipped_surrogate",
    "kl_k3",
    "policy_loss",
    "selective_logprobs",
    "zero_std_fraction",
]
