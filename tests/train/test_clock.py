"""The clock: remaining budgets from the harness (None, 0, negative), measured costs, affordability."""
import math
import time

from autoclint.train.clock import Clock


def test_remaining_budget_none_zero_and_negative():
    clock = Clock()
    assert math.isinf(clock.left())  # before any call: no limit known
    clock.set_remaining(None)
    assert math.isinf(clock.left()) and clock.can_afford(1e9)
    clock.set_remaining(0)
    assert clock.left() <= 0 and not clock.can_afford(0.01)
    clock.set_remaining(-5)
    assert clock.left() < -4.9 and clock.at(10) <= time.monotonic()  # never past the deadline
    clock.set_remaining(10)
    assert 9.5 < clock.left() <= 10 and clock.can_afford(5, reserve_s=3) and not clock.can_afford(8, reserve_s=3)


def test_costs_are_measured_per_item():
    clock = Clock()
    assert clock.cost("net_pass", 100) == 0 and clock.cost("net_pass", 100, unknown=0.5) == 50
    clock.measure("net_pass", 200, 2.0)
    assert math.isclose(clock.cost("net_pass", 50), 0.5)
    with clock.timed("step", 10):
        time.sleep(0.05)
    assert 0.004 < clock.cost("step", 1) < 0.05
    clock.measure("step", 0, 1.0)  # nothing done: the earlier measure stays
    assert clock.cost("step", 1) < 0.05
    assert clock.elapsed() > 0.04
