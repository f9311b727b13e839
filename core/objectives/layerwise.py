"""Layer-wise feature alignment with a discrimination term: CAFE.

Wang et al., "CAFE: Learning to Condense Dataset by Aligning Features", CVPR 2022; survey
section 2.4, eq. (12). For a network psi trained on the synthetic set S, and every layer l,

    L_f = sum_l w_l sum_c || mean psi_l(A(T_c)) - mean psi_l(A(S_c)) ||^2

pulls the per-class mean feature map of the synthetic images towards the real one at every
scale, and the discrimination term

    L_d = - sum_c sum_{x in T_c} log softmax_k( <psi(x), mean psi(S_k)> )_c

classifies each real example by its inner product with the synthetic class centres of the
final embedding, so the synthetic centres keep the real classes apart. The loss is
L_f + beta L_d (reference code: beta 0.01, cross-entropy summed over real examples).

CAFE's reference code weights the layers of a depth-3 ConvNet 0.1, 0.1, 1 (each block's
activation) and matches the final pooled map twice, once as a map and once flattened as the
embedding, so the embedding's weight is 2 here. Its "dynamic bi-level optimisation" decides
the loop lengths from the network's accuracy on real batches: after every matching step the
accuracy joins a window of `window` values and a fresh network is drawn once their range is
below `outer_tolerance` (lambda_1, 0.04); between matching steps the network trains on the
synthetic set, epoch by epoch, until its window of accuracies spreads by more than
`inner_tolerance` (lambda_2, 0.03). Both loops are capped here (`max_steps_per_net`,
`max_inner_epochs`), which the reference does not do, so a run always ends. The reference
accumulates the watched accuracy across steps (`acc += ...; acc /= K` without a reset); we
watch the plain accuracy of each fresh real batch.

One call of `loss` is one matching step (one update of the images by the outer loop), as in
`datadistill.objectives.gradient`. Like DM's `MeanEmbedding`, all classes share one forward pass per
side: the ConvNet's instance norm keeps every example independent, so this is exact.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from datadistill.augment import DSA, check_siamese
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.objectives.base import Objective, restored_network
from datadistill.objectives.distribution import fresh_network
from datadistill.params.base import Parameterisation
from datadistill.train import loss_fn


def discrimination_loss(
    real_embeddings: torch.Tensor, real_labels: torch.Tensor, syn_centres: torch.Tensor
) -> torch.Tensor:
    """CAFE's L_d: cross-entropy, summed over real examples, of logits <e_i, centre_k>."""
    return F.cross_entropy(real_embeddings @ syn_centres.t(), real_labels, reduction="sum")


def feature_alignment(
    real_means: Sequence[torch.Tensor],
    syn_means: Sequence[torch.Tensor],
    weights: Sequence[float],
) -> torch.Tensor:
    """CAFE's L_f: weighted sum over layers of the squared distance of per-class means."""
    total = syn_means[0].new_zeros(())
    for w, r, s in zip(weights, real_means, syn_means, strict=True):
        if w:
            total = total + w * ((r - s) ** 2).sum()
    return total


class LayerwiseAlignment(Objective):
    """CAFE's loss and dynamic bi-level loop (see the module docstring).

    Args:
        arch: network trained on the synthetic set and aligned through; a fresh one is drawn
            whenever the outer watcher says so.
        batch_real: real images per class per matching step (CAFE: 256).
        dsa_strategy: DSA string for the siamese augmentation of the matching batches and the
            network's training batches, or None.
        layer_weights: one weight per tensor of `net.layer_features` (ConvNet: depth + 1).
        discrimination_weight: beta, the weight of L_d (CAFE: 0.01).
        lr_net, batch_train: the network's plain SGD on the synthetic set (CAFE: 0.01, 256).
        window, outer_tolerance, inner_tolerance: the watchers (CAFE: 10, 0.04, 0.03).
        watch_batch: real images per class behind each watched accuracy (CAFE: 128).
        max_steps_per_net, max_inner_epochs: caps on the two loops (ours).
        total_steps, decay_at: the image learning rate halves at these fractions of
            `total_steps` (CAFE: 0.6, 0.8, 0.9 of its run), applied as a loss scale, which
            for SGD is a learning-rate factor; no decay when `total_steps` is None.
    """

    name = "layerwise_alignment"
    cpu_chunk = 512

    def __init__(
        self,
        *,
        arch: str = "convnet",
        batch_real: int = 256,
        dsa_strategy: str | None,
        layer_weights: Sequence[float] = (0.1, 0.1, 1.0, 2.0),
        discrimination_weight: float = 0.01,
        lr_net: float = 0.01,
        batch_train: int = 256,
        window: int = 10,
        outer_tolerance: float = 0.04,
        inner_tolerance: float = 0.03,
        watch_batch: int = 128,
        max_steps_per_net: int = 100,
        max_inner_epochs: int = 50,
        total_steps: int | None = None,
        decay_at: Sequence[float] = (0.6, 0.8, 0.9),
        net_config: dict | None = None,
        siamese: str = "batch",
    ):
        if "bn" in arch.split("_"):
            raise DistillError(
                f"CAFE batches all classes through '{arch}', whose batch norm mixes them; "
                "use an instance-norm network (--set arch=convnet)"
            )
        if window < 2 or max_steps_per_net < 1 or max_inner_epochs < 1:
            raise DistillError(
                "CAFE needs window >= 2, max_steps_per_net >= 1 and max_inner_epochs >= 1; "
                f"got {window}, {max_steps_per_net}, {max_inner_epochs}"
            )
        self.arch = arch
        self.batch_real = batch_real
        self.aug = DSA(dsa_strategy) if dsa_strategy else None
        self.siamese = check_siamese(siamese)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.discrimination_weight = discrimination_weight
        self.lr_net = lr_net
        self.batch_train = batch_train
        self.window = window
        self.outer_tolerance = outer_tolerance
        self.inner_tolerance = inner_tolerance
        self.watch_batch = watch_batch
        self.max_steps_per_net = max_steps_per_net
        self.max_inner_epochs = max_inner_epochs
        self.total_steps = total_steps
        self.decay_at = tuple(decay_at)
        self.net_config = net_config or {}
        self._net: torch.nn.Module | None = None
        self._watch: list[float] = []  # real accuracy after each matching step of this net
        self._steps = 0  # matching steps taken with the current network
        self._nets = 0
        self._renew = False  # the outer watcher asked for a fresh network
        self._pending: dict | None = None

    # --- one matching step per call ---------------------------------------------------------

    def loss(self, param: Parameterisation, data: Dataset, generator, step):
        x_syn, y_syn = param.sample()
        device = x_syn.device
        if self._pending is not None:
            self._restore(data, device)
        if self._net is None or self._renew:
            self._net = fresh_network(self.arch, data, generator, device, **self.net_config)
            self._net.requires_grad_(False)
            self._watch, self._steps, self._renew = [], 0, False
            self._nets += 1
        else:  # the images moved: train the network on them first, as CAFE's inner loop
            self._train_inner(x_syn.detach(), y_syn.detach(), data, generator)
        loss = self._match(self._net, x_syn, param.images_per_class, data, generator)
        self._watch_outer(self._real_accuracy(self._net, data, generator))
        return loss * self._decay(step)

    def _match(self, net, x_syn, m: int, data: Dataset, generator) -> torch.Tensor:
        k, n = data.spec.num_classes, self.batch_real
        x_real = data.sample_per_class(n, generator).to(x_syn.device)
        if self.aug is not None:  # one siamese draw per class, as CAFE's (and DM's) code
            draws = [self.aug.draw(n, generator, self.siamese == "batch") for _ in range(k)]
            x_real = self.aug.apply_groups(x_real, draws)
            x_syn = self.aug.apply_groups(x_syn, draws, index=torch.arange(m).remainder(n))
        y_real = torch.arange(k, device=x_real.device).repeat_interleave(n)
        real_means, real_emb = self._real_side(net, x_real, y_real, k, n)
        syn = net.layer_features(x_syn)
        self._check_weights(len(syn))
        syn_means = [f.view(k, m, *f.shape[1:]).mean(1) for f in syn]
        loss = feature_alignment(real_means, syn_means, self.layer_weights)
        if self.discrimination_weight:
            disc = discrimination_loss(real_emb, y_real, syn_means[-1])
            loss = loss + self.discrimination_weight * disc
        return loss

    @torch.no_grad()
    def _real_side(self, net, x_real, y_real, k: int, n: int):
        """Per-class mean of every layer's features, and every real embedding (for L_d)."""
        chunk = len(x_real) if x_real.device.type == "cuda" else self.cpu_chunk
        sums, embs = None, []
        for xc, yc in zip(x_real.split(chunk), y_real.split(chunk), strict=True):
            feats = net.layer_features(xc)
            if sums is None:
                sums = [f.new_zeros(k, *f.shape[1:]) for f in feats]
            for acc, f in zip(sums, feats, strict=True):
                acc.index_add_(0, yc, f)
            embs.append(feats[-1])
        return [s / n for s in sums], torch.cat(embs)

    def _check_weights(self, layers: int) -> None:
        if len(self.layer_weights) != layers:
            raise DistillError(
                f"CAFE has {len(self.layer_weights)} layer weights but '{self.arch}' gives "
                f"{layers} feature maps; pass --set layer_weights=W1,...,W{layers}"
            )

    def _decay(self, step: int) -> float:
        if not self.total_steps:
            return 1.0
        return 0.5 ** sum(step >= f * self.total_steps for f in self.decay_at)

    # --- the dynamic bi-level loop ---------------------------------------------------------

    @torch.no_grad()
    def _real_accuracy(self, net, data: Dataset, generator) -> float:
        """Accuracy on `watch_batch` fresh, unaugmented real images of every class."""
        x = data.sample_per_class(self.watch_batch, generator)
        x = x.to(next(net.parameters()).device)
        y = torch.arange(data.spec.num_classes).repeat_interleave(self.watch_batch)
        chunk = len(x) if x.device.type == "cuda" else self.cpu_chunk
        pred = torch.cat([net(c).argmax(1).cpu() for c in x.split(chunk)])
        return float((pred == y).float().mean())

    def _watch_outer(self, acc: float) -> None:
        """CAFE's outer rule: a new network once `window` accuracies lie within lambda_1."""
        self._steps += 1
        self._watch.append(acc)
        if len(self._watch) == self.window:
            if max(self._watch) - min(self._watch) < self.outer_tolerance:
                self._renew = True
            else:
                self._watch.pop(0)
        if self._steps >= self.max_steps_per_net:
            self._renew = True

    def _train_inner(self, x_syn, y_syn, data: Dataset, generator) -> int:
        """CAFE's inner rule: epochs on S until `window` accuracies spread beyond lambda_2.

        Returns the number of epochs trained.
        """
        net = self._net
        net.requires_grad_(True)
        opt = torch.optim.SGD(net.parameters(), lr=self.lr_net)
        watch: list[float] = []
        epochs = 0
        while epochs < self.max_inner_epochs:
            epochs += 1
            order = torch.randperm(len(x_syn), generator=generator).to(x_syn.device)
            for rows in order.split(self.batch_train):
                xb = x_syn[rows]
                if self.aug is not None:
                    xb = self.aug(xb, generator)
                opt.zero_grad(set_to_none=True)
                loss_fn(net(xb), y_syn[rows]).backward()
                opt.step()
            watch.append(self._real_accuracy(net, data, generator))
            if len(watch) == self.window:
                if max(watch) - min(watch) > self.inner_tolerance:
                    break
                watch.pop(0)
        opt.zero_grad(set_to_none=True)
        net.requires_grad_(False)
        return epochs

    # --- inner state ------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The network being trained and the watchers: a resumed run is identical."""
        if self._pending is not None:
            return copy.deepcopy(self._pending)
        return {
            "net": None if self._net is None else copy.deepcopy(self._net.state_dict()),
            "watch": list(self._watch),
            "steps": self._steps,
            "nets": self._nets,
            "renew": self._renew,
        }

    def load_state_dict(self, state: dict) -> None:
        # the network is rebuilt at the next call, when the data spec and device are known
        self._pending = copy.deepcopy(state)
        self._watch, self._steps = list(state["watch"]), state["steps"]
        self._nets, self._renew = state["nets"], state["renew"]
        self._net = None

    def _restore(self, data: Dataset, device) -> None:
        state, self._pending = self._pending, None
        if state["net"] is None:
            return
        net = restored_network(self.arch, data, self.net_config, state["net"], device)
        self._net = net.requires_grad_(False)
