"""autoclint: any-time image and video classification under the AutoDL challenge protocol."""

__version__ = "0.1.0"
