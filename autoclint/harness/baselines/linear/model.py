"""Linear baseline: softmax (or one-vs-rest sigmoid) regression on 8x8 downsized pixels.

Every train() call runs twice as many full-batch gradient steps as the one before, so predictions
improve call after call; it stops when the budget is nearly spent or after 10 calls.
"""
import numpy as np
import tensorflow as tf

from autoclint.data.reader import numpy_batches  # works on eager and on TF1 graph-mode datasets

SIDE = 8  # pixels per side after downsizing: cheap, and enough to beat chance on real images
MAX_CALLS = 10


def _features(dataset):
    def shrink(x, y):
        x = tf.reduce_mean(tf.cast(x, tf.float32), axis=0)  # average the frames of a clip
        x = tf.image.resize(x, (SIDE, SIDE), antialias=True)
        return tf.reshape(x, [-1]), y

    xs, ys = [], []
    for x, y in numpy_batches(dataset, lambda d: d.map(shrink).batch(256)):
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)


class Model:
    def __init__(self, metadata):
        self.output_dim = metadata.get_output_size()
        self.done_training = False
        self.calls = 0
        self.x = self.y = self.x_test = self.w = None

    def train(self, dataset, remaining_time_budget=None):
        if self.x is None:
            self.x, self.y = _features(dataset)
            self.mean, self.std = self.x.mean(0), self.x.std(0) + 1e-6
            self.x = (self.x - self.mean) / self.std
            self.multilabel = bool((self.y.sum(1) > 1).any())
            self.w = np.zeros((self.x.shape[1] + 1, self.output_dim))
        xb = np.hstack([self.x, np.ones((len(self.x), 1))])
        for _ in range(2 ** self.calls):
            z = xb @ self.w
            p = self._activate(z)
            grad = xb.T @ (p - self.y) / len(xb) + 1e-3 * self.w
            self.w -= 0.5 * grad
        self.calls += 1
        if self.calls >= MAX_CALLS or (remaining_time_budget is not None and remaining_time_budget < 5):
            self.done_training = True

    def _activate(self, z):
        if self.multilabel:
            return 1 / (1 + np.exp(-z))
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def test(self, dataset, remaining_time_budget=None):
        if self.x_test is None:
            x, _ = _features(dataset)
            self.x_test = np.hstack([(x - self.mean) / self.std, np.ones((len(x), 1))])
        return self._activate(self.x_test @ self.w)
