"""The local runner end to end: the emulator changes, a cycle syncs it into a real SQLite store, reads
the change log, matches triggers and segment filters, enrols records and runs their plays."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from closeflow._clock import FakeClock
from closeflow.actions import SqliteLedger
from closeflow.close import CloseClient
from closeflow.emulator import Emulator
from closeflow.plays import CycleReport, RunLedger, load_folder, open_run_ledger, run_cycle, run_forever
from closeflow.sync import Store, open_store

LOG_NODES = """
nodes:
  - {id: note, type: set, vars: {seen: {path: record.id}}}
  - {id: done, type: end}
"""


@dataclass
class World:
    emu: Emulator
    client: CloseClient
    store: Store
    ledger: RunLedger
    writes: SqliteLedger
    clock: FakeClock
    folder: Path

    def play(self, name: str, body: str) -> None:
        text = f"kind: play\nname: {name}\n" + textwrap.dedent(body).strip() + "\n" + LOG_NODES
        (self.folder / f"{name}.yaml").write_text(text, encoding="utf-8")

    async def cycle(self, **options: Any) -> CycleReport:
        self.clock.advance(5)  # a new moment, as between two real cycles
        return await run_cycle(
            load_folder(self.folder),
            store=self.store,
            client=self.client,
            ledger=self.ledger,
            write_ledger=self.writes,
            clock=self.clock,
            **options,
        )

    async def set_status(self, lead_id: str, label: str) -> None:
        statuses = (await self.client.get("/status/lead/"))["data"]
        status_id = next(s["id"] for s in statuses if s["label"] == label)
        self.clock.advance(1)
        await self.client.put(f"/lead/{lead_id}/", json={"status_id": status_id})

    def lead_ids(self, status: str | None = None) -> list[str]:
        leads = self.emu.org.leads.values()
        return sorted(r["id"] for r in leads if status is None or r["status_label"] == status)

    def runs(self, play: str) -> list[Any]:
        return self.ledger.runs(play=play, limit=10_000)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "plays").mkdir()
    return tmp_path / "plays"


@pytest.fixture
async def world(tmp_path: Path, folder: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    emu = Emulator(clock=clock, seed=5, leads=12)
    db = str(tmp_path / "closeflow.db")
    store, ledger, writes = open_store(db), open_run_ledger(db, clock=clock), SqliteLedger(db)
    client = CloseClient(emu.api_key, base_url=emu.base_url, transport=emu.transport(), clock=clock)
    async with client:
        yield World(emu, client, store, ledger, writes, clock, folder)
    writes.close()
    ledger.close()
    store.close()


async def test_added_trigger_enrols_every_synced_lead_once(world: World) -> None:
    world.play("welcome", "trigger: {model: leads, on: [added]}\nschedule: after_sync")
    first = await world.cycle()
    assert first.plays["welcome"].enrolled == 12
    assert first.plays["welcome"].count("succeeded") == 12
    assert sorted(r.record_id for r in world.runs("welcome")) == world.lead_ids()
    second = await world.cycle()  # nothing new in the change log: the cursor moved past it
    assert second.plays["welcome"].changes == 0
    assert second.plays["welcome"].enrolled == 0
    assert len(world.runs("welcome")) == 12


async def test_segment_filter_is_evaluated_on_the_stored_record(world: World) -> None:
    world.play(
        "customers",
        "trigger: {model: leads, on: [added], where: 'status_label = \"Customer\"'}\nschedule: after_sync",
    )
    await world.cycle()
    assert sorted(r.record_id for r in world.runs("customers")) == world.lead_ids("Customer")
    assert 0 < len(world.runs("customers")) < 12


async def test_segment_filter_resolves_custom_fields_by_name(world: World) -> None:
    world.play("inbound", 'trigger: {model: leads, on: [added], where: \'custom."Source" = "Inbound"\'}')
    await world.cycle()
    field_id = next(i for i, d in world.emu.org.custom_fields["lead"].items() if d["name"] == "Source")
    expected = sorted(
        r["id"] for r in world.emu.org.leads.values() if r.get(f"custom.{field_id}") == "Inbound"
    )
    assert expected, "the seed should have some Inbound leads"
    assert sorted(r.record_id for r in world.runs("inbound")) == expected


async def test_field_change_trigger_sees_before_and_after(world: World) -> None:
    world.play(
        "qualified",
        """
        trigger:
          model: leads
          on: [updated]
          changed: [status_label]
          where: 'status_label = "Qualified"'
          when: "{{ change.before.status_label == 'Potential' }}"
        """,
    )
    await world.cycle()
    potential, bad_fit = world.lead_ids("Potential")[:2], world.lead_ids("Bad Fit")[:1]
    for lead_id in [*potential, *bad_fit]:
        await world.set_status(lead_id, "Qualified")
    await world.set_status(world.lead_ids("Customer")[0], "Potential")  # changed, but not into the segment
    report = await world.cycle()
    assert report.plays["qualified"].enrolled == 2  # Bad Fit → Qualified fails the `when`
    runs = world.runs("qualified")
    assert sorted(r.record_id for r in runs) == sorted(potential)
    assert {r.context["change"]["before"]["status_label"] for r in runs} == {"Potential"}
    assert {r.context["record"]["status_label"] for r in runs} == {"Qualified"}


async def test_removed_trigger_sees_the_record_before_it_was_deleted(world: World) -> None:
    world.play("gone", "trigger: {model: leads, on: [removed]}")
    await world.cycle()
    victim = world.lead_ids()[0]
    name = world.emu.org.leads[victim]["display_name"]
    world.clock.advance(1)
    await world.client.delete(f"/lead/{victim}/")
    report = await world.cycle()
    assert report.plays["gone"].enrolled == 1
    [run] = world.runs("gone")
    assert (run.record_id, run.status, run.context["record"]["display_name"]) == (victim, "succeeded", name)


@pytest.mark.parametrize(("mode", "expected_runs"), [("once", 1), ("every_change", 2)])
async def test_enrolment_once_versus_every_change(world: World, mode: str, expected_runs: int) -> None:
    world.play(
        "status",
        f"trigger: {{model: leads, on: [updated], changed: [status_label]}}\nenrolment: {{mode: {mode}}}",
    )
    await world.cycle()
    lead = world.lead_ids("Potential")[0]
    await world.set_status(lead, "Qualified")
    await world.cycle()
    await world.set_status(lead, "Customer")
    await world.cycle()
    runs = world.runs("status")
    assert [r.record_id for r in runs] == [lead] * expected_runs
    assert all(r.status == "succeeded" for r in runs)


async def test_max_records_per_run_leaves_the_rest_for_the_next_cycle(world: World) -> None:
    world.play(
        "capped", "trigger: {model: leads, on: [added]}\nenrolment: {batch_size: 2, max_records_per_run: 5}"
    )
    counts = [(await world.cycle()).plays["capped"].enrolled for _ in range(4)]
    assert counts == [5, 5, 2, 0]
    assert sorted(r.record_id for r in world.runs("capped")) == world.lead_ids()


async def test_a_killed_runners_unfinished_runs_are_resumed_first(world: World) -> None:
    world.play("welcome", "trigger: {model: leads, on: [added]}")
    await world.cycle(plays=[])  # sync only: the play has not looked at the change log yet
    change = world.store.changes(0, model="leads", limit=1)[0]
    # What a runner killed right after enrolment leaves behind: a pending run, the cursor unmoved.
    orphan = world.ledger.enrol_run(
        play="welcome",
        record_id=change.record_id,
        change_seq=change.seq,
        mode="once",
        trigger=change.as_dict(),
        context={"record": change.after, "change": change.as_dict(), "vars": {}},
    )
    assert orphan is not None
    report = await world.cycle()
    assert report.resumed == 1
    assert world.ledger.run(orphan).status == "succeeded"  # type: ignore[union-attr]
    assert report.plays["welcome"].enrolled == 11  # the orphan's record is not enrolled a second time
    assert report.plays["welcome"].already_enrolled == 1
    assert len(world.runs("welcome")) == 12


async def test_schedules_every_manual_and_cron(world: World) -> None:
    world.play("hourly", "trigger: {model: leads, on: [added]}\nschedule: {every: 1h}")
    world.play("by-hand", "trigger: {model: leads, on: [added]}\nschedule: manual")
    world.play("nightly", "trigger: {model: leads, on: [added]}\nschedule: {cron: '0 3 * * *'}")
    first = await world.cycle()  # 2026-01-01 00:00 UTC: every and cron plays run on their first cycle
    assert {name: c.due for name, c in first.plays.items()} == {
        "hourly": True,
        "by-hand": False,
        "nightly": True,
    }
    assert world.runs("by-hand") == []
    second = await world.cycle()
    assert (second.plays["hourly"].due, second.plays["nightly"].due) == (False, False)
    world.clock.advance(3 * 3600)  # past 03:00 and past the hour
    third = await world.cycle()
    assert (third.plays["hourly"].due, third.plays["nightly"].due) == (True, True)
    manual = await world.cycle(plays=["by-hand"], ignore_schedule=True, sync_first=False)
    assert manual.plays["by-hand"].enrolled == 12


async def test_run_forever_runs_a_cycle_per_interval_on_the_fake_clock(world: World) -> None:
    world.play("welcome", "trigger: {model: leads, on: [added]}")
    start = world.clock.now()
    reports = await run_forever(
        load_folder(world.folder),
        every=300,
        cycles=3,
        store=world.store,
        client=world.client,
        ledger=world.ledger,
        write_ledger=world.writes,
        clock=world.clock,
    )
    assert [r.plays["welcome"].enrolled for r in reports] == [12, 0, 0]
    assert world.clock.now() - start >= 600


async def test_dry_run_sends_no_writes(world: World) -> None:
    (world.folder / "touch.yaml").write_text(
        textwrap.dedent(
            """
            kind: play
            name: touch
            trigger: {model: leads, on: [added]}
            nodes:
              - id: rename
                type: action
                action: update_leads
                config: {match_property: id, match_value: id, mappings: {name: name}}
                record: {id: {path: record.id}, name: "{{ record.display_name }} (touched)"}
            """
        ),
        encoding="utf-8",
    )
    await world.cycle(plays=[])
    writes_before = sum(world.emu.requests(method) for method in ("POST", "PUT", "DELETE"))
    searches_before = world.emu.requests("POST", "/data/search/")
    report = await world.cycle(plays=["touch"], sync_first=False, dry_run=True, limit=3)
    assert report.plays["touch"].enrolled == 3
    assert [r.status for r in report.runs] == ["succeeded"] * 3
    searches = world.emu.requests("POST", "/data/search/") - searches_before
    assert sum(world.emu.requests(method) for method in ("POST", "PUT", "DELETE")) - writes_before == searches
    assert world.emu.requests("PUT") == 0


async def test_a_trigger_expression_error_skips_that_change_and_the_play_moves_on(world: World) -> None:
    # `change.before` of an added lead is {}; `.status_label.upper()` on it fails for that change only.
    world.play(
        "fragile",
        """
        trigger:
          model: leads
          on: [added]
          when: "{{ change.before.status_label.upper() == 'POTENTIAL' }}"
        """,
    )
    first = await world.cycle()
    counts = first.plays["fragile"]
    assert (counts.changes, counts.trigger_errors, counts.enrolled) == (12, 12, 0)
    assert "change " in (counts.error or "")
    assert world.ledger.cursor("fragile") > 0  # moved past the changes it could not evaluate
    second = await world.cycle()
    assert (second.plays["fragile"].changes, second.plays["fragile"].error) == (0, None)
