"""Graph networks on a normalised adjacency: GCN, SGC and GraphSAGE for nodes, a dense GCN
with mean pooling for whole graphs.

Every network takes a *propagation matrix* P (the adjacency normalised the way the network
needs, from `net.propagation(adj)`), dense or sparse, so one network runs on the real graph
(sparse, N nodes) and on a learnt synthetic graph (dense, differentiable in A') alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datadistill.errors import DistillError


def gcn_norm(adj: torch.Tensor) -> torch.Tensor:
    """Kipf & Welling's D^-1/2 (A + I) D^-1/2, for a sparse [N, N] or dense [..., n, n] A."""
    if adj.is_sparse:
        n = adj.shape[0]
        adj = adj.coalesce()
        loops = torch.arange(n, device=adj.device)
        idx = torch.cat([adj.indices(), torch.stack([loops, loops])], dim=1)
        val = torch.cat([adj.values(), torch.ones(n, device=adj.device, dtype=adj.dtype)])
        deg = torch.zeros(n, device=adj.device, dtype=adj.dtype).index_add_(0, idx[0], val)
        inv = deg.pow(-0.5)
        val = inv[idx[0]] * val * inv[idx[1]]
        return torch.sparse_coo_tensor(idx, val, (n, n)).coalesce()
    a = adj + torch.eye(adj.shape[-1], device=adj.device, dtype=adj.dtype)
    inv = a.sum(-1).pow(-0.5)
    return inv.unsqueeze(-1) * a * inv.unsqueeze(-2)


def mean_norm(adj: torch.Tensor) -> torch.Tensor:
    """D^-1 A: the mean over neighbours (GraphSAGE's aggregator); isolated nodes get 0."""
    if adj.is_sparse:
        adj = adj.coalesce()
        idx, val = adj.indices(), adj.values()
        deg = torch.zeros(adj.shape[0], device=adj.device, dtype=adj.dtype).index_add_(
            0, idx[0], val
        )
        return torch.sparse_coo_tensor(idx, val / deg[idx[0]], adj.shape).coalesce()
    return adj / adj.sum(-1, keepdim=True).clamp_min(1e-12)


def propagate(p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return torch.sparse.mm(p, h) if p.is_sparse else p @ h


class NodeNet(nn.Module):
    """Base: `propagation(adj)` normalises a raw adjacency once; `forward(x, p)` -> logits;
    `embeddings(x, p)` -> every layer's output (GCDM matches them)."""

    norm = staticmethod(gcn_norm)

    def propagation(self, adj: torch.Tensor) -> torch.Tensor:
        """The normalised adjacency; a sparse one as CSR, the fastest layout for P @ H here."""
        p = self.norm(adj)
        return p.to_sparse_csr() if p.is_sparse else p

    def fold(self, x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x', p') with forward(x', p') == forward(x, p) and cheaper when repeated: a network
        linear in its propagations precomputes them (SGC); others return (x, p)."""
        return x, p

    def forward(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.embeddings(x, p)[-1]

    def embeddings(self, x: torch.Tensor, p: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError


class GCN(NodeNet):
    """GCN (Kipf & Welling, ICLR 2017): H' = relu(P H W + b), P = D^-1/2 (A + I) D^-1/2.
    GCond evaluates with 2 layers, 256 hidden units, dropout 0.5."""

    def __init__(self, in_dim: int, num_classes: int, *, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.5):  # fmt: skip
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [num_classes]
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.dropout = dropout

    def embeddings(self, x, p):
        outs = []
        for i, lin in enumerate(self.lins):
            x = propagate(p, x @ lin.weight.T) + lin.bias
            if i < len(self.lins) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
            outs.append(x)
        return outs


class SGC(NodeNet):
    """SGC (Wu et al., ICML 2019): logits = P^K X W + b, one linear map after K propagations;
    GCond condenses with it (K = 2) because its gradients are cheap and stable."""

    def __init__(self, in_dim: int, num_classes: int, *, hidden: int = 0, layers: int = 2,
                 dropout: float = 0.0):  # fmt: skip
        super().__init__()
        self.lin = nn.Linear(in_dim, num_classes)
        self.hops = layers

    def fold(self, x, p):
        for _ in range(self.hops):
            x = propagate(p, x)
        return x, None

    def embeddings(self, x, p):
        """P^k X W for k = 1..K (bias on the last); p None: x is already P^K X (`fold`)."""
        h = x @ self.lin.weight.T
        if p is None:
            return [h + self.lin.bias]
        outs = []
        for _ in range(self.hops):
            h = propagate(p, h)
            outs.append(h)
        outs[-1] = outs[-1] + self.lin.bias
        return outs


class GraphSAGE(NodeNet):
    """GraphSAGE, mean aggregator (Hamilton et al., NeurIPS 2017):
    H' = relu(H W_self + mean_{j in N(i)} H_j W_neigh)."""

    norm = staticmethod(mean_norm)

    def __init__(self, in_dim: int, num_classes: int, *, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.5):  # fmt: skip
        super().__init__()
        dims = [in_dim] + [hidden] * (layers - 1) + [num_classes]
        pairs = list(zip(dims, dims[1:], strict=False))
        self.self_lins = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.neigh_lins = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in pairs)
        self.dropout = dropout

    def embeddings(self, x, p):
        outs = []
        for i, (ls, ln) in enumerate(zip(self.self_lins, self.neigh_lins, strict=True)):
            x = ls(x) + propagate(p, ln(x))
            if i < len(self.self_lins) - 1:
                x = F.dropout(F.relu(x), self.dropout, self.training)
            outs.append(x)
        return outs


NODE_NETS = {"gcn": GCN, "sgc": SGC, "sage": GraphSAGE}


def build_node_net(arch: str, in_dim: int, num_classes: int, **config) -> NodeNet:
    if arch not in NODE_NETS:
        raise DistillError(f"unknown graph network '{arch}'; choose one of: {', '.join(NODE_NETS)}")
    return NODE_NETS[arch](in_dim, num_classes, **config)


class GraphGCN(nn.Module):
    """Graph classifier of DosCond: `layers` GCN convolutions on a dense batch [B, n, n],
    mean pooling over each graph's real nodes, a linear head (DosCond: 3 convs, 128 hidden)."""

    def __init__(self, in_dim: int, num_classes: int, *, hidden: int = 128, layers: int = 3,
                 dropout: float = 0.0):  # fmt: skip
        super().__init__()
        dims = [in_dim] + [hidden] * layers
        self.convs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.head = nn.Linear(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x, adj, mask=None):
        p = gcn_norm(adj)
        for conv in self.convs:
            x = F.relu(p @ (x @ conv.weight.T) + conv.bias)
            x = F.dropout(x, self.dropout, self.training)
        if mask is None:
            pooled = x.mean(1)
        else:
            m = mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.head(pooled)
