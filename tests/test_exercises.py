"""Every exercise check passes a correct answer and names each classic mistake it promises to catch."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vaelib import exercises as ex


def kl_terms(m, s):
    return m**2 + s**2 - 1 - torch.log(s**2)


def bce(x, l):
    return F.binary_cross_entropy_with_logits(l, x, reduction="none").sum(-1)


def kl(m, s):
    return 0.5 * kl_terms(m, s).sum(-1)


def t(steps):
    return torch.linspace(0, 1, steps).unsqueeze(1)


def angle(a, b, cosine=None):
    cosine = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1) if cosine is None else cosine
    return torch.arccos(cosine)


def slerp(a, b, t, cosine=None):
    omega, t = angle(a, b, cosine), t.unsqueeze(1)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def kl_lv(m, lv):  # the KL to N(0, I) from the log-variance, as pytorch/examples writes it
    return -0.5 * (1 + lv - m**2 - lv.exp()).sum(-1)


def neg_elbo(x, l, m, lv, recon=None, kl=None):
    recon = bce(x, l) if recon is None else recon
    return (recon + (kl_lv(m, lv) if kl is None else kl)).mean()


def elbo_table(model, x, eps, k, kl_weight=1.0, recon_scale=1.0, same_label=False):
    columns = []
    for y in range(k):
        labels = torch.full((len(x),), 0 if same_label else y)
        mu, sigma = model.encode(x, labels)
        recon = bce(x, model.decode(mu + sigma * eps, labels))
        columns.append(recon_scale * recon + kl_weight * kl(mu, sigma))
    return torch.stack(columns, dim=1)


def shares(codes, k):  # how often each of k codes is used, over the whole set
    return torch.bincount(codes.flatten(), minlength=k).double() / codes.numel()


def entropy_of(p):
    p = p[p > 0]
    return -(p * p.log()).sum()


def perplexity(p):
    return entropy_of(p).exp()


def not_done(*args):
    raise NotImplementedError


CASES = [
    (ex.check_to_unit_range, lambda x: x.float() / 255, [
        (lambda x: x.float() / 256, "divided by 256"),
        (lambda x: x.float(), "still run up to 255"),
        (lambda x: x // 255, "integer division"),
    ]),
    (ex.check_off_data_threshold, lambda h, r, q: torch.quantile(torch.cdist(h, r).min(1).values, q), [
        (lambda h, r, q: torch.quantile(torch.cdist(h, r).flatten(), q), "not of each image's nearest one"),
        (lambda h, r, q: torch.quantile(torch.cdist(h, r).min(0).values, q), "the wrong direction"),
        (lambda h, r, q: torch.quantile(torch.cdist(h, r).mean(1), q), "averaged"),
        (lambda h, r, q: torch.quantile(torch.cdist(h, r).min(1).values ** 2, q), "squared"),
        (lambda h, r, q: torch.quantile(torch.cdist(h, r).min(1).values, 1 - q), "1 - quantile"),
        (lambda h, r, q: torch.cdist(h, r).min(1).values.max(), "largest nearest distance"),
    ]),
    (ex.check_posterior_on_grid, lambda ll, z: torch.softmax(ll - 0.5 * (z**2).sum(-1), dim=1), [
        (lambda ll, z: torch.softmax(ll, dim=1), "left out the prior"),
        (lambda ll, z: torch.softmax(ll - (z**2).sum(-1), dim=1), "N(0, I/2)"),
        (lambda ll, z: torch.softmax(ll - 0.5 * (z**2).sum(-1), dim=0), "over the batch"),
        (lambda ll, z: torch.log_softmax(ll - 0.5 * (z**2).sum(-1), dim=1), "log-probabilities"),
        (lambda ll, z: torch.exp(ll - 0.5 * (z**2).sum(-1)) / torch.exp(ll - 0.5 * (z**2).sum(-1)).sum(1, keepdim=True),
         "underflows"),
    ]),
    (ex.check_correlated_sample, lambda m, L, e: m + e @ L.T, [
        (lambda m, L, e: m + e @ L, "wrong side"),
        (lambda m, L, e: m + e @ (L @ L.T).T, "covariance L L^T itself"),
        (lambda m, L, e: m + e * L.diagonal(), "only the diagonal"),
        (lambda m, L, e: (m + e @ L.T).detach(), "no gradient reaches"),
        (lambda m, L, e: e @ L.T, "not centred on mu"),
    ]),
    (ex.check_negative_elbo, neg_elbo, [
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, recon=bce(x, l) / x.shape[1]), "averaged the reconstruction"),
        (lambda x, l, m, lv: F.binary_cross_entropy_with_logits(l, x) + kl_lv(m, lv).mean(), "averaged the reconstruction"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=0), "KL term is missing"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, recon=F.binary_cross_entropy(torch.sigmoid(l), x, reduction="none").sum(-1)),
         "sigmoid(logits)"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, recon=-(x * torch.log(torch.sigmoid(l))
                                                          + (1 - x) * torch.log(1 - torch.sigmoid(l))).sum(-1)),
         "inf or nan"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=0.5 * (m**2 + lv.exp() - 1 - 0.5 * lv).sum(-1)),
         "log sigma where log sigma^2"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=0.5 * (m**2 + lv.exp() - 1 + lv).sum(-1)), "wrong sign"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=0.5 * (
            m**2 + torch.exp(torch.exp(0.5 * lv)) - 1 - torch.exp(0.5 * lv)).sum(-1)), "put sigma into a formula"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=0.5 * (m**2 + (2 * lv).exp() - 1 - 2 * lv).sum(-1)),
         "as if it were log sigma"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv, kl=2 * kl_lv(m, lv)), "twice the right value"),
        (lambda x, l, m, lv: -neg_elbo(x, l, m, lv), "wrong sign"),
        (lambda x, l, m, lv: neg_elbo(x, l, m, lv) * len(x), "summed over the batch"),
        (lambda x, l, m, lv: bce(x, l) + kl_lv(m, lv), "one loss per image"),
    ]),
    (ex.check_iwae_estimate, lambda lw: torch.logsumexp(lw, 0) - math.log(len(lw)), [
        (lambda lw: lw.mean(0), "averaged the log-weights"),
        (lambda lw: torch.logsumexp(lw, 0), "forgot the 1/k"),
        (lambda lw: torch.logsumexp(lw, 0) / len(lw), "divided the log of the sum by k"),
        (lambda lw: torch.log(torch.exp(lw).mean(0)), "below the smallest float32"),
        (lambda lw: torch.log(torch.exp(lw.double()).mean(0)), "even in float64"),
        (lambda lw: torch.log(torch.exp(lw).sum(0) / len(lw)), "exp underflowed"),
        (lambda lw: lw.max(0).values, "only the largest weight"),
        (lambda lw: torch.logsumexp(lw, 1) - math.log(lw.shape[1]), "expected (3,)"),
    ]),
    (ex.check_slerp, slerp, [
        (lambda a, b, t: a + t[:, None] * (b - a), "straight line"),
        (lambda a, b, t: slerp(b, a, t), "backwards"),
        (lambda a, b, t: slerp(a, b, t) * torch.sin(angle(a, b)), "forgot to divide by sin(omega)"),
        (lambda a, b, t: slerp(a / a.norm(), b / b.norm(), t), "unit sphere"),
        (lambda a, b, t: slerp(a, b, t, cosine=torch.dot(a, b)), "contains nan"),
        (lambda a, b, t: slerp(a, b, t)[:, :1], "expected (5, 2)"),
    ]),
    (ex.check_conv2d, lambda i, k, s, p: F.conv2d(i[None, None], k[None, None], stride=s, padding=p)[0, 0], [
        (lambda i, k, s, p: F.conv2d(i[None, None], k.flip(0, 1)[None, None], stride=s, padding=p)[0, 0],
         "flipped the kernel"),
        (lambda i, k, s, p: F.conv2d(i[None, None], k[None, None], stride=s)[0, 0], "forgot the padding"),
        (lambda i, k, s, p: F.conv2d(F.pad(i, (p, p))[None, None], k[None, None], stride=s)[0, 0],
         "only the left and right"),
        (lambda i, k, s, p: F.conv2d(i[None, None], k[None, None], padding=p)[0, 0], "stride is ignored"),
        (lambda i, k, s, p: F.conv2d(i[None, None], k[None, None] / k.numel(), stride=s, padding=p)[0, 0],
         "averaged each window"),
        (lambda i, k, s, p: F.conv2d(i[None, None], k[None, None], stride=s, padding=p)[0, 0, :-1, :-1],
         "one row and one column short"),
        (lambda i, k, s, p: F.conv2d(i[None, None], k[None, None], stride=s, padding=p), "expected (6, 6)"),
    ]),
    (ex.check_collapsed_units, lambda m, s: 0.5 * kl_terms(m, s).mean(0) < 0.01, [
        (lambda m, s: m.var(0) < 0.01, "only whether mu moves"),
        (lambda m, s: (s.mean(0) - 1).abs() < 0.05, "sigma only"),
        (lambda m, s: 0.5 * kl_terms(m.mean(0), s.mean(0)) < 0.01, "averaged mu and sigma over the images"),
        (lambda m, s: kl_terms(m, s).mean(0) < 0.01, "twice the right value"),
        (lambda m, s: 0.5 * kl_terms(m, s).sum(0) < 0.01, "summed each unit's KL over the images"),
        (lambda m, s: 0.5 * kl_terms(m, s).mean(0) >= 0.01, "True for the units in use"),
        (lambda m, s: 0.5 * kl_terms(m, s).mean(0), "expected torch.bool"),
        (lambda m, s: 0.5 * kl_terms(m, s).mean(1) < 0.01, "expected (6,)"),
    ]),
    (ex.check_negative_elbo_per_label, elbo_table, [
        (lambda m, x, e, k: elbo_table(m, x, e, k, kl_weight=0), "left out the KL"),
        (lambda m, x, e, k: -elbo_table(m, x, e, k), "wrong sign"),
        (lambda m, x, e, k: elbo_table(m, x, e * 0, k), "eps is ignored"),
        (lambda m, x, e, k: elbo_table(m, x, e, k, same_label=True), "same label"),
        (lambda m, x, e, k: elbo_table(m, x, e, k, recon_scale=1 / x.shape[1]), "averaged the reconstruction"),
        (lambda m, x, e, k: elbo_table(m, x, e, k).T, "one row per label"),
        (lambda m, x, e, k: elbo_table(m, x, torch.randn_like(e), k), "changes from one call to the next"),
    ]),
    (ex.check_mutual_information_gap, lambda mi, h: ((mi.sort(0, descending=True).values[0]
                                                      - mi.sort(0, descending=True).values[1]) / h).mean(), [
        (lambda mi, h: (mi.sort(0).values[-1] - mi.sort(0).values[-2]).mean(), "in nats"),
        (lambda mi, h: ((mi.amax(0) - mi.amin(0)) / h).mean(), "the worst"),
        (lambda mi, h: (mi.amax(0) / h).mean(), "only the best unit"),
        (lambda mi, h: ((mi.sort(1).values[:, -1] - mi.sort(1).values[:, -2]) / h[mi.argmax(1)]).mean(),
         "averaged over the units"),
        (lambda mi, h: ((mi.sort(0).values[-1] - mi.sort(0).values[-2]) / h.sum()).mean(), "all factors together"),
        (lambda mi, h: (mi.sort(0).values[-1] - mi.sort(0).values[-2]) / h, "expected ()"),
    ]),
    (ex.check_codebook_perplexity, lambda c, k: perplexity(shares(c, k)), [
        (lambda c, k: entropy_of(shares(c, k)), "the entropy, not the perplexity"),
        (lambda c, k: 2 ** entropy_of(shares(c, k)), "raised 2 to an entropy in nats"),
        (lambda c, k: torch.exp(entropy_of(shares(c, k)) / math.log(2)), "exp of an entropy in bits"),
        (lambda c, k: torch.stack([perplexity(shares(row, k)) for row in c]).mean(), "one perplexity per image"),
        (lambda c, k: torch.stack([perplexity(shares(col, k)) for col in c.T]).mean(), "one perplexity per position"),
        (lambda c, k: perplexity(torch.bincount(c.flatten(), minlength=k).double()), "the counts, not the shares"),
        (lambda c, k: (-(shares(c, k) * shares(c, k).log()).sum()).exp(), "0 * log 0 is nan"),
        (lambda c, k: perplexity(shares(c, k)).repeat(2), "expected ()"),
    ]),
    (ex.check_coupling_log_det, lambda z, c, inv: (-1 if inv else 1) * c(z[:, :z.shape[1] // 2])[0].sum(-1), [
        (lambda z, c, inv: c(z[:, :z.shape[1] // 2])[0], "one log-scale per moved coordinate"),
        (lambda z, c, inv: c(z[:, :z.shape[1] // 2])[0].exp().sum(-1), "summed the scales exp(s)"),
        (lambda z, c, inv: c(z[:, :z.shape[1] // 2])[0].sum(-1), "forward step's log-determinant"),
        (lambda z, c, inv: (-1 if inv else 1) * c(z[:, :z.shape[1] // 2])[0].sum(), "summed over the batch"),
        (lambda z, c, inv: (-1 if inv else 1) * (c(z[:, :z.shape[1] // 2])[0].sum(-1) + z[:, :z.shape[1] // 2].sum(-1)),
         "counted the coordinates that pass unchanged"),
    ]),
    (ex.check_iwae_gradient_weights, lambda lw: torch.softmax(lw, 0), [
        (lambda lw: torch.full_like(lw, 1 / len(lw)), "k-sample ELBO"),
        (lambda lw: lw.exp(), "not normalized"),
        (lambda lw: lw.exp() / len(lw), "cancels in the gradient"),
        (lambda lw: torch.softmax(lw, 0) / len(lw), "nothing to its gradient"),
        (lambda lw: torch.softmax(lw, 1), "over the images"),
        (lambda lw: lw.exp() / lw.exp().sum(0), "0 / 0 is nan"),
        (lambda lw: torch.softmax(-lw, 0), "check the sign"),
        (lambda lw: torch.softmax(lw, 0)[:, :1], "expected (5, 3)"),
    ]),
]


@pytest.mark.parametrize("check, correct, mistakes", CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_correct_answer_and_names_each_mistake(check, correct, mistakes, capsys):
    assert check(correct) is True
    assert "Correct!" in capsys.readouterr().out
    for wrong, phrase in mistakes:
        assert check(wrong) is False
        out = capsys.readouterr().out
        assert phrase in out, f"{check.__name__} should name '{phrase}', said: {out}"
        assert "Hint" in out or "expected" in out


@pytest.mark.parametrize("check", [c[0] for c in CASES], ids=[c[0].__name__ for c in CASES])
def test_unfinished_and_crashing_answers_get_plain_messages(check, capsys):
    assert check(not_done) is False
    assert "Not done yet" in capsys.readouterr().out

    def crashes(*args):
        raise RuntimeError("boom")
    assert check(crashes) is False
    assert "raised RuntimeError: boom" in capsys.readouterr().out
    assert check(lambda *args: 3.0) is False
    assert "expected a tensor" in capsys.readouterr().out


def test_checks_do_not_touch_the_global_random_state():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ex.check_negative_elbo(neg_elbo)
    torch.testing.assert_close(torch.rand(3), expected)


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_has_checks_and_every_check_a_notebook():
    assert sorted(ex.CHECKS) == [p.name[:2] for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_checked_exercises_with_hidden_worked_solutions(path):
    cells = json.loads(path.read_text())["cells"]
    checks = [c.__name__ for c in ex.CHECKS.get(path.name[:2], [])]
    assert checks, f"no exercise checks for {path.name}"
    for name in checks:
        tasks = [c for c in cells if "exercise" in c["metadata"].get("tags", [])
                 and f"vaelib.exercises.{name}(" in "".join(c["source"])]
        solutions = [c for c in cells if "solution" in c["metadata"].get("tags", [])
                     and f"assert vaelib.exercises.{name}(" in "".join(c["source"])]
        assert len(tasks) == 1 and "raise NotImplementedError" in "".join(tasks[0]["source"])
        assert len(solutions) == 1 and solutions[0]["metadata"]["jupyter"]["source_hidden"]
        assert cells.index(solutions[0]) > cells.index(tasks[0])
