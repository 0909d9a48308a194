"""Ridge heads: leave-one-out predictions equal refitting without each example; the weights solve the
ridge system (primal and dual forms); pixel features are chunked."""
import numpy as np

from autoclint.train.heads import RidgeHead, fit_ridge, pixel_features, refit
from tests.conftest import faces, one_hot


def brute_leave_one_out(x, y, head):
    xs = head.standardise(x)
    n, d = xs.shape
    gram = xs.T @ xs if d <= n else xs @ xs.T
    penalty = head.alpha * max(np.linalg.eigvalsh(gram).mean(), 1e-6)
    out = []
    for i in range(n):
        keep = np.arange(n) != i
        design = np.hstack([xs[keep], np.ones((n - 1, 1))])
        reg = np.eye(d + 1) * penalty
        reg[-1, -1] = 0  # the intercept is not penalised
        w = np.linalg.solve(design.T @ design + reg, design.T @ y[keep])
        out.append(np.append(xs[i], 1) @ w)
    return 1 / (1 + np.exp(-(np.array(out) - y.mean(0)) * RidgeHead.LOGIT_SCALE))


def test_leave_one_out_is_exact_on_real_faces_in_both_forms():
    x_u8, subjects = faces(per_subject=3, subjects=10)
    y = one_hot(subjects, 10)
    for side in (4, 12):  # 16 features < 30 examples (primal), 144 > 30 (dual)
        feats = pixel_features(x_u8[:, None], side)
        head, loo = fit_ridge(feats, y, (0.1, 1.0, 10.0), False)
        np.testing.assert_allclose(loo, brute_leave_one_out(feats, y, head), atol=1e-5)  # float32 features
        xs = head.standardise(feats)
        gram = xs.T @ xs
        penalty = head.alpha * (np.trace(xs.T @ xs if xs.shape[1] <= len(xs) else xs @ xs.T) / min(xs.shape))
        w = np.linalg.solve(gram + penalty * np.eye(len(gram)), xs.T @ (y - y.mean(0)))
        np.testing.assert_allclose(head.w, w, rtol=1e-5, atol=1e-6)


def test_refit_keeps_the_penalty_and_constant_inputs_do_not_break_it():
    x_u8, subjects = faces(per_subject=4, subjects=10)
    feats, y = pixel_features(x_u8[:, None], 8), one_hot(subjects, 10)
    head, _ = fit_ridge(feats[:30], y[:30], (1.0, 100.0), False)
    again = refit(head, feats, y)
    assert again.alpha == head.alpha and again.w.shape == head.w.shape
    same, _ = fit_ridge(feats, y, (head.alpha,), False)  # the eigendecomposition route, one penalty
    np.testing.assert_allclose(again.w, same.w, rtol=1e-6, atol=1e-9)
    wide = pixel_features(x_u8[:, None], 16)  # 256 features > 40 examples: the dual form
    np.testing.assert_allclose(refit(head, wide, y).w, fit_ridge(wide, y, (head.alpha,), False)[0].w, atol=1e-9)
    assert (again.predict(feats).argmax(1) == subjects).mean() > 0.9
    constant, loo = fit_ridge(np.ones((20, 5)), y[:20], (1.0,), False)
    assert np.isfinite(constant.predict(np.ones((3, 5)))).all() and np.isfinite(loo).all()


def test_pixel_features_in_chunks_equal_one_pass():
    x_u8, _ = faces(per_subject=2, subjects=10)
    clips = np.stack([x_u8[:10], x_u8[10:]], axis=1)  # (10, 2 frames, H, W, 1)
    whole = pixel_features(clips, 16, chunk=100)
    np.testing.assert_allclose(pixel_features(clips, 16, chunk=3), whole, rtol=1e-6)
    assert whole.shape == (10, 2 * 16 * 16)  # frame mean and spread
