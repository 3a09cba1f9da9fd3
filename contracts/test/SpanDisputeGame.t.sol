// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {GameBase} from "../src/GameBase.sol";
import {LmElementReferee, LmSpanReferee} from "../src/LmReferee.sol";
import {SpanDisputeGame} from "../src/SpanDisputeGame.sol";
import {IStakeManager} from "../src/interfaces/IStakeManager.sol";
import {LmSpec} from "../src/libraries/LmSpec.sol";
import {Fixture} from "./utils/Fixture.sol";
import {LmSpecJson} from "./utils/LmSpecJson.sol";
import {MerkleBuilder} from "./utils/MerkleBuilder.sol";

/// @notice Whole disputes of a span server's receipt (llama-tiny's last block over the
///         reference prompt) on the real StakeManager, every move's calldata from the Rust span
///         trace (crates/lm/tests/vectors/span_dispute.json): a server that lied in a linear
///         op, in the op that reads the input, or in the output it returned is narrowed to the
///         element and slashed; an honest server disputed at the same element keeps its stake
///         and takes the bond. Every refusal of a bad move, and the clocks. Logs the gas.
contract SpanDisputeGameTest is Fixture {
    SpanDisputeGame internal game;
    string internal v;
    uint256 internal serverKey = 0xA11CE;
    address internal server;

    uint256 internal constant BOND = 0.05 ether;
    uint256 internal constant SLASH = 1 ether;
    uint32 internal constant CLOCK = 1 hours;
    uint32 internal constant RECEIPT_WINDOW = 1 days;
    /// @dev When the vectors' receipts were signed: the test's start.
    uint64 internal issued;

    event log_named_uint(string key, uint256 val);

    function setUp() public override {
        super.setUp();
        game = new SpanDisputeGame(
            stakes, new LmSpanReferee(), new LmElementReferee(), BOND, SLASH, CLOCK, treasury, RECEIPT_WINDOW
        );
        vm.startPrank(admin);
        stakes.grantRole(stakes.SLASHER_ROLE(), address(game));
        vm.stopPrank();
        server = vm.addr(serverKey);
        vm.deal(server, 10 ether);
        stakeAs(server, 3 ether);
        v = vm.readFile(string.concat(vm.projectRoot(), "/../crates/lm/tests/vectors/span_dispute.json"));
        issued = uint64(block.timestamp);
    }

    // ─────────────────────────────────────────── reading the vectors ─────────────────────────────────

    function _k(uint256 i, string memory path) internal pure returns (string memory) {
        return string.concat(".cases[", vm.toString(i), "]", path);
    }

    function _arch(uint256 i) internal view returns (LmSpec.Arch memory) {
        return LmSpecJson.arch(v, _k(i, ".arch."));
    }

    function _root(uint256 i) internal view returns (bytes32) {
        return vm.parseJsonBytes32(v, _k(i, ".model_root"));
    }

    function _receipt(uint256 i) internal view returns (SpanDisputeGame.Receipt memory r) {
        r.model = keccak256(abi.encode(_arch(i), _root(i)));
        r.start = uint32(vm.parseJsonUint(v, _k(i, ".start")));
        r.end = uint32(vm.parseJsonUint(v, _k(i, ".end")));
        r.positions = uint32(vm.parseJsonUint(v, _k(i, ".positions")));
        r.input = vm.parseJsonBytes32(v, _k(i, ".input"));
        r.output = vm.parseJsonBytes32(v, _k(i, ".output"));
        r.issuedAt = issued;
    }

    function _sign(uint256 key, SpanDisputeGame.Receipt memory r) internal view returns (bytes memory) {
        (uint8 sv, bytes32 sr, bytes32 ss) = vm.sign(key, game.receiptDigest(r));
        return abi.encodePacked(sr, ss, sv);
    }

    function _leaves(uint256 i) internal view returns (bytes32[] memory) {
        return vm.parseJsonBytes32Array(v, _k(i, ".leaves"));
    }

    function _inputs(uint256 i) internal view returns (SpanDisputeGame.LeafOpening[] memory ins) {
        uint256 n = _count(i);
        ins = new SpanDisputeGame.LeafOpening[](n);
        for (uint256 j = 0; j < n; ++j) {
            string memory path = string.concat(".moves.inputs[", vm.toString(j), "]");
            ins[j].root = vm.parseJsonBytes32(v, _k(i, string.concat(path, ".root")));
            ins[j].proof = vm.parseJsonBytes32Array(v, _k(i, string.concat(path, ".proof")));
        }
    }

    function _count(uint256 i) internal view returns (uint256 n) {
        while (vm.keyExistsJson(v, _k(i, string.concat(".moves.inputs[", vm.toString(n), "]")))) ++n;
    }

    function _output(uint256 i) internal view returns (SpanDisputeGame.LeafOpening memory) {
        return SpanDisputeGame.LeafOpening({
            root: vm.parseJsonBytes32(v, _k(i, ".moves.output.root")),
            proof: vm.parseJsonBytes32Array(v, _k(i, ".moves.output.proof"))
        });
    }

    function _entries(uint256 i) internal view returns (bytes32[] memory) {
        return vm.parseJsonBytes32Array(v, _k(i, ".moves.model_entries"));
    }

    function _row(uint256 i, string memory path) internal view returns (bytes memory) {
        return MerkleBuilder.pack(vm.parseJsonIntArray(v, _k(i, path)));
    }

    function _element(uint256 i) internal view returns (SpanDisputeGame.ElementMove memory m) {
        uint256 n = _count(i);
        m.col = vm.parseJsonUint(v, _k(i, ".moves.c"));
        m.row = _row(i, ".moves.row");
        m.inputRows = new bytes[](n);
        m.inputProofs = new bytes32[][](n);
        for (uint256 j = 0; j < n; ++j) {
            m.inputRows[j] = _row(i, string.concat(".moves.input_rows[", vm.toString(j), "]"));
            m.inputProofs[j] = vm.parseJsonBytes32Array(
                v, _k(i, string.concat(".moves.input_proofs[", vm.toString(j), "]"))
            );
        }
    }

    // ─────────────────────────────────────────── playing ─────────────────────────────────────────────

    function _open(uint256 i) internal returns (uint256 id) {
        SpanDisputeGame.Receipt memory r = _receipt(i);
        bytes memory sig = _sign(serverKey, r);
        vm.prank(validator);
        id = game.open{value: BOND}(_arch(i), _root(i), r, sig);
    }

    function _commit(uint256 i, uint256 id) internal {
        vm.prank(server);
        game.commitTrace(id, _leaves(i));
    }

    function _nameOp(uint256 i, uint256 id) internal {
        uint256 leaf = vm.parseJsonUint(v, _k(i, ".moves.leaf"));
        vm.prank(validator);
        game.disputeOp(id, _arch(i), _root(i), leaf, _output(i), _inputs(i), _entries(i));
    }

    function _rows(uint256 i, uint256 id) internal {
        vm.prank(server);
        game.revealRowHashes(id, vm.parseJsonBytes32Array(v, _k(i, ".moves.row_hashes")));
        vm.prank(validator);
        game.pickRow(id, vm.parseJsonUint(v, _k(i, ".moves.r")));
        GameBase.RowOpening memory o = GameBase.RowOpening({
            row: _row(i, ".moves.row"), proof: vm.parseJsonBytes32Array(v, _k(i, ".moves.row_proof"))
        });
        vm.prank(server);
        game.revealRow(id, o);
    }

    /// @dev Plays case `i` to the element, logging each move's gas.
    function _play(uint256 i, string memory who) internal returns (uint256 id) {
        vm.assertEq(keccak256(bytes(vm.parseJsonString(v, _k(i, ".server")))), keccak256(bytes(who)), "case");
        uint256 g = gasleft();
        id = _open(i);
        emit log_named_uint(string.concat(who, ": open (challenger)"), g - gasleft());
        g = gasleft();
        _commit(i, id);
        emit log_named_uint(string.concat(who, ": commitTrace (server)"), g - gasleft());
        g = gasleft();
        _nameOp(i, id);
        emit log_named_uint(string.concat(who, ": disputeOp (challenger)"), g - gasleft());
        _rows(i, id);
        g = gasleft();
        SpanDisputeGame.ElementMove memory m = _element(i);
        vm.prank(validator);
        game.disputeElement(id, _arch(i), _root(i), m);
        emit log_named_uint(string.concat(who, ": disputeElement (challenger)"), g - gasleft());
    }

    function _assertSlashed(uint256 id, uint256 i) internal {
        vm.assertEq(stakes.accountOf(server).staked, 3 ether - SLASH, "slashed");
        vm.assertEq(game.owed(validator), BOND + SLASH / 2, "bond and half the slash");
        vm.assertEq(game.owed(treasury), SLASH / 2, "the treasury's half");
        vm.assertEq(address(game).balance, BOND + SLASH, "all of it held for withdrawal");
        bytes32 digest = game.receiptDigest(_receipt(i));
        vm.assertTrue(game.convicted(digest), "convicted");
        vm.assertEq(game.openDispute(digest), 0, "closed");
        (GameBase.Phase phase,,,,) = game.gameOf(id);
        vm.assertEq(uint256(phase), 0, "over");
        uint256 before = validator.balance;
        vm.prank(validator);
        game.withdraw();
        vm.assertEq(validator.balance, before + BOND + SLASH / 2, "paid");
        vm.prank(treasury);
        game.withdraw();
        vm.assertEq(treasury.balance, SLASH / 2, "value");
        vm.assertEq(address(game).balance, 0, "value");
    }

    // ─────────────────────────────────────────── verdicts ────────────────────────────────────────────

    function test_aServerThatLiedInALinearOpIsSlashed() public {
        uint256 id = _play(0, "lying");
        _assertSlashed(id, 0);
        // A convicted receipt cannot be disputed again.
        SpanDisputeGame.Receipt memory r = _receipt(0);
        bytes memory sig = _sign(serverKey, r);
        bytes32 digest = game.receiptDigest(r);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SpanDisputeGame.AlreadyConvicted.selector, digest));
        game.open{value: BOND}(_arch(0), _root(0), r, sig);
    }

    function test_anHonestServerDisputedAtTheSameElementKeepsItsStakeAndTakesTheBond() public {
        _play(1, "honest");
        vm.assertEq(stakes.accountOf(server).staked, 3 ether, "not slashed");
        vm.assertEq(game.owed(server), BOND, "the challenger's bond");
        vm.assertEq(game.owed(validator), 0, "value");
        vm.assertFalse(game.convicted(game.receiptDigest(_receipt(1))), "value");
        uint256 before = server.balance;
        vm.prank(server);
        game.withdraw();
        vm.assertEq(server.balance, before + BOND, "value");
    }

    function test_aLieInTheOpThatReadsTheInputIsSlashed() public {
        _assertSlashed(_play(2, "lying_first"), 2);
    }

    function test_aLieInTheReturnedOutputIsSlashed() public {
        _assertSlashed(_play(3, "lying_output"), 3);
    }

    function test_theSlashReachesUnbondingStake() public {
        vm.prank(server);
        stakes.requestUnstake(2.5 ether);
        uint256 id = _open(0);
        vm.warp(block.timestamp + CLOCK + 1);
        game.timeout(id);
        IStakeManager.Account memory a = stakes.accountOf(server);
        vm.assertEq(uint256(a.staked), 0, "the free half ether first");
        vm.assertEq(uint256(a.unbonding), 2 ether, "then unbonding stake");
        vm.assertEq(game.owed(validator), BOND + SLASH / 2, "the reward");
    }

    function test_theSlashIsCappedAtWhatTheServerHas() public {
        serverKey = 0xC0FFEE;
        server = vm.addr(serverKey);
        vm.deal(server, 1 ether);
        stakeAs(server, 0.4 ether);
        uint256 id = _open(0);
        vm.warp(block.timestamp + CLOCK + 1);
        game.timeout(id);
        vm.assertEq(uint256(stakes.accountOf(server).staked), 0, "all of it");
        vm.assertEq(game.owed(validator), BOND + 0.2 ether, "bond and half of what there was");
        vm.assertEq(game.owed(treasury), 0.2 ether, "the other half");
    }

    // ─────────────────────────────────────────── clocks ──────────────────────────────────────────────

    function test_aServerThatNeverCommitsIsSlashedByTheClock() public {
        uint256 id = _open(0);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockRunning.selector, id, uint256(CLOCK)));
        game.timeout(id);
        vm.warp(block.timestamp + CLOCK + 1);
        vm.prank(server);
        vm.expectRevert(abi.encodeWithSelector(GameBase.ClockExpired.selector, id));
        game.commitTrace(id, _leaves(0));
        game.timeout(id);
        _assertSlashed(id, 0);
    }

    function test_aChallengerThatNeverNamesAnOpLosesItsBond() public {
        uint256 id = _open(1);
        _commit(1, id);
        vm.warp(block.timestamp + CLOCK + 1);
        vm.prank(stranger);
        game.timeout(id);
        vm.assertEq(game.owed(server), BOND, "value");
        vm.assertEq(stakes.accountOf(server).staked, 3 ether, "value");
    }

    function test_aWatchtowerMayCommitForTheServer() public {
        address tower = makeAddr("tower");
        vm.prank(server);
        game.setDefender(tower);
        uint256 id = _open(1);
        vm.prank(tower);
        game.commitTrace(id, _leaves(1));
        (GameBase.Phase phase, bool serverToMove,,,) = game.gameOf(id);
        vm.assertEq(uint256(phase), uint256(GameBase.Phase.NameOp), "value");
        vm.assertFalse(serverToMove, "value");
    }

    // ─────────────────────────────────────────── bad opens ───────────────────────────────────────────

    function test_openRefusesAWrongBondModelOrSignature() public {
        SpanDisputeGame.Receipt memory r = _receipt(0);
        LmSpec.Arch memory a = _arch(0);
        bytes32 root = _root(0);
        bytes memory sig = _sign(serverKey, r);
        vm.startPrank(validator);
        vm.expectRevert(abi.encodeWithSelector(SpanDisputeGame.WrongBond.selector, BOND - 1, BOND));
        game.open{value: BOND - 1}(a, root, r, sig);
        bytes32 other = keccak256(abi.encode(a, bytes32(uint256(1))));
        vm.expectRevert(abi.encodeWithSelector(GameBase.SpecMismatch.selector, r.model, other));
        game.open{value: BOND}(a, bytes32(uint256(1)), r, sig);
        vm.expectRevert(SpanDisputeGame.BadSignature.selector);
        game.open{value: BOND}(a, root, r, hex"1234");
        vm.stopPrank();
        vm.prank(server);
        vm.expectRevert(abi.encodeWithSelector(SpanDisputeGame.OwnReceipt.selector, server));
        game.open{value: BOND}(a, root, r, sig);
        // Signed by an account with no stake: nothing to slash, so no bond is risked.
        address nobody = vm.addr(0xB0B);
        bytes memory unstaked = _sign(0xB0B, r);
        vm.prank(validator);
        vm.expectRevert(abi.encodeWithSelector(SpanDisputeGame.NothingAtStake.selector, nobody));
        game.open{value: BOND}(a, root, r, unstaked);
        // One open dispute per receipt.
        uint256 id = _open(0);
        bytes32 digest = game.receiptDigest(r);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SpanDisputeGame.AlreadyDisputed.selector, digest, id));
        game.open{value: BOND}(a, root, r, sig);
    }

    function test_openRefusesASpanTheGameCannotAdjudicate() public {
        LmSpec.Arch memory a = _arch(0);
        bytes32 root = _root(0);
        SpanDisputeGame.Receipt memory r = _receipt(0);
        _refuse(
            a,
            root,
            _with(r, 0, 3, r.positions),
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "end", 3, 1, 2)
        );
        _refuse(
            a,
            root,
            _with(r, 2, 2, r.positions),
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "start", 2, 0, 1)
        );
        _refuse(
            a,
            root,
            _with(r, 1, 2, 0),
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "positions", 0, 1, 128)
        );
        _refuse(
            a,
            root,
            _with(r, 1, 2, 129),
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "positions", 129, 1, 128)
        );
        LmSpec.Arch memory odd = _arch(0);
        odd.headDim = 11;
        r = _receipt(0);
        r.model = keccak256(abi.encode(odd, root));
        _refuse(odd, root, r, abi.encodeWithSelector(GameBase.Inadmissible.selector, "head_dim", 11, 2, 512));
        LmSpec.Arch memory deep = _arch(0);
        deep.layers = 65;
        r.model = keccak256(abi.encode(deep, root));
        _refuse(deep, root, r, abi.encodeWithSelector(GameBase.Inadmissible.selector, "layers", 65, 1, 64));
        LmSpec.Arch memory heads = _arch(0);
        heads.kvHeads = 3;
        r.model = keccak256(abi.encode(heads, root));
        _refuse(heads, root, r, abi.encodeWithSelector(GameBase.Inadmissible.selector, "heads", 4, 3, 3));
        // The q rows (`heads · head_dim` values) are revealed whole: at most 4 096.
        LmSpec.Arch memory wide = _arch(0);
        (wide.heads, wide.kvHeads, wide.headDim) = (64, 64, 128);
        r.model = keccak256(abi.encode(wide, root));
        _refuse(
            wide,
            root,
            r,
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "heads x head_dim", 8192, 1, 4096)
        );
        // Score rows past 2^20 (`positions · heads`): 8 192 positions of 256 heads of 16.
        LmSpec.Arch memory many = _arch(0);
        (many.heads, many.kvHeads, many.headDim, many.context) = (256, 256, 16, 8192);
        r.model = keccak256(abi.encode(many, root));
        _refuse(
            many,
            root,
            _with(r, 1, 2, 8192),
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "positions x heads", 1 << 21, 1, 1 << 20)
        );
        // 2^20 score rows are admitted (they are opened by chunks of rows).
        (many.heads, many.kvHeads, many.headDim) = (128, 128, 32);
        r.model = keccak256(abi.encode(many, root));
        bytes memory sig = _sign(serverKey, r);
        vm.prank(validator);
        game.open{value: BOND}(many, root, r, sig);
    }

    function test_aReceiptCanBeDisputedOnlyWithinItsWindow() public {
        SpanDisputeGame.Receipt memory r = _receipt(0);
        LmSpec.Arch memory a = _arch(0);
        bytes32 root = _root(0);
        // Signed with a clock ahead of the chain's by more than the skew allowed.
        r.issuedAt = uint64(block.timestamp + 5 minutes + 1);
        _refuse(
            a,
            root,
            r,
            abi.encodeWithSelector(
                SpanDisputeGame.ReceiptFromTheFuture.selector, r.issuedAt, block.timestamp + 5 minutes
            )
        );
        // A day after it was issued, a receipt is no longer evidence.
        r = _receipt(0);
        vm.warp(block.timestamp + RECEIPT_WINDOW + 1);
        _refuse(
            a,
            root,
            r,
            abi.encodeWithSelector(
                SpanDisputeGame.ReceiptExpired.selector, r.issuedAt, r.issuedAt + RECEIPT_WINDOW
            )
        );
        // On its last second it still is.
        vm.warp(block.timestamp - 1);
        _open(0);
    }

    function _with(SpanDisputeGame.Receipt memory r, uint32 start, uint32 end, uint32 positions)
        internal
        pure
        returns (SpanDisputeGame.Receipt memory out)
    {
        out = r;
        (out.start, out.end, out.positions) = (start, end, positions);
    }

    function _refuse(LmSpec.Arch memory a, bytes32 root, SpanDisputeGame.Receipt memory r, bytes memory err)
        internal
    {
        bytes memory sig = _sign(serverKey, r);
        vm.prank(validator);
        vm.expectRevert(err);
        game.open{value: BOND}(a, root, r, sig);
    }

    // ─────────────────────────────────────────── bad moves ───────────────────────────────────────────

    function test_aCommitMustBeTheWholeTraceFromTheReceiptsInputToItsOutput() public {
        uint256 id = _open(0);
        bytes32[] memory leaves = _leaves(0);
        uint256 n = leaves.length;
        vm.startPrank(server);
        bytes32[] memory short = new bytes32[](n - 1);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "op-trace leaves", n - 1, n));
        game.commitTrace(id, short);
        bytes32 input = leaves[0];
        leaves[0] = bytes32(uint256(7));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input leaf"));
        game.commitTrace(id, leaves);
        leaves[0] = input;
        leaves[n - 1] = bytes32(uint256(7));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "output leaf"));
        game.commitTrace(id, leaves);
        vm.stopPrank();
        vm.prank(validator);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.NotYourMove.selector, id, GameBase.Phase.Commit, validator)
        );
        game.commitTrace(id, _leaves(0));
    }

    function test_aChallengerMustProveTheOpsInputsAndOutput() public {
        uint256 id = _open(0);
        _commit(0, id);
        uint256 leaf = vm.parseJsonUint(v, _k(0, ".moves.leaf"));
        LmSpec.Arch memory a = _arch(0);
        bytes32 root = _root(0);
        SpanDisputeGame.LeafOpening[] memory ins = _inputs(0);
        SpanDisputeGame.LeafOpening memory out = _output(0);
        bytes32[] memory entries = _entries(0);
        vm.startPrank(validator);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "inputs", 1, ins.length));
        game.disputeOp(id, a, root, leaf, out, new SpanDisputeGame.LeafOpening[](1), entries);
        entries[0] = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "model entries"));
        game.disputeOp(id, a, root, leaf, out, ins, entries);
        entries = _entries(0);
        ins[0].root = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input leaf"));
        game.disputeOp(id, a, root, leaf, out, ins, entries);
        ins = _inputs(0);
        out.root = bytes32(uint256(1));
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "output leaf"));
        game.disputeOp(id, a, root, leaf, out, ins, entries);
        LmSpec.Arch memory other = a;
        other.vocab = 385;
        vm.expectRevert(
            abi.encodeWithSelector(
                GameBase.SpecMismatch.selector, _receipt(0).model, keccak256(abi.encode(other, root))
            )
        );
        game.disputeOp(id, other, root, leaf, _output(0), ins, entries);
        vm.stopPrank();
    }

    function test_theElementMoveMustOpenTheRevealedRowAndProvenInputRows() public {
        uint256 id = _open(0);
        _commit(0, id);
        _nameOp(0, id);
        _rows(0, id);
        LmSpec.Arch memory a = _arch(0);
        bytes32 root = _root(0);
        SpanDisputeGame.ElementMove memory m = _element(0);
        vm.startPrank(validator);
        m.row = hex"00";
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "revealed row"));
        game.disputeElement(id, a, root, m);
        m = _element(0);
        uint256 cols = m.row.length / 4;
        m.col = cols;
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "column", cols, cols));
        game.disputeElement(id, a, root, m);
        m = _element(0);
        m.inputRows = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(GameBase.OutOfRange.selector, "input rows", 0, _count(0)));
        game.disputeElement(id, a, root, m);
        m = _element(0);
        m.inputRows[0] = hex"0000";
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.OutOfRange.selector, "input row bytes", 2, uint256(a.hidden) * 4)
        );
        game.disputeElement(id, a, root, m);
        m = _element(0);
        m.inputRows[0][0] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(GameBase.BadProof.selector, "input row"));
        game.disputeElement(id, a, root, m);
        vm.stopPrank();
    }

    // ─────────────────────────────────────────── money ───────────────────────────────────────────────

    function test_onlyTheStakeManagerSendsEthAndOnlyWhatIsOwedIsWithdrawn() public {
        vm.prank(stranger);
        (bool ok,) = address(game).call{value: 1}("");
        vm.assertFalse(ok, "refused");
        vm.prank(stranger);
        vm.expectRevert(SpanDisputeGame.NothingOwed.selector);
        game.withdraw();
    }

    function test_theConstructorRefusesUnusableTerms() public {
        LmSpanReferee s = new LmSpanReferee();
        LmElementReferee e = new LmElementReferee();
        vm.expectRevert(abi.encodeWithSelector(GameBase.Inadmissible.selector, "clock", 1, 60, 7 days));
        new SpanDisputeGame(stakes, s, e, BOND, SLASH, 1, treasury, RECEIPT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "slash", 0, 1, type(uint128).max)
        );
        new SpanDisputeGame(stakes, s, e, BOND, 0, CLOCK, treasury, RECEIPT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "treasury", 0, 1, type(uint160).max)
        );
        new SpanDisputeGame(stakes, s, e, BOND, SLASH, CLOCK, address(0), RECEIPT_WINDOW);
        vm.expectRevert(
            abi.encodeWithSelector(GameBase.Inadmissible.selector, "receipt window", 59, 60, 30 days)
        );
        new SpanDisputeGame(stakes, s, e, BOND, SLASH, CLOCK, treasury, 59);
    }
}
