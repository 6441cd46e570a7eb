"""The embedded chain: a local anvil running the real Uniswap V2 and V3 contracts.

anvil comes from npm (``@foundry-rs/anvil``, whose binary ships in a platform package) and
the contracts from the published npm artifacts (``@uniswap/v2-core``, ``v2-periphery``,
``v3-core``, ``v3-periphery``), all pinned by ``package-lock.json`` and installed by
``make setup``. Nothing here is compiled or mocked: the bytecode that runs is the bytecode
Uniswap published. The V2 router's hard-coded pair init-code hash and the V3 periphery's pool
init-code hash both equal the keccak of the npm pair / pool bytecode, so the routers find
the pools that the factories deploy.

- :class:`Anvil` starts anvil on a free loopback port and stops it by its own PID.
- :func:`deploy_uniswap` deploys WETH9, the V2 factory and Router02, the V3 factory,
  SwapRouter, QuoterV2 and the NonfungiblePositionManager, and test ERC20 tokens.
- :func:`send` sends a transaction from an unlocked account and checks its receipt.
- ``research_lib.chain_market`` drives the pools with a seeded market (arbitrageurs and
  noise traders), so the chain carries realistic swap history.

Everything reads through a ``rpc_url``; pointing it at a fork or a real network changes
nothing else in the readers (deploying and trading need unlocked accounts, which only a
local node has).

Examples
--------
>>> from research_lib.chain import Anvil, deploy_uniswap
>>> with Anvil() as node:  # doctest: +SKIP
...     deployment = deploy_uniswap(node.web3(), token_symbols=("USDC",))
...     deployment.tokens["USDC"]
'0x...'
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from research_lib.atomic import atomic_write_text
from research_lib.paths import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"

ARTIFACT_PATHS: dict[str, str] = {
    "WETH9": "@uniswap/v2-periphery/build/WETH9.json",
    # Uniswap's own test token: ERC20(uint totalSupply), 18 decimals, all minted to the sender.
    "ERC20": "@uniswap/v2-core/build/ERC20.json",
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV2Router02": "@uniswap/v2-periphery/build/UniswapV2Router02.json",
    "UniswapV3Factory": (
        "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json"
    ),
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
    "NonfungiblePositionManager": (
        "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/"
        "NonfungiblePositionManager.json"
    ),
}

# anvil's well-known development mnemonic: its accounts are unlocked and public, so nothing
# secret ever passes through here. Real keys belong to the executor's keystore.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID = 31337
DEFAULT_BALANCE_ETH = 1_000_000
# The NonfungiblePositionManager's runtime code is ~25.3 kB, over EIP-170's 24,576 bytes; it
# was deployed on mainnet (with optimiser settings under the limit), and the npm build is
# larger. Raising anvil's limit runs the published bytecode unchanged.
CODE_SIZE_LIMIT_BYTES = 64 * 1024
MAX_UINT256 = 2**256 - 1
# Gas for transactions sent without an estimate (the market simulation batches several per
# block, where an estimate against the latest block can miss the batch's earlier effects).
SWAP_GAS = 600_000


class ChainError(RuntimeError):
    """anvil failed to start or answer, an artifact is missing, or a transaction reverted."""


@dataclass(frozen=True)
class Artifact:
    """A contract's ABI and creation bytecode, as published on npm."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str


@functools.cache
def artifact(name: str) -> Artifact:
    """The npm artifact ``name`` (a key of :data:`ARTIFACT_PATHS`)."""
    if name not in ARTIFACT_PATHS:
        raise ChainError(f"artifact: unknown contract {name!r}; known: {sorted(ARTIFACT_PATHS)}")
    path = NODE_MODULES / ARTIFACT_PATHS[name]
    if not path.is_file():
        raise ChainError(
            f"artifact {name}: {path} is missing; run `make setup` (npm installs the "
            "Uniswap packages pinned in package-lock.json)"
        )
    data = json.loads(path.read_text())
    bytecode = data["bytecode"]
    if not bytecode.startswith("0x"):
        bytecode = "0x" + bytecode
    return Artifact(name=name, abi=data["abi"], bytecode=bytecode)


def anvil_binary() -> Path:
    """The anvil executable from the npm platform package for this OS and CPU."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system())
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine()
    )
    if system is None or machine is None:
        raise ChainError(f"anvil: no npm build for {platform.system()} {platform.machine()}")
    name = "anvil.exe" if system == "win32" else "anvil"
    path = NODE_MODULES / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / name
    if not path.is_file():
        raise ChainError(f"anvil: {path} is missing; run `make setup` (npm install)")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (anvil binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Anvil:
    """A local anvil process on a free loopback port; a context manager.

    Parameters
    ----------
    port
        The port to bind; ``None`` picks a free one.
    chain_id, accounts, balance_eth
        Passed to anvil. The accounts come from :data:`DEV_MNEMONIC` and are unlocked.
    block_time_s
        Interval mining; ``None`` mines one block per transaction (automine).
    fork_url
        Fork this network instead of starting empty.
    genesis_ts_s
        The genesis block's timestamp (epoch seconds), so a simulated history can sit at the
        dates of a market config; the node's clock runs on from there.
    startup_timeout_s
        How long to wait for the node to answer ``eth_chainId``.
    """

    port: int | None = None
    chain_id: int = DEFAULT_CHAIN_ID
    accounts: int = 10
    balance_eth: int = DEFAULT_BALANCE_ETH
    block_time_s: float | None = None
    fork_url: str | None = None
    genesis_ts_s: int | None = None
    startup_timeout_s: float = 30.0
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise ChainError("anvil: not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Anvil:
        """Start anvil and wait until it answers; raises :class:`ChainError` with its log."""
        if self._process is not None:
            return self
        attempts = 1 if self.port is not None else 3
        for attempt in range(attempts):
            port = self.port if self.port is not None else free_port()
            if self._launch(port, last_attempt=attempt == attempts - 1):
                self.port = port
                atexit.register(self.stop)
                return self
        raise AssertionError("unreachable")

    def _launch(self, port: int, *, last_attempt: bool) -> bool:
        if self.log_path is None:
            self.log_path = Path(tempfile.mkstemp(prefix="anvil-", suffix=".log")[1])
        args = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--balance",
            str(self.balance_eth),
            "--mnemonic",
            DEV_MNEMONIC,
            "--code-size-limit",
            str(CODE_SIZE_LIMIT_BYTES),
            # Blocks keep the order transactions arrived in (the default orders by fee, and
            # ties arbitrarily): the market simulation is then deterministic.
            "--order",
            "fifo",
        ]
        if self.block_time_s is not None:
            args += ["--block-time", f"{self.block_time_s:g}"]
        if self.fork_url is not None:
            args += ["--fork-url", self.fork_url]
        if self.genesis_ts_s is not None:
            args += ["--timestamp", str(self.genesis_ts_s)]
        with open(self.log_path, "wb") as log:
            # Its own session: a Ctrl-C in the notebook or terminal reaches Python, which
            # then stops anvil by PID, instead of killing the node mid-write.
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + self.startup_timeout_s
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 2}))
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with contextlib.suppress(Exception):
                if w3.eth.chain_id == self.chain_id:
                    return True
            time.sleep(0.05)
        tail = self._log_tail()
        self.stop()
        if "Address already in use" in tail and not last_attempt:
            return False
        raise ChainError(
            f"anvil did not answer on 127.0.0.1:{port} within "
            f"{self.startup_timeout_s:g} s; its log ends:\n{tail}"
        )

    def _log_tail(self, n_chars: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n_chars:]

    def stop(self) -> None:
        """Stop the node by its PID: SIGTERM, then SIGKILL after 5 s."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def web3(self, *, timeout_s: float = 60.0) -> Web3:
        """A Web3 client for this node."""
        return connect(self.rpc_url, timeout_s=timeout_s)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def connect(rpc_url: str, *, timeout_s: float = 60.0) -> Web3:
    """A Web3 HTTP client for ``rpc_url``; raises :class:`ChainError` if it does not answer."""
    # The chain id is asked before every call and transaction; it never changes for a URL,
    # so it is cached (nothing else is: blocks can be reorganised away).
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout_s},
        cache_allowed_requests=True,
        cacheable_requests={"eth_chainId"},
    )
    w3 = Web3(provider)
    try:
        w3.eth.chain_id  # noqa: B018  (a round trip proves the node answers)
    except Exception as exc:
        raise ChainError(f"connect: no JSON-RPC node answers at {rpc_url!r} ({exc})") from exc
    return w3


@functools.lru_cache(maxsize=1024)
def contract(w3: Web3, name: str, address: str) -> Contract:
    """The deployed contract ``name`` (an npm artifact) at ``address`` (cached: building one
    parses the whole ABI)."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name).abi)


def send(w3: Web3, call: Any, sender: str, *, value_wei: int = 0, gas: int | None = None) -> Any:
    """Send ``call`` (a bound contract function or constructor) from an unlocked account.

    Waits for the receipt (anvil returns the hash before the block is mined) and raises
    :class:`ChainError` naming the call if the transaction reverted. With no ``gas``, the
    node's estimate is padded (1.25x + 50k): a first swap can estimate ~45k short, when it
    initialises storage that the estimate saw as already written.
    """
    tx: dict[str, Any] = {"from": sender, "value": value_wei}
    if gas is None:
        try:
            estimate = call.estimate_gas(tx)
        except Exception as exc:
            raise ChainError(f"{_describe(call)} from {sender} would revert: {exc}") from exc
        gas = int(estimate * 1.25) + 50_000
    tx["gas"] = gas
    tx_hash = call.transact(tx)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        raise ChainError(f"{_describe(call)} from {sender} reverted (tx {tx_hash.hex()})")
    return receipt


def _describe(call: Any) -> str:
    name = getattr(call, "fn_name", None) or type(call).__name__
    return f"{name}{tuple(getattr(call, 'args', ()) or ())}"


def deploy(w3: Web3, name: str, *args: Any, sender: str) -> Contract:
    """Deploy the npm artifact ``name`` with constructor ``args``; the bound contract."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = send(w3, factory.constructor(*args), sender)
    return contract(w3, name, receipt["contractAddress"])


@dataclass(frozen=True)
class Deployment:
    """Addresses of the deployed Uniswap stack and tokens on one chain."""

    chain_id: int
    deployer: str
    weth: str
    v2_factory: str
    v2_router: str
    v3_factory: str
    swap_router: str
    quoter_v2: str
    position_manager: str
    tokens: dict[str, str]
    start_block: int

    def token(self, symbol: str) -> str:
        if symbol == "WETH":
            return self.weth
        if symbol not in self.tokens:
            raise ChainError(
                f"token: unknown symbol {symbol!r}; known: WETH, {sorted(self.tokens)}"
            )
        return self.tokens[symbol]

    def save(self, path: Path) -> None:
        """Write the addresses as JSON (atomically)."""
        atomic_write_text(path, json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Deployment:
        return cls(**json.loads(Path(path).read_text()))


def deploy_uniswap(
    w3: Web3,
    *,
    deployer: str | None = None,
    token_symbols: tuple[str, ...] = ("USDC",),
    token_supply: int = 10**36,
) -> Deployment:
    """Deploy WETH9, Uniswap V2 and V3 (core and periphery) and test tokens.

    Each test token is Uniswap's own test ERC20 (18 decimals), its whole ``token_supply``
    minted to ``deployer`` (default: the node's first unlocked account). The NFT position
    descriptor is left at the zero address: ``tokenURI`` is not needed to mint, collect or
    burn positions.
    """
    sender = deployer or w3.eth.accounts[0]
    start_block = w3.eth.block_number + 1
    weth = deploy(w3, "WETH9", sender=sender)
    v2_factory = deploy(w3, "UniswapV2Factory", sender, sender=sender)
    v2_router = deploy(w3, "UniswapV2Router02", v2_factory.address, weth.address, sender=sender)
    v3_factory = deploy(w3, "UniswapV3Factory", sender=sender)
    swap_router = deploy(w3, "SwapRouter", v3_factory.address, weth.address, sender=sender)
    quoter = deploy(w3, "QuoterV2", v3_factory.address, weth.address, sender=sender)
    zero = "0x" + "00" * 20
    manager = deploy(
        w3, "NonfungiblePositionManager", v3_factory.address, weth.address, zero, sender=sender
    )
    tokens = {
        symbol: deploy(w3, "ERC20", token_supply, sender=sender).address for symbol in token_symbols
    }
    return Deployment(
        chain_id=w3.eth.chain_id,
        deployer=sender,
        weth=weth.address,
        v2_factory=v2_factory.address,
        v2_router=v2_router.address,
        v3_factory=v3_factory.address,
        swap_router=swap_router.address,
        quoter_v2=quoter.address,
        position_manager=manager.address,
        tokens=tokens,
        start_block=start_block,
    )


def fund(w3: Web3, deployment: Deployment, account: str, amounts: dict[str, int]) -> None:
    """Give ``account`` raw token ``amounts`` (WETH by wrapping its own ETH) and approve the
    V2 router, the SwapRouter and the position manager to spend them."""
    for symbol, amount in amounts.items():
        if symbol == "WETH":
            send(
                w3,
                contract(w3, "WETH9", deployment.weth).functions.deposit(),
                account,
                value_wei=amount,
            )
        else:
            token = contract(w3, "ERC20", deployment.token(symbol))
            send(w3, token.functions.transfer(account, amount), deployment.deployer)
        approve_all(w3, deployment, account, symbol)


def approve_all(w3: Web3, deployment: Deployment, account: str, symbol: str) -> None:
    """Approve the routers and the position manager for ``symbol`` without limit."""
    token = contract(w3, "ERC20", deployment.token(symbol))
    for spender in (deployment.v2_router, deployment.swap_router, deployment.position_manager):
        if token.functions.allowance(account, spender).call() < MAX_UINT256 // 2:
            send(w3, token.functions.approve(spender, MAX_UINT256), account)


def balance_of(w3: Web3, deployment: Deployment, symbol: str, account: str) -> int:
    return int(contract(w3, "ERC20", deployment.token(symbol)).functions.balanceOf(account).call())


@contextlib.contextmanager
def snapshot(w3: Web3) -> Iterator[str]:
    """Take an anvil snapshot; revert to it on exit (tests and what-if runs)."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        yield snap
    finally:
        w3.provider.make_request("evm_revert", [snap])
