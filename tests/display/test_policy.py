"""The display policy on plain numbers: hand-computed timelines, then properties over any sequence.

Contents here carry their frame count in the text ("10 frames" scrolls 10 frames a pass, no text
is a still frame), so every time below is worked out by hand from scroll_speed 0.1.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.display.model import MAX_APPS, App, Content, DisplayConfig, Indicator, Notification
from bridge.display.policy import DisplayRefused, Layers, decide, frame_at, indicator_lit


def frames_of(content: Content) -> int:
    return int(content.text.split()[0]) if content.text else 1


def scroll(frames: int, speed: float = 0.1) -> Content:
    return Content(text=f"{frames} frames", scroll_speed=speed)


def note(frames: int | None = 10, **options) -> Notification:
    return Notification(scroll(frames) if frames else Content(pixels=((1, 2, 3),) * 64), **options)


def layers(**config) -> Layers:
    return Layers(DisplayConfig(**config), frames_of)


def at(state: Layers, now: float):
    state.advance(now)
    return decide(state, now)


def shown(state: Layers, now: float) -> tuple:
    showing, _ = at(state, now)
    return showing.layer, showing.key, showing.frame


# -- one notification's time ------------------------------------------------------------------


def test_a_scroll_shows_one_pass_frame_by_frame_then_the_base():
    state = layers()
    assert state.notify(note(10, id="a"), 0.0).position == 0
    assert at(state, 0.0)[1] == pytest.approx(0.1)
    assert shown(state, 0.35) == ("notification", "a", 3)
    assert shown(state, 0.95) == ("notification", "a", 9)
    assert at(state, 0.95)[1] == pytest.approx(1.0)
    assert shown(state, 1.0) == ("base", None, 0)
    assert at(state, 1.0)[1] is None


def test_repeat_runs_that_many_passes():
    state = layers()
    state.notify(note(10, id="a", repeat=3), 0.0)
    assert shown(state, 1.25) == ("notification", "a", 2)
    assert shown(state, 2.95) == ("notification", "a", 9)
    assert shown(state, 3.0)[0] == "base"


def test_a_duration_longer_than_the_scroll_repeats_it_and_cuts_the_last_pass():
    state = layers()
    state.notify(note(10, id="a", duration=1.5), 0.0)
    assert shown(state, 1.05) == ("notification", "a", 0)
    assert shown(state, 1.45) == ("notification", "a", 4)
    assert shown(state, 1.5)[0] == "base"


def test_duration_with_repeat_holds_the_last_frame_after_the_passes():
    state = layers()
    state.notify(note(10, id="a", duration=3.0, repeat=1), 0.0)
    assert shown(state, 0.95) == ("notification", "a", 9)
    showing, next_change = at(state, 2.0)
    assert (showing.key, showing.frame, next_change) == ("a", 9, pytest.approx(3.0))
    assert shown(state, 3.0)[0] == "base"


def test_a_duration_shorter_than_the_scroll_cuts_it():
    state = layers()
    state.notify(note(10, id="a", duration=0.5), 0.0)
    assert shown(state, 0.45) == ("notification", "a", 4)
    assert shown(state, 0.5)[0] == "base"


def test_a_still_notification_shows_five_seconds_and_is_drawn_once():
    state = layers()
    state.notify(note(None, id="a"), 0.0)
    showing, next_change = at(state, 0.0)
    assert (showing.frame, next_change) == (0, 5.0)
    assert shown(state, 4.9)[0] == "notification"
    assert shown(state, 5.0)[0] == "base"


def test_hold_repeats_the_scroll_until_dismissed():
    state = layers()
    state.notify(note(10, id="a", hold=True), 0.0)
    assert shown(state, 100.05) == ("notification", "a", 0)
    assert state.press_middle(100.1) is True
    assert shown(state, 100.1)[0] == "base"
    assert state.press_middle(100.2) is False


def test_the_middle_press_leaves_a_notification_without_hold():
    state = layers()
    state.notify(note(10, id="a"), 0.0)
    assert state.press_middle(0.5) is False
    assert shown(state, 0.5) == ("notification", "a", 5)


# -- the queue --------------------------------------------------------------------------------


def test_a_higher_priority_interrupts_and_the_interrupted_one_comes_back_from_frame_0():
    state = layers()
    state.notify(note(10, id="low", priority=1), 0.0)
    assert state.notify(note(5, id="high", priority=9), 0.45).position == 0
    assert shown(state, 0.45) == ("notification", "high", 0)
    assert shown(state, 0.9) == ("notification", "high", 4)
    assert shown(state, 0.95) == ("notification", "low", 0)
    assert shown(state, 1.05) == ("notification", "low", 1)
    assert shown(state, 1.95)[0] == "base"


def test_equal_priority_stacks_behind_in_arrival_order():
    state = layers()
    state.notify(note(10, id="a"), 0.0)
    assert state.notify(note(10, id="b"), 0.1).position == 1
    assert state.notify(note(10, id="c"), 0.2).position == 2
    assert shown(state, 1.0) == ("notification", "b", 0)
    assert shown(state, 2.0) == ("notification", "c", 0)


def test_stack_false_replaces_the_showing_one_for_good():
    state = layers()
    state.notify(note(10, id="a"), 0.0)
    assert state.notify(note(10, id="b", stack=False), 0.3).position == 0
    assert shown(state, 0.3) == ("notification", "b", 0)
    assert shown(state, 1.3)[0] == "base"
    assert [held.id for held in state.held()] == []


def test_lower_priority_waits_behind_the_higher_ones():
    state = layers()
    state.notify(note(10, id="a", priority=5), 0.0)
    assert state.notify(note(10, id="low", priority=2), 0.1).position == 1
    assert state.notify(note(10, id="mid", priority=4), 0.2).position == 1
    assert [held.id for held in state.waiting] == ["mid", "low"]


def test_an_interrupted_one_goes_to_the_head_of_its_priority():
    state = layers()
    state.notify(note(10, id="a", priority=5), 0.0)
    state.notify(note(10, id="b", priority=5), 0.1)
    state.notify(note(10, id="top", priority=9), 0.2)
    assert [held.id for held in state.waiting] == ["a", "b"]


def test_the_queue_limit_refuses_with_a_sentence():
    state = layers(queue_limit=2)
    state.notify(note(10, id="a"), 0.0)
    state.notify(note(10, id="b"), 0.0)
    with pytest.raises(DisplayRefused, match=r"already holds 2 notifications \(queue_limit 2\)$"):
        state.notify(note(10, id="c"), 0.0)
    state.notify(note(10, id="d", stack=False), 0.0)  # a replacement takes no room
    assert [held.id for held in state.held()] == ["d", "b"]


def test_the_queue_bytes_refuse_with_a_sentence():
    state = layers(queue_bytes=100)
    state.notify(note(10, id="big", size=150), 0.0)  # one always fits
    with pytest.raises(DisplayRefused, match="150 bytes of notifications and this one's 10 would pass queue_bytes 100"):
        state.notify(note(10, size=10), 0.0)


def test_ids_are_given_and_must_be_unique():
    state = layers()
    assert state.notify(note(10), 0.0).id == "n1"
    assert state.notify(note(10), 0.0).id == "n2"
    state.notify(note(10, id="mine"), 0.0)
    with pytest.raises(DisplayRefused, match="'mine' is already queued"):
        state.notify(note(10, id="mine"), 0.0)


def test_dismiss_current_by_id_and_all():
    state = layers()
    for name in "abcd":
        state.notify(note(10, id=name), 0.0)
    assert state.dismiss("c", 0.1) == 1
    assert state.dismiss("current", 0.2) == 1
    assert shown(state, 0.2) == ("notification", "b", 0)
    assert state.dismiss("b", 0.3) == 1
    assert shown(state, 0.3) == ("notification", "d", 0)
    with pytest.raises(DisplayRefused, match="no notification with id 'zz'"):
        state.dismiss("zz", 0.3)
    state.notify(note(10, id="e"), 0.3)
    assert state.dismiss("all", 0.4) == 2
    assert state.dismiss("current", 0.4) == 0
    assert shown(state, 0.4)[0] == "base"


# -- the idle layer and the app loop -------------------------------------------------------------


def app(name: str, duration: float, frames: int | None = None, **options) -> App:
    return App(name, scroll(frames) if frames else Content(text=None), duration=duration, **options)


def test_idle_blank_and_base():
    assert shown(layers(idle="blank"), 0.0)[0] == "blank"
    assert shown(layers(idle="base"), 0.0)[0] == "base"
    assert shown(layers(idle="loop"), 0.0)[0] == "base"  # no apps
    assert shown(layers(idle="base", apps=(app("a", 2.0),)), 0.0)[0] == "base"


def test_the_app_loop_turns_in_order_and_loops():
    state = layers(apps=(app("a", 2.0), app("b", 3.0, frames=10)))
    showing, next_change = at(state, 0.0)
    assert (showing.key, next_change) == ("a", 2.0)
    assert shown(state, 2.0) == ("app", "b", 0)
    assert shown(state, 3.25) == ("app", "b", 2)  # scrolls, repeating, for its duration
    assert at(state, 4.95)[1] == pytest.approx(5.0)
    assert shown(state, 5.0) == ("app", "a", 0)
    assert shown(state, 7.0) == ("app", "b", 0)
    assert shown(state, 5000.5) == ("app", "a", 0)  # after a long sleep, still in step


def test_a_notification_pauses_the_loop_which_comes_back_from_that_apps_start():
    state = layers(apps=(app("a", 2.0), app("b", 3.0, frames=10)))
    assert shown(state, 0.0) == ("app", "a", 0)
    assert shown(state, 2.5) == ("app", "b", 5)
    state.notify(note(10, id="n"), 2.5)
    assert shown(state, 3.0) == ("notification", "n", 5)
    assert shown(state, 3.5) == ("app", "b", 0)
    assert shown(state, 6.5) == ("app", "a", 0)


def test_a_zero_duration_app_still_lets_the_loop_move_on():
    state = layers(apps=(app("zero", 0.0), app("b", 1.0)))
    assert shown(state, 0.0) == ("app", "zero", 0)
    assert shown(state, 0.1) == ("app", "b", 0)
    assert shown(state, 1.1) == ("app", "zero", 0)


def test_apps_are_filled_when_they_come_up():
    filled = []

    def resolve(app, now):
        filled.append((app.name, now))
        return app.content

    state = Layers(DisplayConfig(apps=(app("a", 2.0), app("b", 2.0))), frames_of, resolve)
    for now in (0.0, 1.0, 2.0, 3.0, 4.0):
        at(state, now)
    assert filled == [("a", 0.0), ("b", 2.0), ("a", 4.0)]


def test_set_app_replaces_in_place_and_refuses_past_the_limit():
    state = layers(apps=(app("a", 2.0),))
    state.set_app(app("b", 1.0), 0.0)
    state.set_app(app("a", 4.0), 0.0)
    assert list(state.apps) == ["a", "b"] and state.apps["a"].app.duration == 4.0
    for number in range(MAX_APPS - 2):
        state.set_app(app(f"x{number}", 1.0), 0.0)
    with pytest.raises(DisplayRefused, match=f"already has {MAX_APPS} apps"):
        state.set_app(app("one too many", 1.0), 0.0)
    assert state.remove_app("b", 0.0) is True
    assert state.remove_app("b", 0.0) is False


def test_reconfigure_replaces_config_apps_and_keeps_runtime_ones():
    state = layers(apps=(app("a", 2.0), app("b", 2.0)))
    state.set_app(app("r", 2.0), 0.0, runtime=True)
    state.reconfigure(DisplayConfig(apps=(app("c", 2.0), app("r", 9.0))), 1.0)
    assert list(state.apps) == ["c", "r"]
    assert state.apps["r"].runtime and state.apps["r"].app.duration == 2.0
    assert [runtime.name for runtime in state.runtime_apps()] == ["r"]


def test_lifetime_drops_or_marks_stale():
    state = layers()
    state.set_app(app("gone", 2.0, lifetime=10.0), 0.0)
    state.set_app(app("old", 2.0, lifetime=5.0, lifetime_mode="stale"), 0.0)
    assert shown(state, 0.0) == ("app", "gone", 0)
    assert at(state, 4.0)[1] == 5.0  # the lifetime expiry comes before the turn at 6
    at(state, 5.0)
    assert state.apps["old"].stale
    showing, _ = at(state, 6.0)
    assert (showing.key, showing.stale) == ("old", True)
    at(state, 10.0)
    assert list(state.apps) == ["old"]
    state.set_app(app("old", 2.0, lifetime=5.0, lifetime_mode="stale"), 11.0)
    assert not state.apps["old"].stale


# -- indicators -------------------------------------------------------------------------------


def test_a_blinking_indicator_is_lit_every_other_half_period_from_when_it_was_set():
    blinking = Indicator(2, (255, 0, 0), blink=0.5)
    assert indicator_lit(blinking, 1.0, 1.2) == (True, 1.5)
    assert indicator_lit(blinking, 1.0, 1.5) == (False, 2.0)
    assert indicator_lit(blinking, 1.0, 2.0) == (True, 2.5)
    assert indicator_lit(Indicator(1, (0, 0, 255)), 1.0, 99.0) == (True, None)


def test_indicators_sit_on_every_layer_and_time_the_next_change():
    state = layers()
    state.set_indicator(Indicator(3, (0, 255, 0)), 0.0)
    state.set_indicator(Indicator(1, (255, 0, 0), blink=1.0), 0.0)
    showing, next_change = at(state, 0.0)
    assert ([i.number for i in showing.indicators], next_change) == ([1, 3], 1.0)
    state.notify(note(None, id="still"), 0.5)
    showing, next_change = at(state, 1.2)
    assert (showing.layer, [i.number for i in showing.indicators], next_change) == ("notification", [3], 2.0)
    state.clear_indicator(3)
    assert at(state, 2.0)[0].indicators == (Indicator(1, (255, 0, 0), blink=1.0),)


def test_frame_at_boundaries_land_on_the_clock():
    assert frame_at(10, 0.1, 0.3, None) == (3, pytest.approx(0.4))
    assert frame_at(10, 0.1, 2.9999999999, None)[0] == 0
    assert frame_at(1, 0.1, 7.0, None) == (0, None)
    assert frame_at(4, 0.5, 1.5, 1) == (3, None)
    assert frame_at(4, 0.0, 1.5, None) == (0, None)


# -- properties over any sequence of requests --------------------------------------------------

requests = st.lists(
    st.tuples(
        st.sampled_from(["notify", "notify", "notify", "dismiss", "press", "tick"]),
        st.integers(0, 9),  # priority
        st.sampled_from([None, 1, 3]),  # frames (None: still)
        st.booleans(),  # hold
        st.booleans(),  # stack
        st.floats(0.0, 3.0).map(lambda step: round(step, 2)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(requests)
def test_the_showing_notification_is_always_the_highest_priority_and_ended_ones_never_return(sequence):
    state = layers(queue_limit=8)
    now, count, ended = 0.0, 0, set()
    last_current = None
    for kind, priority, frames, hold, stack, step in sequence:
        now += step
        held_before = {held.id for held in state.held()}
        if kind == "notify":
            count += 1
            try:
                state.notify(note(frames, id=f"m{count}", priority=priority, hold=hold, stack=stack), now)
            except DisplayRefused:
                pass
        elif kind == "dismiss":
            state.dismiss("current", now)
        elif kind == "press":
            state.press_middle(now)
        else:
            state.advance(now)
        held_after = {held.id for held in state.held()}
        ended |= held_before - held_after
        assert not held_after & ended, "a finished notification came back"
        current = state.current
        if current is not None:
            assert all(current.priority >= waiting.priority for waiting in state.waiting)
            if current is not last_current:
                assert decide(state, now)[0].frame == 0 or current.started < now
        priorities = [waiting.priority for waiting in state.waiting]
        assert priorities == sorted(priorities, reverse=True)
        assert len(state.held()) <= 8
        last_current = current


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8), st.floats(0.0, 0.95).map(lambda step: round(step, 2)), st.integers(1, 9))
def test_an_interrupted_notification_comes_back_from_frame_0(low, interrupted_at, high_gap):
    state = layers()
    state.notify(note(10, id="low", priority=low), 0.0)
    state.notify(note(5, id="high", priority=min(9, low + high_gap)), interrupted_at)
    back = interrupted_at + 0.5
    showing, _ = at(state, back)
    assert (showing.key, showing.frame) == ("low", 0)
    assert state.current.started == pytest.approx(back)
