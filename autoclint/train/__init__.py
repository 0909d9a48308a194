"""The clock-driven trainer behind `model.py`."""
