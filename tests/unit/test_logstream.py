"""Progress bars redrawn with '\\r' reach the platform's log view as a few lines."""

from __future__ import annotations

from pictrain.platform.logstream import ProgressCollapser


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bar(step: int, total: int = 500) -> str:
    return f"\r\x1b[K        1/1      box_loss 1.2: {100 * step // total}% ━━━━ {step}/{total}"


def test_a_redrawn_bar_collapses_to_its_final_state() -> None:
    collapser = ProgressCollapser(interval=15.0, clock=Clock())
    lines: list[str] = []
    for step in range(1, 501):
        lines += collapser.feed(bar(step))
    lines += collapser.feed("\n")
    assert [line.text.strip() for line in lines] == ["1/1      box_loss 1.2: 100% ━━━━ 500/500"]
    assert not any("\r" in line.text or "\x1b" in line.text for line in lines)


def test_a_long_bar_shows_progress_once_per_interval() -> None:
    clock = Clock()
    collapser = ProgressCollapser(interval=15.0, clock=clock)
    lines: list[str] = []
    for step in range(1, 501):
        clock.now = step * 0.5  # 250 s for the whole bar
        lines += collapser.feed(bar(step))
    lines += collapser.close()
    assert 10 <= len(lines) <= 20, len(lines)
    assert lines[-1].text.endswith("500/500") and not lines[-1].partial
    assert all(line.partial for line in lines[:-1])  # each redraws the one before, in place
    assert len(set(lines)) == len(lines)


def test_chunks_split_anywhere_give_whole_lines() -> None:
    collapser = ProgressCollapser(clock=Clock())
    text = "first line\nsecond\r second redrawn\nthird"
    lines = [line for char in text for line in collapser.feed(char)]
    assert lines == [("first line", False), (" second redrawn", False)]
    assert collapser.close() == [("third", False)]
    assert collapser.close() == []


def test_blank_lines_and_colours_are_dropped() -> None:
    collapser = ProgressCollapser(clock=Clock())
    lines = collapser.feed("\x1b[34m\x1b[1mtrain: \x1b[0mScanning\n\n   \n")
    assert lines == [("train: Scanning", False)]
