"""A console progress bar for headless training (tqdm on stderr)."""
from __future__ import annotations

from tqdm import tqdm

from genapp.training.engine import Callback


class ProgressBar(Callback):
    """Steps done of all steps, with epoch, loss and images/s; a line per epoch's validation."""

    def on_start(self, trainer) -> None:
        self.bar = tqdm(total=trainer.total_steps, initial=trainer.step, unit="step", dynamic_ncols=True)

    def on_steps(self, trainer, records: list[dict]) -> None:
        tc = trainer.config.train
        self.bar.update(len(records))
        self.bar.set_postfix_str(
            f"epoch {trainer.epoch + 1}/{tc.epochs} loss {records[-1]['loss']:.2f} {trainer.images_per_s:,.0f} img/s",
            refresh=False,
        )

    def on_epoch_end(self, trainer, record: dict) -> None:
        parts = " ".join(f"{k} {v:.3f}" for k, v in record.items() if k not in ("step", "epoch", "split", "time"))
        self.bar.write(f"epoch {record['epoch']}: valid {parts}")

    def on_end(self, trainer, state: str) -> None:
        self.bar.close()
