"""The examples produce the values their programs promise, on several ensembles."""
import pytest

from appliance.system import load_system

from .conftest import example_module, example_path


def centre(record):
    return (record.start + record.stop) // 2


@pytest.mark.parametrize("seed", [0, 1])
def test_two_sinusoids_add_where_both_sample_and_smooth_the_fast_one(run_sim, seed):
    ex = example_module("two_sinusoids.py")
    records, result = run_sim(example_path("two_sinusoids.py"), ensembles=3, seconds=1, seed=seed,
                              latency=1000, jitter=500)
    sums = [r for r in records if r.sq == "add"]
    smooth = sorted((r for r in records if r.sq == "smooth"), key=lambda r: r.start)
    assert len(sums) == 50 and len(smooth) == 200  # 1 s of a 20 ms and a 5 ms stream
    for r in sums:
        t = centre(r)
        assert t % 20_000 == 0 and r.stop - r.start == 1000
        assert r.value == ex.wave(ex.SLOW_HZ, t) + 0.5 * ex.wave(ex.FAST_HZ, t)
    fast = [0.5 * ex.wave(ex.FAST_HZ, centre(r)) for r in smooth]
    for i, r in enumerate(smooth):
        window = fast[max(0, i - 3):i + 1]
        assert r.value == pytest.approx(sum(window) / len(window), abs=1e-12)
    drops = result.summary["discarded"]  # every fast sample without a slow partner is accounted for
    assert drops.get("unmatched", 0) + drops.get("held_at_teardown", 0) == 150 and len(drops) <= 2
    assert result.summary["lost"] == {}  # by the join's design, not a loss
    assert result.summary["out_of_order"] == 0


def test_the_diamond_joins_both_branches_of_the_same_sample(run_sim):
    records, result = run_sim(example_path("diamond.py"), ensembles=4, seconds=1, seed=3,
                              latency=1000, jitter=3000)
    assert len(records) == 100 and len(result.summary["ensembles"]) > 1
    for r in records:
        n = centre(r) // 10_000
        assert r.value == [2 * n, n * n]


def test_camera_fusion_meets_its_deadline_on_a_quiet_network(run_sim):
    ex = example_module("camera_fusion.py")
    system = load_system(example_path("camera_fusion.system.json"))
    records, result = run_sim(example_path("camera_fusion.py"), ensembles=system, seconds=2, latency=1000)
    assert len(records) == 40 and result.summary["deadline_missed"] == 0
    for r in records:
        assert r.value == {"x": ex.object_x(centre(r)), "source": "fused"}
    mapping = result.mapping
    assert (mapping["left_camera"], mapping["right_camera"], mapping["fuse"]) == ("left-pi", "right-pi", "jetson")


def test_camera_fusion_falls_back_to_plan_b_when_the_network_is_late(run_sim):
    ex = example_module("camera_fusion.py")
    system = load_system(example_path("camera_fusion.system.json"))
    records, result = run_sim(example_path("camera_fusion.py"), ensembles=system, seconds=2, seed=1,
                              latency=4000, jitter=12000)
    s = result.summary
    assert s["deadline_met"] > 0 and s["deadline_missed"] > 0
    assert s["deadline_met"] + s["deadline_missed"] == len(records) == 40
    fused = [r for r in records if r.value["source"] == "fused"]
    plan_b = [r for r in records if r.value["source"] == "plan-b"]
    assert len(fused) == s["deadline_met"] and len(plan_b) == s["deadline_missed"]
    for r in fused:
        assert r.value["x"] == ex.object_x(centre(r))
    for r in plan_b:  # Plan B answers with the interval of the sample that missed
        assert r.value["x"] is None and r.stop - r.start == 10_000 and centre(r) % 50_000 == 0


@pytest.mark.parametrize("seed", [0, 3])
def test_the_greenhouse_vent_follows_the_thermometer_and_is_closed_at_teardown(run_sim, seed):
    ex = example_module("greenhouse.py")
    system = load_system(example_path("greenhouse.system.json"))
    records, result = run_sim(example_path("greenhouse.py"), ensembles=system, seconds=8, seed=seed)
    assert (result.mapping["temperature"], result.mapping["vent"]) == ("sensor-pi", "vent-pi")
    celsius = [r.value for r in sorted((r for r in records if r.sq == "temperature"), key=lambda r: r.start)]
    assert len(celsius) == 80 and all(18 <= c <= 30 for c in celsius)
    expected, position = [], 0
    for c in celsius:  # the controller's hysteresis, replayed
        position = 1 if c > ex.OPEN_ABOVE else 0 if c < ex.CLOSE_BELOW else position
        expected.append(position)
    assert 0 < sum(expected) < 80  # the vent both opened and closed in 8 s
    writes = result.writes
    assert [w.value for w in writes] == expected + [0]  # and teardown() closed it
    assert {(w.ensemble, w.component) for w in writes} == {("vent-pi", "vent")}
    assert all(a.at < b.at for a, b in zip(writes, writes[1:]))
