"""Each family's objective as LaTeX, filled with a model's live numbers, for ``st.latex``.

Pure functions of floats: no streamlit, no torch. Numbers are in nats unless the formula says
otherwise; KaTeX renders them.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

LOG_4 = math.log(4.0)


def _num(value: float, digits: int = 2) -> str:
    """A number for LaTeX: a true minus sign, thin-space thousands separators."""
    text = f"{abs(value):,.{digits}f}".replace(",", r"\,")
    return f"-{text}" if value < 0 and float(f"{abs(value):.{digits}f}") != 0 else text


def _signed(value: float, digits: int = 2) -> str:
    """" + 1.5" or " - 1.5": a number as the next term of a sum."""
    return f" - {_num(-value, digits)}" if value < 0 else f" + {_num(value, digits)}"


def elbo(recon: float, kl: float, nll: float | None = None) -> str:
    """ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) with ``recon`` = −E_q[log p(x|z)] and ``kl``
    (per-image means, nats); with ``nll`` (an importance-weighted −log p(x)) the bound it is under."""
    value = -(recon + kl)
    text = (r"\mathcal{L}(x) = \underbrace{\mathbb{E}_{q(z|x)}\big[\log p(x\mid z)\big]}_{" + _num(-recon)
            + r"} - \underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{" + _num(kl) + "} = " + _num(value))
    if nll is not None:
        text += r" \;\le\; \log p(x) \approx " + _num(-nll)
    return text


def gan_value(d_real: float, d_fake: float, log_d_real: float, log_one_minus_d_fake: float) -> list[str]:
    """The minimax game, its value with the current D and G, and the optimal discriminator.

    ``d_real`` / ``d_fake``: mean D(x) on real and D(G(z)) on generated images; ``log_d_real``,
    ``log_one_minus_d_fake``: the means of log D(x) and log(1 − D(G(z))). Returns three lines.
    """
    value = log_d_real + log_one_minus_d_fake
    return [
        r"\min_G \max_D\; V(D, G) = \mathbb{E}_{x \sim p_\text{data}}\big[\log D(x)\big] + "
        r"\mathbb{E}_{z \sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]",
        r"V = " + _num(log_d_real, 3) + _signed(log_one_minus_d_fake, 3) + " = " + _num(value, 3)
        + r" \qquad \text{(at the equilibrium } p_g = p_\text{data}\text{: } -\log 4 = " + _num(-LOG_4, 3) + ")",
        r"D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_g(x)} \qquad \overline{D(x)} = " + _num(d_real)
        + r",\;\; \overline{D(G(z))} = " + _num(d_fake) + r" \qquad \text{(both } \tfrac12 \text{ when } p_g = p_\text{data})",
    ]


def js_lower_bound(value: float) -> float:
    """JSD(p_data ‖ p_g) ≥ (V(D, G) + log 4) / 2 for any D, since V(D*, G) = −log 4 + 2·JSD."""
    return (value + LOG_4) / 2


def change_of_variables(log_pz: float, names: Sequence[str], log_dets: Sequence[float], bpd: float,
                        max_terms: int = 8) -> list[str]:
    """log p_X(x) = log p_Z(f(x)) + Σ_k log|det J_k|: the formula, the sum with one term per layer
    (the first and last few when there are more than ``max_terms``), the total, and bits per
    dimension on the 8-bit scale.

    ``names`` and ``log_dets`` are the layers' names and log|det J| (nats) for one image; a name
    "3: coupling" is shown as its number, 3. ``bpd`` is the image's bits per dimension, as the flow
    computes it from log p_X(x).
    """
    total = float(sum(log_dets))
    log_px = log_pz + total
    terms = [f"{_signed(v, 1)}_{{\\text{{{_escape(n.split(':')[0])}}}}}" for n, v in zip(names, log_dets)]
    if len(terms) > max_terms:
        head = max_terms // 2
        terms = [*terms[:head], r" + \cdots", *terms[-(max_terms - head):]]
    sum_text = "".join(terms)
    sum_text = "-" + sum_text[3:] if sum_text.startswith(" - ") else sum_text[3:]  # no sign before the first term
    return [
        r"\log p_X(x) = \log p_Z\big(f(x)\big) + \sum_k \log\left|\det J_k\right|, \qquad "
        r"J_k = \frac{\partial h_k}{\partial h_{k-1}},\;\; h_0 = x,\;\; h_K = z = f(x)",
        r"\sum_k \log\left|\det J_k\right| = " + sum_text + " = " + _num(total, 1),
        r"\log p_X(x) = " + _num(log_pz, 1) + _signed(total, 1) + " = " + _num(log_px, 1) + r"\text{ nats}"
        + r" \qquad \text{bits/dim} = -\frac{\log p_X(x) - 784 \ln 256}{784 \ln 2} = " + _num(bpd, 3),
    ]


def _escape(name: str) -> str:
    """A layer name safe inside \\text{}."""
    return "".join("\\" + c if c in "#$%&_{}" else c for c in name)
