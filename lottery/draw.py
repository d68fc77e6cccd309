"""The draw: who wins a gift, decided once, verifiably, whatever crashes in between.

A draw is a state machine on the gift document, each step one idempotent write:

    open|ready --take--> drawing --freeze--> (proof, outbox) --finish--> finished --copy--> winners on joins

- take: one conditional update moves the due gifts to `drawing` under this batch's lease; a
  process that dies mid-draw leaves a lease that lapses, and the next taker resumes the draw.
- freeze: the participant list is frozen once (`proofs`); the winners follow from the committed
  seed, so a resumed draw commits the same winners. The outbox records of what must follow the
  finish are written before it.
- finish: the update that moves the gift to `finished` commits the result, `draw.winners`.
- copy: the winners' join records get `won` and their item `outcome_delay` (2 s) later; readers
  take the result from the gift (the other joins lost). The sweep finishes a copy whose process died (`record_outcomes`).

Gifts due together are drawn as one batch: the same handful of database commands serve one
gift or two hundred, which keeps many openings due in the same second on time (a backlog goes
in batches of `batch_size`). Batching and background tasks live in lottery/background.py."""
import asyncio
import logging
import secrets
import time
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from lottery import clock, fairness, logs, metrics
from lottery.backoff import database_away
from lottery.background import Background, Batches
from lottery.beacon import Beacon
from lottery.receipts import ReceiptKey
from lottery.errors import Forbidden, GiftNotFound, GiftOpened, NotOpenable, NotOpenedYet
from lottery.admission import SETTLE_SECONDS, is_live
from lottery.gifts import item_tiers
from lottery.read_ahead import AT_LEAST, EarlyList, ReadAhead
from lottery.storage import gifts, joins, leases, outbox, proofs, sequences

log = logging.getLogger(__name__)

# Outbox records written before a drawn gift's finish: its messages and its winners' claims,
# while its beacon round is awaited (their consumers wait for the finish); the copy of its
# outcomes once the round is there (the sweep takes an old pending copy for a stalled one).
WHILE_AWAITING_ROUND = ("gift_opened", "open_claims")
BEFORE_FINISH = ("record_outcomes",)


def freeze_view(proof: dict) -> dict:
    """What a gift publishes when its participant list is frozen, before its beacon round exists."""
    view = {"participants_hash": proof["participants_hash"], "participant_count": len(proof["participants"]),
            "frozen_at": clock.iso(proof.get("frozen_at") or proof["created_at"])}
    if "beacon" in proof:
        view["beacon_round"] = proof["beacon"]["round"]
    return view


def not_won(gift: dict, summary: dict) -> dict[int, int]:
    """A bought gift's items nobody won, by index, with their prices (to refund); none for a
    gift the operator gave."""
    if "order" not in gift:
        return {}
    return {i: gift["items"][i].get("price", 0) for i in summary["returned"] if gift["items"][i].get("price")}


class Draws:
    """Opens gifts: on the last seat, when due, at the sender's request, or resuming."""

    def __init__(self, db: AsyncDatabase, beacon: Beacon, receipt_key: ReceiptKey, lease: timedelta = timedelta(seconds=30),
                 settle_timeout: float = SETTLE_SECONDS, batch_window: float = 0.02, batch_size: int = 500,
                 outcome_delay: float = 2.0, beacon_wait: float = 10.0, read_ahead_at_least: int = AT_LEAST) -> None:
        self.db = db
        self.beacon = beacon
        self.receipt_key = receipt_key  # signs the receipts of joins the draw numbers
        self.beacon_wait = beacon_wait  # how long one attempt waits for a round
        self.lease = lease
        self.settle_timeout = settle_timeout
        self.batch_size = batch_size
        self.outcome_delay = outcome_delay
        self.owner = leases.owner_id()
        self.background = Background()
        # Whatever is due rides along with what was asked for: when two hundred jobs fire in
        # the same second, the first batch opens them all and the rest find nothing to do.
        self._batches = Batches(lambda _asked: self.open(), self.background, batch_window)
        self._copying: set[str] = set()  # gifts whose outcomes this process is copying
        self._tokens: set[str] = set()  # leases of the draws under way in this process
        self.read_ahead = ReadAhead(db, read_ahead_at_least)  # big timed gifts' records, read before their time

    # Entry points

    def open_soon(self, order_id: str) -> None:
        """Draw in the background, batched with whatever else comes due meanwhile (the joiner
        who took the last seat, or a scheduler job, does not wait)."""
        self._batches.add(order_id)

    def read_ahead_soon(self, order_id: str) -> None:
        """Read a big timed gift's join records in the background, shortly before its open
        time, so its draw reads only what comes after (lottery/read_ahead.py)."""
        self.background.spawn(self.read_ahead.read(order_id))

    async def open(self, order_ids: list[str] | None = None, early: bool = False) -> list[str]:
        """Take the due ones among these gifts (None: every due gift; `early`: also open
        full and timed gifts not due yet) and draw them; returns those this call finished."""
        now = clock.utcnow()
        token = f"{self.owner}:{secrets.token_hex(4)}"  # this call's lease
        self._tokens.add(token)
        try:
            taken = await gifts.take(self.db, order_ids, token, now, now + self.lease, early)
            finished: list[str] = []
            for start in range(0, len(taken), self.batch_size):
                if start:  # a backlog (say, after an outage): keep the rest leased meanwhile
                    await gifts.extend_lease(self.db, token, clock.utcnow() + self.lease)
                finished += await self._draw_batch(taken[start:start + self.batch_size])
        except asyncio.CancelledError:
            raise  # stopped by a shutdown: its token stays listed, for hand_over()
        except BaseException:
            self._tokens.discard(token)
            raise
        self._tokens.discard(token)
        return finished

    async def hand_over(self) -> None:
        """At shutdown, after idle(): the leases of draws stopped here lapse now, so another
        process resumes them at its next sweep instead of a lease later."""
        for token in list(self._tokens):
            await gifts.extend_lease(self.db, token, clock.utcnow())
            log.info("draw lease %s handed over", token)

    async def open_early(self, order_id: str, member_id: str) -> None:
        """The sender opens their full or timed gift now, among whoever joined."""
        gift = await gifts.get(self.db, order_id)
        if not is_live(gift):
            raise GiftNotFound()
        if gift["sender_id"] != member_id:
            raise Forbidden("只有发起人可以提前开奖")
        if gift["method"] == "direct":
            raise NotOpenable()
        if not await self.open([order_id], early=True):
            raise GiftOpened()

    async def sweep(self) -> int:
        """Draw every gift that is due or whose draw stalled, and finish outcome copies whose
        process died. Returns how many gifts it opened."""
        now = clock.utcnow()
        self.read_ahead.forget_unused(now)
        opened = 0
        try:
            # While a batch is queued or drawing here, the sweep leaves what is due to the next
            # round: its take would only compete with the batch's writes (the embedded engine
            # serves one write at a time; measured, docs/benchmarks.md).
            if not self._batches.busy:
                opened = len(await self.open())
        except Exception as exc:
            if database_away(exc):
                raise  # the scheduler's round ends and backs off; the lease lapses and a sweep resumes
            log.exception("draw batch failed; the next sweep retries")
        stalled = await outbox.pending_before(self.db, "record_outcomes", now - self.lease, limit=100)
        if stalled:
            await self.record_outcomes(await gifts.drawn_winners(self.db, stalled))
        return opened

    async def proof(self, order_id: str) -> dict:
        """The public fairness proof of an opened gift."""
        gift = await gifts.get(self.db, order_id)
        if not is_live(gift):
            raise GiftNotFound()
        if gift["status"] != "finished":
            raise NotOpenedYet()
        proof = await proofs.get(self.db, order_id)
        if proof is None:
            raise NotOpenedYet()
        view = {
            "algorithm": proof["algorithm"], "version": proof["version"], "order_id": order_id,
            "seed_commitment": proof["seed_commitment"], "seed": proof["seed"],
            "participants": proof["participants"], "participants_hash": proof["participants_hash"],
            "items": proof["items"], "items_hash": proof["items_hash"], "winners": proof["winners"],
            **({"tiers": proof["tiers"]} if "tiers" in proof else {}),
            "opened_at": clock.iso(gift.get("opened_at")),
        }
        if proof["version"] >= 2:
            view.update(frozen_at=clock.iso(proof["frozen_at"]), beacon=proof["beacon"], sequences=proof["sequences"])
        return view

    async def idle(self, timeout: float | None = None) -> bool:
        """Finish the background work now (queued draws; outcome copies, without their delay)
        and wait for it. With a timeout (shutdown), what is left is cancelled: the sweep
        finishes it from the outbox. True if everything finished."""
        return await self.background.idle(timeout)

    async def record_outcomes(self, winners: dict[str, list[str]], delay: float = 0.0) -> None:
        """Copy the committed result of these finished gifts onto the join records: each
        winner's `won` and item. The other joins keep `outcome: null`: a finished drawn gift's
        join that did not win lost, and every reader takes the result from the gift's
        `draw.winners` (writing `lost` on 99,000 records took minutes on the embedded engine
        and nobody read it). This comes after the finish so a batch of gifts due together does
        not wait for it; `delay` lets the result's push and the reads it triggers go first
        (idle() cuts it short)."""
        winners = {o: w for o, w in winners.items() if o not in self._copying}
        if not winners:
            return
        self._copying.update(winners)  # the sweep leaves this process's own copies alone
        try:
            await self.background.pause(delay)
            await self._write_winners([(order_id, member_id, index) for order_id, members in winners.items()
                                       for index, member_id in enumerate(members)])
            await outbox.mark_done(self.db, "record_outcomes", list(winners), clock.utcnow())
        finally:
            self._copying.difference_update(winners)

    # The transitions

    async def _draw_batch(self, taken: list[dict]) -> list[str]:
        """freeze -> beacon -> finish -> (background) copy, for gifts this process has taken. A
        direct gift taken at its deadline has no draw: its joiners already hold their items, and
        it finishes with the rest returned. A drawn gift whose beacon round does not come in time
        stays `drawing` and is handed back to the sweep."""
        started = time.monotonic()
        drawn = [g for g in taken if g["method"] != "direct"]
        participants, recorded = await self._participants(drawn)
        await joins.restore(self.db, [(g["_id"], m) for g in drawn for m in participants[g["_id"]]
                                      if m not in recorded[g["_id"]]], clock.utcnow())
        numbers = {g["_id"]: await self._numbered(g["_id"], participants[g["_id"]], recorded[g["_id"]],
                                                  seated=g["method"] == "full")
                   for g in drawn}
        frozen = await proofs.save(self.db, [self._freeze(g, numbers[g["_id"]]) for g in drawn])
        # Published (and pushed to the waiting pages) before the round it names exists.
        await gifts.publish_freezes(self.db, {o: freeze_view(p) for o, p in frozen.items()})
        # The database is idle while the round is awaited (up to a period: 3 s with quicknet).
        follow_ups = asyncio.ensure_future(self._record_follow_ups(drawn, WHILE_AWAITING_ROUND))
        try:
            frozen = await self._complete(drawn, frozen, participants)
        finally:
            await follow_ups
        waiting = [g["_id"] for g in drawn if g["_id"] not in frozen]
        if waiting:
            log.warning("%d gifts wait for their beacon round; a later sweep resumes them", len(waiting))
            await gifts.hand_back(self.db, waiting, clock.utcnow())
        drawn = [g for g in drawn if g["_id"] in frozen]
        taken = [g for g in taken if g["method"] == "direct" or g["_id"] in frozen]
        if not taken:
            return []
        await self._record_follow_ups(drawn, BEFORE_FINISH)
        summaries = {g["_id"]: self._summary(g, frozen[g["_id"]]["winner_member_ids"], frozen[g["_id"]])
                     for g in drawn}
        summaries.update({g["_id"]: self._summary(g, gifts.claimants(g)) for g in taken if g["method"] == "direct"})
        now = clock.utcnow()
        finished = await self._finish(summaries, {g["_id"]: not_won(g, summaries[g["_id"]]) for g in taken})
        methods = {g["_id"]: g for g in taken}
        for order_id in finished:
            gift = methods[order_id]
            with logs.bound(gift.get("ready_request_id") or logs.REQUEST_ID.get()):  # the join that filled it
                log.info("gift %s opened: %d participants, %d winners", order_id,
                         summaries[order_id]["participant_count"], len(summaries[order_id]["winners"]))
            metrics.DRAWS.labels(gift["method"]).inc()
            if gift["method"] == "timed" and gift.get("open_at"):
                metrics.OPEN_LATENESS_SECONDS.observe(max(0.0, (now - clock.as_utc(gift["open_at"])).total_seconds()))
        metrics.DRAW_SECONDS.observe(time.monotonic() - started)
        await sequences.forget(self.db, finished)  # no join is numbered after the finish
        self.background.spawn(self.record_outcomes(
            {o: summaries[o]["winners"] for o in finished if o in frozen}, self.outcome_delay))
        return finished

    async def _record_follow_ups(self, drawn: list[dict], kinds: tuple[str, ...]) -> None:
        """The outbox records of what must follow these gifts' finish (written before it)."""
        now = clock.utcnow()
        await outbox.add(self.db, [outbox.new_record(kind, g["_id"], now, g.get("ready_request_id"))
                                   for g in drawn for kind in kinds])

    async def _finish(self, summaries: dict[str, dict], refunds: dict[str, dict[int, int]]) -> list[str]:
        """The result, `draw.winners` (member ids in item order), committed with the finish, and
        a bought gift's items nobody won registered for refund; returns the gifts this call
        finished."""
        return await gifts.finish(self.db, summaries, clock.utcnow(), refunds)

    async def _write_winners(self, winners: list[tuple[str, str, int]]) -> None:
        await joins.write_winners(self.db, winners)

    async def _participants(self, taken: list[dict]) -> tuple[dict[str, list[str]], dict[str, dict[str, int | None]]]:
        """The participant list of each gift, and the members whose join record exists with
        their join's sequence number, by order id.

        Direct/full gifts: the claimants kept in the gift document (authoritative; a missing
        join record, from a process that died between its two writes, is restored).
        Timed: the join records, once they agree with the count.
        A join is two writes (the seat or count, then the record), so both wait briefly for
        records already in flight: the last seat of a full gift starts its draw while the
        joiners just before it are still writing theirs, and a record restored under them would
        answer them "already joined"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_timeout
        expected = {g["_id"]: g["joined_count"] if g["method"] == "timed" else len(g["claimants"]) for g in taken}
        early = self.read_ahead.take([g["_id"] for g in taken if g["method"] == "timed"])
        if early:
            log.info("gifts %s: from their records read ahead, and those made since", sorted(early))
        while True:
            recorded = await self._recorded([g["_id"] for g in taken], early)
            # Settled: every join has its record, and every record its number (a join takes its
            # number right after its record; the draw numbers only what a crash left without).
            unsettled = [o for o, count in expected.items() if len(recorded.get(o, ())) < count
                         or None in recorded.get(o, {}).values()]
            if loop.time() >= deadline and early.keys() & set(unsettled):
                # A record the early list cannot see (written late, with an earlier time than
                # it reads again)? Read those gifts' records whole.
                log.warning("gifts %s: the records read ahead fall short of the count; reading them whole",
                            sorted(early.keys() & set(unsettled)))
                early = {o: kept for o, kept in early.items() if o not in unsettled}
                continue
            if not unsettled or loop.time() >= deadline:
                break
            # Re-read the counts: a duplicate join gives its count back after the fact.
            expected.update(await gifts.joined_counts(self.db, unsettled))
            await asyncio.sleep(0.05)
        timed = {g["_id"] for g in taken if g["method"] == "timed"}
        for order_id in unsettled:
            then = "drawing among the records" if order_id in timed else "restoring the missing ones"
            log.warning("gift %s: %d join records for %d joins; %s", order_id,
                        len(recorded.get(order_id, ())), expected[order_id], then)
        participants = {g["_id"]: list(recorded.get(g["_id"], {})) if g["method"] == "timed" else gifts.claimants(g)
                        for g in taken}
        return participants, {g["_id"]: recorded.get(g["_id"], {}) for g in taken}

    async def _recorded(self, order_ids: list[str], early: dict[str, EarlyList]) -> dict[str, dict[str, int | None]]:
        """`joins.member_ids` of these gifts: from the list read ahead where there is one."""
        found = await joins.member_ids(self.db, [o for o in order_ids if o not in early])
        for order_id, kept in early.items():
            found[order_id] = await self.read_ahead.recorded(order_id, kept)
        return found

    async def _numbered(self, order_id: str, member_ids: list[str], recorded: dict[str, int | None],
                        seated: bool = False, attempts: int = 5) -> dict[str, int]:
        """Every participant's join sequence number, member id -> number. Joins a crash left
        without one (a record restored, or a process that died between the record and its number)
        are numbered now, gaps first, then after the last number handed out; their members never
        had a receipt, so any free number is theirs, and the list stays 1..P. `seated`: the
        member ids are a full gift's claimants in order, and each one's number is its seat."""
        numbers = {m: recorded.get(m) for m in member_ids}
        missing = sorted((m for m, n in numbers.items() if n is None), key=lambda m: fairness.pseudonym(order_id, m))
        if not missing:
            return numbers
        used = set(numbers.values())
        if seated:  # a full gift's join number is its seat: its claimant position, one-based
            free = [member_ids.index(m) + 1 for m in missing]
        else:
            free = [n for n in range(1, await sequences.last(self.db, order_id) + 1) if n not in used][:len(missing)]
        if len(free) < len(missing):
            last = await sequences.take(self.db, order_id, len(missing) - len(free))
            free += range(last - (len(missing) - len(free)) + 1, last + 1)
        numbered = [(m, n, self.receipt_key.sign(order_id, fairness.pseudonym(order_id, m), n)["signature"])
                    for m, n in zip(missing, free)]
        if await joins.bind_sequences(self.db, order_id, numbered):
            numbers.update((m, n) for m, n, _ in numbered)
            return numbers
        # A join numbered itself meanwhile (its own write came late; the database keeps each
        # number to one join): read them all again, and number what is still missing.
        if attempts <= 1:
            raise RuntimeError(f"gift {order_id}: its joins' numbers keep changing; the sweep resumes the draw")
        recorded = (await joins.member_ids(self.db, [order_id])).get(order_id, {})
        return await self._numbered(order_id, member_ids, recorded, seated, attempts - 1)

    def _freeze(self, gift: dict, numbers: dict[str, int]) -> dict:
        """The frozen participant list of this gift's draw (sorted pseudonyms, each with its join
        sequence number), with its time and the beacon round that time names; the winners come
        once that round is verified."""
        order_id = gift["_id"]
        by_pseudonym = {fairness.pseudonym(order_id, m): n for m, n in numbers.items()}
        participants = sorted(by_pseudonym)
        item_names = [item["name"] for item in gift["items"]]
        tiers = item_tiers(gift["items"])
        tiered = {} if tiers is None else {"tiers": tiers}  # a gift without tiers: the proof as before
        frozen_at = clock.utcnow()
        return {
            "_id": order_id, "algorithm": fairness.ALGORITHM, "version": fairness.VERSION,
            "seed_commitment": gift["seed_commitment"], "seed": gift["seed"],
            "participants": participants, "participants_hash": fairness.participants_hash(participants),
            "sequences": [by_pseudonym[p] for p in participants],
            "items": item_names, "items_hash": fairness.items_hash(item_names, tiers), **tiered,
            "frozen_at": frozen_at,
            "beacon": {"chain_hash": self.beacon.chain.chain_hash,
                       "round": self.beacon.round_for(frozen_at.timestamp())},
            "created_at": frozen_at,
        }

    async def _complete(self, drawn: list[dict], frozen: dict[str, dict],
                        participants: dict[str, list[str]]) -> dict[str, dict]:
        """The proofs whose winners are known: drawn before (a resumed draw), or now that their
        beacon round is verified (or, if the operator's policy allows, given up on). By order id."""
        done = {o: p for o, p in frozen.items() if "winners" in p}
        pending = [frozen[g["_id"]] for g in drawn if g["_id"] not in done]
        wanted = sorted({p["beacon"]["round"] for p in pending})
        found = await asyncio.gather(*(self.beacon.get(r, self.beacon_wait) for r in wanted))
        rounds = dict(zip(wanted, found))
        now = time.time()
        completed = []
        for proof in pending:
            got = rounds[proof["beacon"]["round"]]
            frozen_at = clock.as_utc(proof["frozen_at"]).timestamp()
            if got is not None:
                beacon = {**proof["beacon"], "status": "verified", "signature": got.signature,
                          "randomness": got.randomness}
            elif self.beacon.may_go_without(frozen_at, now):
                log.error("gift %s: no verified beacon round %d after %.0f s; drawing without it, as the "
                          "policy allows (the proof says so)", proof["_id"], proof["beacon"]["round"], now - frozen_at)
                beacon = {**proof["beacon"], "status": "unavailable", "policy": self.beacon.policy()}
            else:
                continue
            completed.append(self._winners(proof, beacon, participants[proof["_id"]]))
        done.update(await proofs.complete(self.db, completed))
        return done

    @staticmethod
    def _winners(proof: dict, beacon: dict, member_ids: list[str]) -> dict:
        """A frozen proof completed with its beacon and winners (and the winners' member ids,
        which never leave the server)."""
        order_id, participants = proof["_id"], proof["participants"]
        by_pseudonym = {fairness.pseudonym(order_id, m): m for m in member_ids}
        positions = fairness.draw(proof["seed"], order_id, participants, proof["items"], beacon, proof.get("tiers"))
        return {**proof, "beacon": beacon,
                "winners": [{"participant": participants[p], "item_index": i} for i, p in enumerate(positions)],
                "winner_member_ids": [by_pseudonym[participants[p]] for p in positions]}

    @staticmethod
    def _summary(gift: dict, winners: list[str], proof: dict | None = None) -> dict:
        """The committed result: winners in item order, the items nobody won, and (drawn gifts)
        what the proof commits to."""
        summary = {"winners": winners, "returned": list(range(len(winners), len(gift["items"]))),
                   "participant_count": len(proof["participants"]) if proof else len(winners)}
        if proof:
            summary.update(participants_hash=proof["participants_hash"],
                           algorithm=f"{proof['algorithm']}/v{proof['version']}")
        return summary
