"""autoclint: any-time image and video classification under the AutoDL challenge protocol."""
import os

# TensorFlow's C++ start-up banner (oneDNN, CPU features) says nothing a user can act on; set before any
# module imports tensorflow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
