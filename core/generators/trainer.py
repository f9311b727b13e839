"""Train the conditional generator on a dataset's training set; resumable, with progress.

Adam on the negative ELBO, shuffled batches; every epoch ends with an atomic save of the
weights and of the optimiser and RNG state (`datadistill.generators.store`), so stopping and
re-running the command continues where it stopped and gives the same weights as a run that
never stopped. `ensure_generator` is what IT-GAN's preset calls: it loads a finished
generator, or trains one (saying so) when there is none.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

import datadistill.generators.store as store
from datadistill import checkpoint
from datadistill.data import Dataset
from datadistill.errors import DistillError
from datadistill.generators.cvae import ConditionalVAE, GeneratorConfig

# our settings: the loss flattens by then on digits (~1,400 images an epoch, ~30 s for 100
# epochs on one CPU thread); Fashion-MNIST takes ~55 s an epoch there, so 10 epochs (the
# config default) keep it to minutes
DEFAULT_EPOCHS = {"digits": 100}


def default_config(dataset: str, epochs: int | None = None) -> GeneratorConfig:
    epochs = epochs or DEFAULT_EPOCHS.get(dataset, GeneratorConfig.epochs)
    return GeneratorConfig(epochs=epochs)


def train_generator(
    data: Dataset,
    *,
    config: GeneratorConfig,
    path: str | Path,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> ConditionalVAE:
    """Train (or resume training) the generator at `path` up to `config.epochs` epochs."""
    path = Path(path)
    model = store.new_model(data.spec, config).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    done, losses, seconds = 0, [], 0.0
    if path.exists():
        model, done, losses = _resume(path, data, config, model, opt, generator, device)
        seconds = store.read_meta(path).get("train_seconds")  # None: an older file
    x_all, y_all = data.x_train, data.y_train
    bar = tqdm(
        total=config.epochs,
        initial=done,
        disable=not progress,
        desc=f"generator {data.spec.name}",
        dynamic_ncols=True,
    )
    model.train()
    try:
        for epoch in range(done, config.epochs):
            start = time.monotonic()
            order = torch.randperm(len(x_all), generator=generator)
            total = 0.0
            for rows in order.split(config.batch_size):
                x, y = x_all[rows].to(device), y_all[rows].to(device)
                loss = model.loss(x, y, generator)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
            losses.append(total / len(x_all))
            if seconds is not None:
                seconds = round(seconds + time.monotonic() - start, 1)
            meta = store.describe(config, data.spec, epochs_done=epoch + 1, losses=losses,
                                  train_images=len(x_all), train_seconds=seconds)  # fmt: skip
            state = {"opt": opt.state_dict(), "generator": generator.get_state()}
            store.save(path, model, meta, state)
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4g}")
    finally:
        bar.close()
    return model.eval()


def _resume(path: Path, data: Dataset, config, model, opt, generator, device):
    loaded, meta = store.load(path, data.spec)
    saved = GeneratorConfig(**meta["config"])
    if dataclasses.replace(saved, epochs=config.epochs) != config:
        raise DistillError(
            f"generator {path} was trained with {saved}, not {config}; delete it or pass "
            "another --out"
        )
    done = meta["epochs_done"]
    state_file = store.state_path(path)
    if done < config.epochs:
        pickled = path.with_name(path.stem + ".state.pt")  # written before state left pickle
        if pickled.exists() and not state_file.exists():
            raise checkpoint.pickle_refusal(pickled, state_file)
        if not state_file.exists():
            raise DistillError(
                f"{state_file} is missing, so {path} cannot be trained further; delete "
                f"{path} to start afresh"
            )
        state = checkpoint.load_state(state_file)
        opt.load_state_dict(state["opt"])
        generator.set_state(state["generator"])
    model.load_state_dict(loaded.state_dict())
    return model.to(device), done, list(meta["losses"])


def ensure_generator(
    data: Dataset,
    *,
    path: str | Path | None = None,
    epochs: int | None = None,
    train: bool = True,
    progress: bool = True,
) -> tuple[ConditionalVAE, Path]:
    """A generator trained on `data` for at least `epochs` (default: the file's own target
    if it exists, else `DEFAULT_EPOCHS`); trains or finishes it on the CPU when `train`."""
    name = data.spec.name
    path = Path(path) if path else store.default_path(name)
    if path.exists():
        model, meta = store.load(path, data.spec)
        target = epochs or meta["config"]["epochs"]
        if meta["epochs_done"] >= target:
            return model.eval(), path
        config = dataclasses.replace(GeneratorConfig(**meta["config"]), epochs=target)
    else:
        config = default_config(name, epochs)
    command = store.generator_command(name, path, config.epochs)
    if not train:
        raise DistillError(
            f"no trained generator for {name} at {path}; run `{command}` first "
            "(or --set generator=PATH)"
        )
    warnings.warn(
        f"no finished generator for {name} at {path}: training it now on the CPU "
        f"({config.epochs} epochs); `{command}` does this ahead of time (--device cuda too)",
        stacklevel=2,
    )
    return train_generator(data, config=config, path=path, progress=progress), path
