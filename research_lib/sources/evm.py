"""The EVM log indexer: chunked, adaptive, reorg-safe and resumable.

:class:`EvmIndexer` reads ``eth_getLogs`` for a set of contract addresses in block chunks and
stores the decoded Uniswap V2 (Swap, Sync, Mint, Burn), V3 (Swap, Mint, Burn, Collect) and
ERC20 Transfer events, stamped with their block's time, in the lake's ``evm_events`` dataset
(one leaf per chain, event and month; key ``(block, log_index)``). The headers it read go to
``evm_blocks``. Event layouts come from the npm artifacts' ABIs, so nothing is hand-typed.

- **Adaptive chunks.** A node that refuses a range as too large or as returning too many
  results (``-32005``, "query returned more than 10000 results", "block range too wide",
  ...) gets half the range, down to one block; after ``grow_after`` successes in a row the
  chunk doubles again, up to ``max_chunk_blocks``. Transport faults (timeouts, 5xx, dropped
  connections, bodies that are not JSON) are retried with backoff by the shared
  :class:`~research_lib.sources.http.HttpClient`.
- **Confirmations.** Only blocks at least ``confirmations`` below the head are indexed.
- **Reorg safety.** Every chunk checks that its first block's parent is the block the last
  chunk ended on, and that each log's block hash is the hash of the header read for it. A
  mismatch means the chain reorganised under us: the indexer walks back through the stored
  headers to the highest block still on the chain, deletes the scope's rows above it
  (``Lake.delete_rows``), and indexes forward again on the new branch.
- **Resumable.** A checkpoint (last block and hash) is written atomically after each chunk's
  rows. A run killed mid-chunk restarts from the checkpoint; rows past it are deleted first
  (they may be from an orphaned block) and merging on the key stores nothing twice.

Exact integers (uint256 amounts, sqrtPriceX96) are kept as decimal strings in the ``args``
JSON column: no float rounding and no 64-bit overflow. :func:`decode_events` expands them
into columns (float64, plus the exact strings).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from tqdm.auto import tqdm

from research_lib.atomic import atomic_write_text
from research_lib.lake import Lake
from research_lib.sources.base import SourceError
from research_lib.sources.http import Closing, HttpClient

logger = logging.getLogger(__name__)

# (event name in the lake, npm artifact, ABI event name)
_EVENT_SOURCES = (
    ("v2_swap", "UniswapV2Pair", "Swap"),
    ("v2_sync", "UniswapV2Pair", "Sync"),
    ("v2_mint", "UniswapV2Pair", "Mint"),
    ("v2_burn", "UniswapV2Pair", "Burn"),
    ("v3_swap", "UniswapV3Pool", "Swap"),
    ("v3_mint", "UniswapV3Pool", "Mint"),
    ("v3_burn", "UniswapV3Pool", "Burn"),
    ("v3_collect", "UniswapV3Pool", "Collect"),
    ("erc20_transfer", "ERC20", "Transfer"),
)
EVENT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _EVENT_SOURCES)

# JSON-RPC errors by which nodes and providers refuse a range as too large or too heavy.
_RANGE_ERROR = re.compile(
    r"more than \d+ results|too many|range.*(large|wide|big|exceed)|exceed.*range|"
    r"limit exceeded|response size|block range|query timeout|too large",
    re.IGNORECASE,
)
_RANGE_ERROR_CODES = {-32005}
# Reads of one range in a row that found it changing before the indexer gives up.
MAX_UNSETTLED_READS = 8


class RpcError(SourceError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RangeTooLargeError(RpcError):
    """The node refused an ``eth_getLogs`` range as too large or as too many results."""


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]  # (arg name, ABI type) in topic order
    data: tuple[tuple[str, str], ...]  # (arg name, ABI type) in data order


@functools.cache
def event_specs() -> dict[str, EventSpec]:
    """topic0 (0x hex) -> the event's layout, from the npm artifacts' ABIs."""
    from research_lib.chain import artifact  # the chain module needs only web3 at import

    specs: dict[str, EventSpec] = {}
    for name, contract_name, abi_name in _EVENT_SOURCES:
        (abi,) = [
            e for e in artifact(contract_name).abi if e["type"] == "event" and e["name"] == abi_name
        ]
        topic0 = "0x" + event_abi_to_log_topic(abi).hex()
        if topic0 in specs:  # Transfer: the V2 pair's LP token is an ERC20 too
            continue
        specs[topic0] = EventSpec(
            name,
            topic0,
            tuple((i["name"], i["type"]) for i in abi["inputs"] if i["indexed"]),
            tuple((i["name"], i["type"]) for i in abi["inputs"] if not i["indexed"]),
        )
    return specs


def _jsonable(value: Any, abi_type: str) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_log(log: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(event name, args) of a raw JSON-RPC log, or None for an event we do not index."""
    topics = log["topics"]
    if not topics:
        return None
    spec = event_specs().get(topics[0].lower())
    if spec is None or len(topics) != len(spec.indexed) + 1:
        return None  # e.g. an ERC721 Transfer: same topic0, one more indexed argument
    args: dict[str, Any] = {}
    for (arg, abi_type), topic in zip(spec.indexed, topics[1:], strict=True):
        (value,) = abi_decode([abi_type], bytes.fromhex(topic[2:]))
        args[arg] = _jsonable(value, abi_type)
    values = abi_decode([t for _, t in spec.data], bytes.fromhex(log["data"][2:]))
    for (arg, abi_type), value in zip(spec.data, values, strict=True):
        args[arg] = _jsonable(value, abi_type)
    return spec.name, args


class JsonRpc(Closing):
    """A JSON-RPC client over :class:`HttpClient` (its retries, backoff and timeouts)."""

    def __init__(
        self,
        rpc_url: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 6,
        backoff_s: float = 0.25,
        seed: int | None = None,
    ) -> None:
        self._http = HttpClient(
            rpc_url,
            venue="evm",
            timeout_s=timeout_s,
            max_retries=max_retries,
            backoff_s=backoff_s,
            max_concurrency=1,
            seed=seed,
        )
        self._ids = itertools.count(1)

    @property
    def stats(self) -> dict[str, Any]:
        return self._http.stats

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, params: list[Any]) -> Any:
        """One call; raises :class:`RpcError` (or :class:`RangeTooLargeError`) on an error."""
        reply = self._http.post_json(
            "", {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        return _result(reply, method)

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one JSON-RPC batch; results in the order of ``calls``."""
        if not calls:
            return []
        first = next(self._ids)
        ids = [first, *(next(self._ids) for _ in calls[1:])]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        replies = self._http.post_json("", body)
        if not isinstance(replies, list):
            # Some nodes answer a whole batch with one error object.
            _result(replies, "batch")
            raise RpcError(f"evm batch: expected a list of replies, got {str(replies)[:200]}")
        by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise RpcError(f"evm batch: the node left out replies for ids {missing[:5]}")
        return [_result(by_id[i], m) for i, (m, _) in zip(ids, calls, strict=True)]


def _result(reply: Any, method: str) -> Any:
    if not isinstance(reply, dict):
        raise RpcError(f"evm {method}: the reply is not a JSON-RPC object: {str(reply)[:200]}")
    error = reply.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        kind = (
            RangeTooLargeError
            if code in _RANGE_ERROR_CODES or _RANGE_ERROR.search(str(message))
            else RpcError
        )
        raise kind(f"evm {method}: node error {code}: {message}", code=code)
    if "result" not in reply:
        raise RpcError(f"evm {method}: the reply has neither result nor error: {str(reply)[:200]}")
    return reply["result"]


@dataclass(frozen=True)
class Checkpoint:
    block: int
    hash: str


@dataclass
class IndexResult:
    """What one :meth:`EvmIndexer.run` did."""

    chain_id: int
    from_block: int
    to_block: int
    logs: int = 0
    chunks: int = 0
    shrinks: int = 0
    rollbacks: list[tuple[int, int]] = field(default_factory=list)  # (fork block, rows deleted)
    leftover_rows_deleted: int = 0
    seconds: float = 0.0


class EvmIndexer(Closing):
    """Index the logs of ``addresses`` on the node at ``rpc_url`` into the lake.

    Parameters
    ----------
    rpc_url
        A JSON-RPC endpoint: the embedded anvil, a fork, or a real network.
    addresses
        The contracts whose logs to index (pools, tokens).
    events
        Which of :data:`EVENT_NAMES` to keep (default: all).
    start_block
        The first block to index when there is no checkpoint yet.
    confirmations
        Index only blocks this far below the head (0 for a local chain you control).
    chunk_blocks, min_chunk_blocks, max_chunk_blocks, grow_after
        The first ``eth_getLogs`` range, its bounds when shrinking and growing, and the
        successes in a row after which it doubles.
    lake, checkpoint_dir
        Where rows and checkpoints go (default: the data folder's lake and
        ``<data>/chain/checkpoints``).
    """

    def __init__(
        self,
        rpc_url: str,
        *,
        addresses: Iterable[str],
        events: Iterable[str] = EVENT_NAMES,
        start_block: int = 0,
        confirmations: int = 12,
        chunk_blocks: int = 2_000,
        min_chunk_blocks: int = 1,
        max_chunk_blocks: int = 50_000,
        grow_after: int = 3,
        lake: Lake | None = None,
        checkpoint_dir: Path | None = None,
        timeout_s: float = 10.0,
        max_retries: int = 6,
        seed: int | None = 0,
        progress: bool = True,
    ) -> None:
        self.addresses = sorted({to_checksum_address(a) for a in addresses})
        if not self.addresses:
            raise ValueError("EvmIndexer: addresses is empty; give the pools or tokens to index")
        self.events = tuple(events)
        unknown = sorted(set(self.events) - set(EVENT_NAMES))
        if unknown:
            raise ValueError(f"EvmIndexer: unknown events {unknown}; known: {list(EVENT_NAMES)}")
        for name, value in (("start_block", start_block), ("confirmations", confirmations)):
            if value < 0:
                raise ValueError(f"EvmIndexer: {name}={value} must be >= 0")
        if not 1 <= min_chunk_blocks <= chunk_blocks <= max_chunk_blocks:
            raise ValueError(
                "EvmIndexer: need 1 <= min_chunk_blocks <= chunk_blocks <= max_chunk_blocks, got "
                f"{min_chunk_blocks}, {chunk_blocks}, {max_chunk_blocks}"
            )
        self.start_block = start_block
        self.confirmations = confirmations
        self.chunk_blocks = chunk_blocks
        self.min_chunk_blocks = min_chunk_blocks
        self.max_chunk_blocks = max_chunk_blocks
        self.grow_after = grow_after
        self.lake = lake or Lake()
        self.checkpoint_dir = checkpoint_dir or self.lake.root / "chain" / "checkpoints"
        self.progress = progress
        self.rpc = JsonRpc(rpc_url, timeout_s=timeout_s, max_retries=max_retries, seed=seed)
        self.chain_id = int(self.rpc.call("eth_chainId", []), 16)
        self._topics = [s.topic0 for s in event_specs().values() if s.name in self.events]

    def close(self) -> None:
        self.rpc.close()

    @property
    def scope_id(self) -> str:
        """Identifies (chain, addresses, events, start block): each scope has a checkpoint."""
        payload = json.dumps(
            [self.chain_id, self.addresses, sorted(self.events), self.start_block]
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint_dir / f"{self.chain_id}-{self.scope_id}.json"

    def checkpoint(self) -> Checkpoint | None:
        if not self.checkpoint_path.exists():
            return None
        data = json.loads(self.checkpoint_path.read_text())
        return Checkpoint(int(data["block"]), str(data["hash"]))

    def _save_checkpoint(self, checkpoint: Checkpoint) -> None:
        payload = {
            "block": checkpoint.block,
            "hash": checkpoint.hash,
            "chain_id": self.chain_id,
            "addresses": self.addresses,
            "events": sorted(self.events),
            "start_block": self.start_block,
        }
        atomic_write_text(self.checkpoint_path, json.dumps(payload, indent=1))

    # -- the run ------------------------------------------------------------------------
    def run(self, *, to_block: int | None = None) -> IndexResult:
        """Index from the checkpoint (or ``start_block``) to ``to_block`` (default: the head
        minus ``confirmations``); handles reorgs met on the way."""
        import time

        started = time.perf_counter()
        head = int(self.rpc.call("eth_blockNumber", []), 16)
        target = head - self.confirmations if to_block is None else min(to_block, head)
        checkpoint = self.checkpoint()
        result = IndexResult(self.chain_id, self.start_block, target)
        result.leftover_rows_deleted = self._delete_after(
            checkpoint.block if checkpoint else self.start_block - 1
        )
        if checkpoint is not None and self._hash_at(checkpoint.block) != checkpoint.hash:
            checkpoint = self._roll_back(checkpoint, result)
        next_block = checkpoint.block + 1 if checkpoint else self.start_block
        result.from_block = next_block
        chunk = self.chunk_blocks
        successes = 0
        unsettled = 0
        bar = tqdm(
            total=max(0, target - next_block + 1),
            desc=f"index chain {self.chain_id}",
            unit="block",
            disable=not self.progress,
        )
        try:
            while next_block <= target:
                end = min(next_block + chunk - 1, target)
                try:
                    logs = self.rpc.call("eth_getLogs", [self._filter(next_block, end)])
                except RangeTooLargeError as exc:
                    if chunk <= self.min_chunk_blocks:
                        raise SourceError(
                            f"evm eth_getLogs [{next_block}, {end}]: refused even at "
                            f"min_chunk_blocks={self.min_chunk_blocks} ({exc})"
                        ) from exc
                    chunk = max(self.min_chunk_blocks, chunk // 2)
                    successes = 0
                    result.shrinks += 1
                    logger.info("evm: range refused (%s); chunk now %d blocks", exc, chunk)
                    continue
                headers = self._headers(
                    {next_block, end, *(int(x["blockNumber"], 16) for x in logs)}
                )
                parent_ok = (
                    checkpoint is None or headers[next_block]["parentHash"] == checkpoint.hash
                )
                logs_ok = all(
                    headers[int(x["blockNumber"], 16)]["hash"] == x["blockHash"] for x in logs
                )
                if not (parent_ok and logs_ok):
                    # The chain moved under us: what we stored may be orphaned. Roll back if
                    # so, then read this range again.
                    unsettled += 1
                    if unsettled > MAX_UNSETTLED_READS:
                        raise SourceError(
                            f"evm chain {self.chain_id}: blocks [{next_block}, {end}] changed "
                            f"under {unsettled} reads in a row (a node behind a load balancer "
                            "that disagrees with itself?); raise confirmations"
                        )
                    if (
                        checkpoint is not None
                        and self._hash_at(checkpoint.block) != checkpoint.hash
                    ):
                        checkpoint = self._roll_back(checkpoint, result)
                        bar.update(
                            -(
                                next_block
                                - (checkpoint.block + 1 if checkpoint else self.start_block)
                            )
                        )
                        next_block = checkpoint.block + 1 if checkpoint else self.start_block
                    continue
                unsettled = 0
                self._store(logs, headers)
                checkpoint = Checkpoint(end, headers[end]["hash"])
                self._save_checkpoint(checkpoint)
                result.logs += len(logs)
                result.chunks += 1
                bar.update(end - next_block + 1)
                next_block = end + 1
                successes += 1
                if successes >= self.grow_after and chunk < self.max_chunk_blocks:
                    chunk = min(self.max_chunk_blocks, chunk * 2)
                    successes = 0
        finally:
            bar.close()
            if result.chunks or result.rollbacks or result.leftover_rows_deleted:
                self.lake.refresh_catalog()
        result.to_block = checkpoint.block if checkpoint else self.start_block - 1
        result.seconds = time.perf_counter() - started
        return result

    def _filter(self, from_block: int, to_block: int) -> dict[str, Any]:
        return {
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "address": self.addresses,
            "topics": [self._topics],
        }

    def _headers(self, blocks: set[int]) -> dict[int, dict[str, Any]]:
        numbers = sorted(blocks)
        replies = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in numbers])
        headers = {}
        for number, header in zip(numbers, replies, strict=True):
            if header is None:
                raise RpcError(f"evm eth_getBlockByNumber({number}): the node has no such block")
            headers[number] = header
        return headers

    def _hash_at(self, block: int) -> str | None:
        header = self.rpc.call("eth_getBlockByNumber", [hex(block), False])
        return None if header is None else header["hash"]

    def _store(self, logs: list[dict[str, Any]], headers: dict[int, dict[str, Any]]) -> None:
        rows = []
        for log in logs:
            decoded = decode_log(log)
            if decoded is None or decoded[0] not in self.events:
                continue
            name, args = decoded
            number = int(log["blockNumber"], 16)
            rows.append(
                {
                    "event": name,
                    "ts": int(headers[number]["timestamp"], 16) * 1000,
                    "block": number,
                    "log_index": int(log["logIndex"], 16),
                    "block_hash": log["blockHash"],
                    "tx_hash": log["transactionHash"],
                    "address": to_checksum_address(log["address"]),
                    "args": json.dumps(args, sort_keys=True),
                }
            )
        chain = {"chain": str(self.chain_id)}
        if rows:
            self.lake.write(
                "evm_events",
                pl.DataFrame(rows, schema=EVENTS_SCHEMA),
                partition=chain,
                refresh=False,
            )
        blocks = pl.DataFrame(
            [
                {
                    "ts": int(h["timestamp"], 16) * 1000,
                    "block": number,
                    "hash": h["hash"],
                    "parent_hash": h["parentHash"],
                }
                for number, h in sorted(headers.items())
            ],
            schema=BLOCKS_SCHEMA,
        )
        self.lake.write("evm_blocks", blocks, partition=chain, refresh=False)

    def _delete_after(self, block: int, *, headers: bool = False) -> int:
        """Delete this scope's rows above ``block`` (and, after a reorg, every stored header
        above it: they are orphaned for every scope); rows deleted."""
        chain = {"chain": str(self.chain_id)}
        deleted = 0
        if self.lake.files("evm_events"):
            deleted += self.lake.delete_rows(
                "evm_events",
                (pl.col("block") > block) & pl.col("address").is_in(self.addresses),
                partition=chain,
                refresh=False,
            )
        if headers and self.lake.files("evm_blocks"):
            self.lake.delete_rows(
                "evm_blocks", pl.col("block") > block, partition=chain, refresh=False
            )
        return deleted

    def _roll_back(self, checkpoint: Checkpoint, result: IndexResult) -> Checkpoint | None:
        """Find the highest stored header still on the chain; delete everything above it."""
        stored = (
            self.lake.read("evm_blocks", filters={"chain": str(self.chain_id)})
            .filter(pl.col("block") <= checkpoint.block)
            .sort("block", descending=True)
            if self.lake.files("evm_blocks")
            else pl.DataFrame(schema=BLOCKS_SCHEMA)
        )
        keep: Checkpoint | None = None
        for batch in stored.iter_slices(64):
            numbers = batch["block"].to_list()
            live = self.rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in numbers])
            for number, ours, theirs in zip(numbers, batch["hash"].to_list(), live, strict=True):
                if theirs is not None and theirs["hash"] == ours:
                    keep = Checkpoint(number, ours)
                    break
            if keep is not None:
                break
        fork = keep.block + 1 if keep else self.start_block
        deleted = self._delete_after(fork - 1, headers=True)
        logger.warning(
            "evm: chain %d reorganised below block %d; rolled back %d rows from block %d",
            self.chain_id,
            checkpoint.block,
            deleted,
            fork,
        )
        result.rollbacks.append((fork, deleted))
        if keep is None:
            self.checkpoint_path.unlink(missing_ok=True)
        else:
            self._save_checkpoint(keep)
        return keep


EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "event": pl.String,
    "ts": pl.Int64,
    "block": pl.Int64,
    "log_index": pl.Int64,
    "block_hash": pl.String,
    "tx_hash": pl.String,
    "address": pl.String,
    "args": pl.String,
}
BLOCKS_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64,
    "block": pl.Int64,
    "hash": pl.String,
    "parent_hash": pl.String,
}


def decode_events(frame: pl.DataFrame, event: str) -> pl.DataFrame:
    """Expand the ``args`` JSON of one event's rows into columns.

    Integer arguments become float64 columns (for analysis) plus ``<name>_exact`` decimal
    strings (for anything compared with a contract to the wei); addresses stay strings.
    """
    specs = {s.name: s for s in event_specs().values()}
    if event not in specs:
        raise ValueError(f"decode_events: unknown event {event!r}; known: {list(EVENT_NAMES)}")
    rows = frame.filter(pl.col("event") == event)
    spec = specs[event]
    parsed = [json.loads(a) for a in rows["args"].to_list()]
    columns: dict[str, pl.Series] = {}
    for arg, abi_type in (*spec.indexed, *spec.data):
        values = [p[arg] for p in parsed]
        if abi_type.startswith(("uint", "int")):
            columns[arg] = pl.Series(arg, [float(int(v)) for v in values], dtype=pl.Float64)
            columns[f"{arg}_exact"] = pl.Series(f"{arg}_exact", values, dtype=pl.String)
        else:
            columns[arg] = pl.Series(arg, values, dtype=pl.String)
    return rows.drop("args").with_columns(**columns)
