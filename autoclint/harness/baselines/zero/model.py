"""All-zero baseline: predicts 0 for every class (NAUC 0, ALC 0), then stops."""
import numpy as np

from autoclint.data.reader import count_examples  # works on eager and on TF1 graph-mode datasets


class Model:
    def __init__(self, metadata):
        self.output_dim = metadata.get_output_size()
        self.done_training = False

    def train(self, dataset, remaining_time_budget=None):
        pass

    def test(self, dataset, remaining_time_budget=None):
        n = count_examples(dataset)
        self.done_training = True
        return np.zeros((n, self.output_dim))
