import asyncio
import logging
from decimal import Decimal

import pytest

from bot.options.contracts import OptionContract
from bot.options.position_watcher import PositionWatcher
from tests.core.factories import quote


class Recorder:
    """A strategy's position handler that records what it is handed."""

    def __init__(self):
        self.updates: list[tuple[str, Decimal, int]] = []

    async def on_position_update(self, position, mark):
        self.updates.append((position.position_id, mark, position.qty))


class Crashing(Recorder):
    async def on_position_update(self, position, mark):
        await super().on_position_update(position, mark)
        raise RuntimeError("strategy bug")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def qqq():
    return OptionContract.parse("QQQ   261127P00510000")


async def open_for(manager, quotes, contract, strategy, qty=4):
    quotes.update(contract.symbol, quote("1.10", "1.20"))
    return await manager.open_position(contract, qty, strategy=strategy)


async def test_marks_reach_the_owning_strategy_mid_else_last(manager, quotes, spy, qqq):
    orb, meanrev = Recorder(), Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb, "mr": meanrev})
    call = await open_for(manager, quotes, spy, "orb")
    put = await open_for(manager, quotes, qqq, "mr")

    quotes.update(spy.symbol, quote("1.30", "1.40"))
    quotes.update(qqq.symbol, quote(None, "2.00", last="1.95"))
    await watcher.deliver_all()

    assert orb.updates[-1] == (call.position_id, Decimal("1.35"), 4)
    assert meanrev.updates[-1] == (put.position_id, Decimal("1.95"), 4)


async def test_positions_opened_while_running_are_picked_up_and_closed_ones_dropped(manager, quotes, spy):
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb})
    quotes.update(spy.symbol, quote("1.30", "1.40"))
    await watcher.deliver_all()
    assert orb.updates == []

    position = await open_for(manager, quotes, spy, "orb")
    quotes.update(spy.symbol, quote("1.30", "1.40"))
    await watcher.deliver_all()
    assert [u[0] for u in orb.updates] == [position.position_id]
    assert watcher.watched == 1

    await manager.close(position.position_id)
    quotes.update(spy.symbol, quote("1.50", "1.60"))
    await watcher.deliver_all()
    assert len(orb.updates) == 1
    assert watcher.watched == 0


async def test_positions_open_at_start_are_watched(manager, quotes, spy):
    position = await open_for(manager, quotes, spy, "orb")
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb})

    quotes.update(spy.symbol, quote("1.30", "1.40"))
    await watcher.deliver_all()

    assert orb.updates == [(position.position_id, Decimal("1.35"), 4)]


async def test_the_strategy_sees_the_position_as_it_is_now(manager, quotes, spy):
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb})
    position = await open_for(manager, quotes, spy, "orb")
    quotes.update(spy.symbol, quote("1.30", "1.40"))
    await manager.trim(position.position_id, qty=1)  # after the quote, before delivery

    await watcher.deliver_all()

    assert orb.updates[-1][2] == 3


async def test_manual_positions_and_unknown_strategies_are_not_streamed(manager, quotes, spy):
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb})
    await open_for(manager, quotes, spy, "manual")

    quotes.update(spy.symbol, quote("1.30", "1.40"))
    await watcher.deliver_all()

    assert orb.updates == []
    assert watcher.watched == 0


async def test_throttle_gives_at_most_one_update_per_interval_and_always_the_latest(manager, quotes, spy):
    clock = FakeClock()
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb}, interval=1.0, clock=clock)
    position = await open_for(manager, quotes, spy, "orb")

    quotes.update(spy.symbol, quote("1.30", "1.40"))
    assert await watcher.deliver_due("orb") is None
    clock.now += 0.2
    quotes.update(spy.symbol, quote("1.40", "1.50"))
    quotes.update(spy.symbol, quote("1.50", "1.60"))
    wait = await watcher.deliver_due("orb")
    assert wait == pytest.approx(0.8)
    assert [u[1] for u in orb.updates] == [Decimal("1.35")]

    clock.now += 0.8
    assert await watcher.deliver_due("orb") is None

    assert orb.updates == [(position.position_id, Decimal("1.35"), 4), (position.position_id, Decimal("1.55"), 4)]


async def test_without_throttle_bursts_still_coalesce_to_the_latest(manager, quotes, spy):
    orb = Recorder()
    watcher = PositionWatcher(manager, quotes, {"orb": orb})
    await open_for(manager, quotes, spy, "orb")

    for bid in ("1.30", "1.40", "1.50"):
        quotes.update(spy.symbol, quote(bid, bid))
    await watcher.deliver_all()

    assert [u[1] for u in orb.updates] == [Decimal("1.50")]


async def test_a_crashing_strategy_is_logged_with_the_position_and_keeps_its_updates(manager, quotes, spy, qqq, caplog):
    broken, healthy = Crashing(), Recorder()
    watcher = PositionWatcher(manager, quotes, {"broken": broken, "healthy": healthy})
    bad = await open_for(manager, quotes, spy, "broken")
    good = await open_for(manager, quotes, qqq, "healthy")

    with caplog.at_level(logging.ERROR):
        for price in ("1.30", "1.40"):
            quotes.update(spy.symbol, quote(price, price))
            quotes.update(qqq.symbol, quote(price, price))
            await watcher.deliver_all()

    assert [u[1] for u in broken.updates] == [Decimal("1.30"), Decimal("1.40")]
    assert [u[0] for u in healthy.updates] == [good.position_id] * 2
    assert f"strategy broken failed on an update of position {bad.position_id}" in caplog.text


async def test_a_slow_strategy_never_stalls_the_others(manager, quotes, spy, qqq):
    release = asyncio.Event()

    class Stuck(Recorder):
        async def on_position_update(self, position, mark):
            await super().on_position_update(position, mark)
            await release.wait()

    stuck, healthy = Stuck(), Recorder()
    watcher = PositionWatcher(manager, quotes, {"stuck": stuck, "healthy": healthy})
    await open_for(manager, quotes, spy, "stuck")
    await open_for(manager, quotes, qqq, "healthy")
    workers = [asyncio.create_task(watcher.run(name)) for name in ("stuck", "healthy")]
    try:
        for price in ("1.30", "1.40", "1.50"):
            quotes.update(spy.symbol, quote(price, price))
            quotes.update(qqq.symbol, quote(price, price))
            for _ in range(5):
                await asyncio.sleep(0)

        assert [u[1] for u in healthy.updates] == [Decimal("1.30"), Decimal("1.40"), Decimal("1.50")]
        assert [u[1] for u in stuck.updates] == [Decimal("1.30")]
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert [u[1] for u in stuck.updates] == [Decimal("1.30"), Decimal("1.50")]  # the latest, coalesced
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
