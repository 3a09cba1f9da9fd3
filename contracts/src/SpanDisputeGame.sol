// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {GameBase} from "./GameBase.sol";
import {LmElementReferee, LmSpanReferee} from "./LmReferee.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ExactOps} from "./libraries/ExactOps.sol";
import {LmSlot} from "./libraries/LmSlot.sol";
import {LmSpec} from "./libraries/LmSpec.sol";
import {LmStep} from "./libraries/LmStep.sol";
import {TraceMerkle} from "./libraries/TraceMerkle.sol";

/// @title SpanDisputeGame
/// @notice The dispute game of split-model inference (docs/split-inference.md, "Disputes"). A
///         span server signs a receipt with each answer: for the model `model`, its blocks
///         `start..end` turn the `positions` input rows whose row root is `input` into the
///         output rows whose row root is `output`. Exact mode makes that claim true or false.
///         Anyone holding a receipt it believes false opens a dispute with a bond; the server
///         commits every leaf of the span's op trace (the forward pass of its blocks over the
///         session's prefix, `LmSpanReferee`); the challenger names the first op it disputes,
///         the two narrow it to one row and one element, and `LmElementReferee` recomputes it
///         from the opened input rows. A server that loses is slashed through the stake
///         manager: the challenger gets its bond back and half the slash, the treasury the other
///         half. A challenger that loses pays its bond to the server. Payouts are pulled
///         (`withdraw`), so no recipient can block a verdict.
contract SpanDisputeGame is GameBase, EIP712, ReentrancyGuardTransient {
    using TraceMerkle for bytes32;

    /// @notice What a span server signs with an answer (EIP-712 `SpanReceipt`).
    struct Receipt {
        /// `modelKey(arch, modelRoot)`: the model's architecture and its tensors' commitment.
        bytes32 model;
        uint32 start;
        uint32 end;
        /// Positions of the session the span has run, from 0: the rows of input and output.
        uint32 positions;
        /// Row root of the input rows (leaf 0 of the span's op trace).
        bytes32 input;
        /// Row root of the output rows (the last leaf).
        bytes32 output;
        /// When the server signed it, Unix seconds by its clock: it can be disputed until
        /// `issuedAt + receiptWindow`, and a server keeps what defends it that long.
        uint64 issuedAt;
    }

    /// @notice A leaf of the op trace, proven against its root.
    struct LeafOpening {
        bytes32 root;
        bytes32[] proof;
    }

    /// @notice The challenger's last move.
    struct ElementMove {
        uint256 col;
        bytes row;
        bytes[] inputRows;
        bytes32[][] inputProofs;
    }

    /// @dev One dispute beyond its `Play`: the receipt, the parties and bond (kept until the
    ///      payout), and the disputed op.
    struct Case {
        bytes32 digest;
        bytes32 model;
        address server;
        address challenger;
        uint32 start;
        uint32 end;
        uint32 positions;
        uint32 leafCount;
        uint8 kind;
        uint8 inputs;
        int32 arg;
        uint32 rows;
        uint32 cols;
        uint32[4] inRows;
        uint32[4] inCols;
        bytes32[4] inRoots;
    }

    /// @notice Most blocks a span may hold.
    uint256 public constant MAX_LAYERS = 64;
    /// @notice The most values of a row (as the fine-tuning game's `MAX_ROW`).
    uint256 public constant MAX_ROW = 8192;
    /// @notice The most rows of an op's output (`positions · heads` score rows): past
    ///         `2^ROW_CHUNK_LOG` rows they are opened by chunks (`GameBase`), so no move carries
    ///         more than 1 024 row hashes. A row count only: the span's forward ops read no row
    ///         `positions · heads` wide (the training game's `dk`, `dv` do, hence its
    ///         `MAX_SCORES`).
    uint256 public constant MAX_ROWS = 1 << 20;
    /// @notice The most leaves of a span's op trace: the server commits them all in one move
    ///         (about 700 gas a leaf with calldata and the event).
    uint256 public constant MAX_LEAVES = 4096;
    /// @notice The challenger's share of a slash, in percent; the treasury gets the rest, so
    ///         that a server convicting itself through a puppet still loses half.
    uint256 public constant CHALLENGER_PERCENT = 50;
    /// @notice The EIP-712 type of a receipt.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "SpanReceipt(bytes32 model,uint32 start,uint32 end,uint32 positions,bytes32 input,bytes32 output,uint64 issuedAt)"
    );
    /// @notice How far in the future a receipt's `issuedAt` may be (the server's clock ahead
    ///         of the chain's).
    uint256 public constant MAX_CLOCK_SKEW = 5 minutes;

    /// @notice The stake manager whose slasher this game is.
    IStakeManager public immutable stakes;
    /// @notice The span program's builder.
    LmSpanReferee public immutable spans;
    /// @notice The element referee.
    LmElementReferee public immutable elements;
    /// @notice The bond a challenger posts to open a dispute.
    uint256 public immutable bond;
    /// @notice The most a conviction slashes (less when the server has less free or unbonding
    ///         stake).
    uint256 public immutable slashAmount;
    /// @notice Seconds on each side's clock.
    uint32 public immutable clock;
    /// @notice Receives the treasury's half of every slash.
    address public immutable treasury;
    /// @notice How long after it was issued a receipt can be disputed.
    uint32 public immutable receiptWindow;

    /// @notice Disputes opened so far; dispute ids count from 1.
    uint256 public disputeCount;
    /// @notice Receipts (by EIP-712 digest) found false.
    mapping(bytes32 digest => bool) public convicted;
    /// @notice The open dispute of a receipt, if any.
    mapping(bytes32 digest => uint256 id) public openDispute;
    /// @notice ETH each account may `withdraw`.
    mapping(address account => uint256) public owed;

    mapping(uint256 id => Case) internal _cases;

    /// @notice A dispute of a receipt opened; the server's clock started.
    event SpanDisputeOpened(
        uint256 indexed id,
        address indexed server,
        address indexed challenger,
        bytes32 digest,
        Receipt receipt
    );
    /// @notice The server committed its span's op trace (every leaf is in the calldata and here).
    event SpanTraceCommitted(uint256 indexed id, bytes32 opRoot, bytes32[] leaves);
    /// @notice The verdict's money: `slashed` taken from the server, `paid` to the winner.
    event SpanDisputeSettled(
        uint256 indexed id, address indexed server, bool serverLost, uint256 slashed, uint256 paid
    );
    /// @notice `account` withdrew what it was owed.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice The bond sent is not the game's.
    error WrongBond(uint256 sent, uint256 bond);
    /// @notice The receipt's signature does not recover to an address.
    error BadSignature();
    /// @notice The receipt was already found false.
    error AlreadyConvicted(bytes32 digest);
    /// @notice The receipt is already under dispute.
    error AlreadyDisputed(bytes32 digest, uint256 id);
    /// @notice The server has no stake that a conviction could slash.
    error NothingAtStake(address server);
    /// @notice A server cannot dispute its own receipt.
    error OwnReceipt(address server);
    /// @notice Nothing is owed to the caller.
    error NothingOwed();
    /// @notice An ETH transfer failed.
    error TransferFailed();
    /// @notice Only the stake manager sends ETH here (the slashes).
    error NotStakeManager(address sender);
    /// @notice The receipt's window closed at `closedAt`.
    error ReceiptExpired(uint256 issuedAt, uint256 closedAt);
    /// @notice The receipt was issued after `latest`: its server's clock runs ahead.
    error ReceiptFromTheFuture(uint256 issuedAt, uint256 latest);

    /// @param stakes_ The stake manager (it must grant this game `SLASHER_ROLE`).
    /// @param spans_ The span program's builder.
    /// @param elements_ The element referee.
    /// @param bond_ The challenger's bond.
    /// @param slashAmount_ The most a conviction slashes.
    /// @param clock_ Seconds on each side's clock: keep two clocks well inside the stake
    ///        manager's unbonding delay, so that a server cannot withdraw during its dispute.
    /// @param treasury_ Receives the treasury's half of every slash.
    /// @param receiptWindow_ How long a receipt can be disputed: a server must keep the rows
    ///        that defend a receipt that long, and stay staked that long plus two clocks.
    constructor(
        IStakeManager stakes_,
        LmSpanReferee spans_,
        LmElementReferee elements_,
        uint256 bond_,
        uint256 slashAmount_,
        uint32 clock_,
        address treasury_,
        uint32 receiptWindow_
    ) GameBase(IJobMarket(address(0))) EIP712("Pedals SpanDisputeGame", "1") {
        _bound("clock", clock_, 1 minutes, 7 days);
        _bound("receipt window", receiptWindow_, 1 minutes, 30 days);
        _bound("slash", slashAmount_, 1, type(uint128).max);
        if (treasury_ == address(0)) revert Inadmissible("treasury", 0, 1, type(uint160).max);
        stakes = stakes_;
        spans = spans_;
        elements = elements_;
        bond = bond_;
        slashAmount = slashAmount_;
        clock = clock_;
        treasury = treasury_;
        receiptWindow = receiptWindow_;
    }

    /// @notice Only the stake manager's slashes are accepted.
    receive() external payable {
        if (msg.sender != address(stakes)) revert NotStakeManager(msg.sender);
    }

    // ─────────────────────────────────────────── anyone ──────────────────────────────────────────────

    /// @notice A receipt's `model`: the hash of the model's architecture and the state hash of
    ///         its tensors (`pedals_lm::dispute::model_state`).
    function modelKey(LmSpec.Arch calldata arch, bytes32 modelRoot) public pure returns (bytes32) {
        return keccak256(abi.encode(arch, modelRoot));
    }

    /// @notice The EIP-712 digest a server signs for `r`.
    function receiptDigest(Receipt calldata r) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    RECEIPT_TYPEHASH, r.model, r.start, r.end, r.positions, r.input, r.output, r.issuedAt
                )
            )
        );
    }

    /// @notice Opens a dispute of receipt `r`, signed by its server, for a bond of `bond`.
    ///         `arch` and `modelRoot` must be the model the receipt names.
    function open(LmSpec.Arch calldata arch, bytes32 modelRoot, Receipt calldata r, bytes calldata signature)
        external
        payable
        nonReentrant
        returns (uint256 id)
    {
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        if (r.issuedAt > block.timestamp + MAX_CLOCK_SKEW) {
            revert ReceiptFromTheFuture(r.issuedAt, block.timestamp + MAX_CLOCK_SKEW);
        }
        if (block.timestamp > uint256(r.issuedAt) + receiptWindow) {
            revert ReceiptExpired(r.issuedAt, uint256(r.issuedAt) + receiptWindow);
        }
        bytes32 key = modelKey(arch, modelRoot);
        if (key != r.model) revert SpecMismatch(r.model, key);
        uint256 leaves = _admit(arch, r);
        bytes32 digest = receiptDigest(r);
        // The third return only details a failure that `err` already reports.
        // slither-disable-next-line unused-return
        (address server, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert BadSignature();
        if (server == msg.sender) revert OwnReceipt(server);
        if (convicted[digest]) revert AlreadyConvicted(digest);
        if (openDispute[digest] != 0) revert AlreadyDisputed(digest, openDispute[digest]);
        if (_slashable(server) == 0) revert NothingAtStake(server);
        id = ++disputeCount;
        openDispute[digest] = id;
        _startGame(id, 0, server, msg.sender, r.output, clock);
        Play storage g = _plays[id];
        (g.stateIn, g.stateOut) = (r.input, r.output);
        Case storage k = _cases[id];
        (k.digest, k.model, k.server, k.challenger) = (digest, key, server, msg.sender);
        (k.start, k.end, k.positions, k.leafCount) = (r.start, r.end, r.positions, uint32(leaves));
        emit SpanDisputeOpened(id, server, msg.sender, digest, r);
    }

    /// @notice Sends the caller what it is owed.
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingOwed();
        owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ─────────────────────────────────────────── server ──────────────────────────────────────────────

    /// @notice Server, move 1: every leaf of the span's op trace; the first must be the
    ///         receipt's input root and the last its output root.
    function commitTrace(uint256 id, bytes32[] calldata leaves) external {
        Play storage g = _move(id, Phase.Commit, true);
        uint256 count = _cases[id].leafCount;
        if (leaves.length != count) revert OutOfRange("op-trace leaves", leaves.length, count);
        if (leaves[0] != g.stateIn) revert BadProof("input leaf");
        if (leaves[count - 1] != g.stateOut) revert BadProof("output leaf");
        g.opRoot = TraceMerkle.rootOf(leaves);
        _pass(g, Phase.NameOp);
        emit SpanTraceCommitted(id, g.opRoot, leaves);
    }

    // ─────────────────────────────────────────── challenger ──────────────────────────────────────────

    /// @notice Challenger, move 1: dispute op `leaf`'s output, proving its inputs' roots (leaves
    ///         of the op trace, or tensors of the model commitment from its `modelEntries`).
    ///         Naming an op agrees to its inputs.
    function disputeOp(
        uint256 id,
        LmSpec.Arch calldata arch,
        bytes32 modelRoot,
        uint256 leaf,
        LeafOpening calldata output,
        LeafOpening[] calldata inputs,
        bytes32[] calldata modelEntries
    ) external {
        Play storage g = _move(id, Phase.NameOp, false);
        Case storage k = _cases[id];
        _checkModel(k, arch, modelRoot);
        LmSlot.Op memory op = spans.spanOpAt(arch, k.start, k.end, k.positions, leaf);
        if (inputs.length != op.inputs.length) revert OutOfRange("inputs", inputs.length, op.inputs.length);
        uint256 count = k.leafCount;
        if (op.inputs.length > 0 && _readsModel(op)) {
            uint256 n = modelEntries.length / 3;
            if (
                modelEntries.length % 3 != 0
                    || keccak256(abi.encodePacked(STATE_TAG, uint32(n), modelEntries)) != modelRoot
            ) {
                revert BadProof("model entries");
            }
        }
        for (uint256 i = 0; i < op.inputs.length; ++i) {
            k.inRoots[i] = _inputRoot(g, op.inputs[i], inputs[i], modelEntries, count);
            k.inRows[i] = uint32(op.inputs[i].rows);
            k.inCols[i] = uint32(op.inputs[i].cols);
        }
        if (!g.opRoot.verify(output.root, leaf, count, output.proof)) revert BadProof("output leaf");
        (k.kind, k.inputs, k.arg, k.rows, k.cols) =
        (op.kind, uint8(op.inputs.length), int32(op.arg), uint32(op.rows), uint32(op.cols));
        (g.outRows, g.outCols) = (uint32(op.rows), uint32(op.cols));
        g.leaf = uint32(leaf);
        g.outRoot = output.root;
        _pass(g, Phase.RevealRowHashes);
        emit OpDisputed(id, leaf, op.kind, op.rows, op.cols);
    }

    /// @notice Challenger, move 3: element `col` of the revealed row, with one proven row of
    ///         each input (which: `LmElementReferee.inputRows`). The referee recomputes it: if
    ///         it differs from the server's, the server loses, else the challenger.
    function disputeElement(uint256 id, LmSpec.Arch calldata arch, bytes32 modelRoot, ElementMove calldata m)
        external
    {
        Play storage g = _move(id, Phase.NameElement, false);
        Case memory k = _cases[id];
        _checkModel(k, arch, modelRoot);
        if (keccak256(m.row) != g.rowHash) revert BadProof("revealed row");
        if (m.col >= g.outCols) revert OutOfRange("column", m.col, g.outCols);
        if (m.inputRows.length != k.inputs || m.inputProofs.length != k.inputs) {
            revert OutOfRange("input rows", m.inputRows.length, k.inputs);
        }
        LmStep.Op memory op = _stepOp(k);
        LmStep.Params memory p = spans.forwardParams(arch);
        uint256[] memory idx = elements.inputRows(op, p, g.row, m.col, 0, "");
        for (uint256 i = 0; i < k.inputs; ++i) {
            if (m.inputRows[i].length != uint256(k.inCols[i]) * 4) {
                revert OutOfRange("input row bytes", m.inputRows[i].length, uint256(k.inCols[i]) * 4);
            }
            if (!k.inRoots[i].verify(keccak256(m.inputRows[i]), idx[i], k.inRows[i], m.inputProofs[i])) {
                revert BadProof("input row");
            }
        }
        int256 recomputed = elements.element(op, p, g.row, m.col, m.inputRows);
        int256 claimed = ExactOps.get(m.row, m.col);
        _decide(id, recomputed != claimed, false, recomputed, claimed);
    }

    // ─────────────────────────────────────────── internal ────────────────────────────────────────────

    /// @dev The bounds the game can adjudicate; returns the op trace's leaf count.
    function _admit(LmSpec.Arch calldata a, Receipt calldata r) internal view returns (uint256 leaves) {
        _bound("layers", a.layers, 1, MAX_LAYERS);
        _bound("end", r.end, 1, a.layers);
        _bound("start", r.start, 0, r.end - 1);
        _bound("kv_heads", a.kvHeads, 1, a.heads);
        if (a.heads % a.kvHeads != 0) revert Inadmissible("heads", a.heads, a.kvHeads, a.kvHeads);
        _bound("head_dim", a.headDim, 2, 512);
        if (a.headDim % 2 != 0) revert Inadmissible("head_dim", a.headDim, 2, 512);
        _bound("hidden", a.hidden, 1, MAX_ROW / 2);
        _bound("intermediate", a.intermediate, 1, MAX_ROW / 2);
        _bound("context", a.context, 1, MAX_ROW);
        // The q projection's rows are `heads · head_dim` wide, and one is revealed whole.
        _bound("heads x head_dim", uint256(a.heads) * a.headDim, 1, MAX_ROW / 2);
        _bound("positions", r.positions, 1, a.context);
        _bound("positions x heads", uint256(r.positions) * a.heads, 1, MAX_ROWS);
        leaves = spans.spanOpCount(a, r.start, r.end, r.positions) + 1;
        _bound("op-trace leaves", leaves, 1, MAX_LEAVES);
    }

    /// @dev The disputed op as the element referee takes it.
    function _stepOp(Case memory k) internal pure returns (LmStep.Op memory op) {
        (op.kind, op.rows, op.cols, op.arg) = (k.kind, k.rows, k.cols, k.arg);
        op.inputRows = new uint256[](k.inputs);
        for (uint256 i = 0; i < k.inputs; ++i) {
            op.inputRows[i] = k.inRows[i];
        }
    }

    function _checkModel(Case memory k, LmSpec.Arch calldata arch, bytes32 modelRoot) internal pure {
        bytes32 key = modelKey(arch, modelRoot);
        if (key != k.model) revert SpecMismatch(k.model, key);
    }

    function _readsModel(LmSlot.Op memory op) internal pure returns (bool) {
        for (uint256 i = 0; i < op.inputs.length; ++i) {
            if (op.inputs[i].source == LmSlot.FROM_MODEL) return true;
        }
        return false;
    }

    /// @dev The root of one input of the named op: a leaf of the op trace, or a model tensor's
    ///      root from the (already checked) model entries. A span's program reads nothing else.
    function _inputRoot(
        Play storage g,
        LmSlot.Operand memory o,
        LeafOpening calldata opening,
        bytes32[] calldata entries,
        uint256 count
    ) internal view returns (bytes32) {
        if (o.source == LmSlot.FROM_LEAF) {
            if (!g.opRoot.verify(opening.root, o.index, count, opening.proof)) {
                revert BadProof("input leaf");
            }
            return opening.root;
        }
        if (3 * o.index + 2 >= entries.length) revert OutOfRange("tensor", o.index, entries.length / 3);
        return entries[3 * o.index + 2];
    }

    /// @dev The stake a conviction can reach: free and unbonding, never collateral locked in jobs.
    function _slashable(address server) internal view returns (uint256) {
        IStakeManager.Account memory a = stakes.accountOf(server);
        return uint256(a.staked) - a.locked + a.unbonding;
    }

    /// @dev Ids are never reused: what a case keeps is deleted when it is paid out.
    function _clear(uint256) internal override {}

    /// @dev Pays out the verdict: slash and split, or the bond to the server.
    function _settle(uint256 id, bool serverLost) internal override {
        Case memory k = _cases[id];
        delete _cases[id];
        delete openDispute[k.digest];
        if (!serverLost) {
            owed[k.server] += bond;
            emit SpanDisputeSettled(id, k.server, false, 0, bond);
            return;
        }
        convicted[k.digest] = true;
        uint256 available = _slashable(k.server);
        uint256 amount = available < slashAmount ? available : slashAmount;
        uint256 reward = amount * CHALLENGER_PERCENT / 100;
        owed[k.challenger] += bond + reward;
        owed[treasury] += amount - reward;
        emit SpanDisputeSettled(id, k.server, true, amount, bond + reward);
        if (amount > 0) stakes.slash(k.server, amount);
    }
}
