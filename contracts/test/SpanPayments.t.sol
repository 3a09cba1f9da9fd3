// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SpanPayments} from "../src/SpanPayments.sol";
import {EtherRefuser} from "./utils/EtherRefuser.sol";
import {Test} from "./utils/Test.sol";

/// @notice Signs vouchers as a client would.
abstract contract VoucherSigner is Test {
    SpanPayments internal payments;

    function _sign(uint256 key, address server, uint64 session, uint256 amount, bytes32 outputs)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, payments.voucherDigest(server, session, amount, outputs));
        return abi.encodePacked(r, s, v);
    }
}

contract SpanPaymentsTest is VoucherSigner {
    uint256 internal constant CLIENT_KEY = 0xC11E47;
    address internal client;
    address internal server;
    address internal other;
    bytes32 internal constant OUTPUTS = keccak256("the span's outputs");

    function setUp() public {
        payments = new SpanPayments(1 days);
        client = vm.addr(CLIENT_KEY);
        server = makeAddr("server");
        other = makeAddr("other server");
        vm.deal(client, 10 ether);
    }

    function _deposit(uint256 amount) internal {
        vm.prank(client);
        payments.deposit{value: amount}();
    }

    function _redeem(address by, uint64 session, uint256 amount, bytes memory sig)
        internal
        returns (uint256)
    {
        vm.prank(by);
        return payments.redeem(client, session, amount, OUTPUTS, sig);
    }

    function test_a_server_is_paid_what_each_voucher_adds_and_no_more() public {
        _deposit(1 ether);
        bytes memory first = _sign(CLIENT_KEY, server, 7, 0.1 ether, OUTPUTS);
        vm.expectEmit(address(payments));
        emit SpanPayments.Redeemed(client, server, 7, 0.1 ether, 0.1 ether, OUTPUTS);
        vm.assertEq(_redeem(server, 7, 0.1 ether, first), 0.1 ether, "first voucher");
        bytes memory second = _sign(CLIENT_KEY, server, 7, 0.25 ether, OUTPUTS);
        vm.assertEq(_redeem(server, 7, 0.25 ether, second), 0.15 ether, "what the second adds");
        vm.assertEq(server.balance, 0.25 ether, "server paid the latest amount in all");
        vm.assertEq(payments.accountOf(client).balance, 0.75 ether, "client charged as much");
        vm.assertEq(payments.paidOf(client, server, 7), 0.25 ether, "session total");
        vm.assertEq(address(payments).balance, 0.75 ether, "the contract holds the rest");
        // The same voucher again, or an older one: nothing more.
        vm.expectRevert(
            abi.encodeWithSelector(SpanPayments.NothingToRedeem.selector, 0.25 ether, 0.25 ether, 0.75 ether)
        );
        _redeem(server, 7, 0.25 ether, second);
        vm.expectRevert(
            abi.encodeWithSelector(SpanPayments.NothingToRedeem.selector, 0.25 ether, 0.1 ether, 0.75 ether)
        );
        _redeem(server, 7, 0.1 ether, first);
        // Another session is its own channel.
        vm.assertEq(
            _redeem(server, 8, 0.05 ether, _sign(CLIENT_KEY, server, 8, 0.05 ether, OUTPUTS)),
            0.05 ether,
            "s8"
        );
    }

    function test_a_voucher_pays_only_the_server_it_names_with_the_fields_signed() public {
        _deposit(1 ether);
        bytes memory sig = _sign(CLIENT_KEY, server, 1, 0.1 ether, OUTPUTS);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        _redeem(other, 1, 0.1 ether, sig);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        _redeem(server, 1, 0.2 ether, sig);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        _redeem(server, 2, 0.1 ether, sig);
        vm.prank(server);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        payments.redeem(client, 1, 0.1 ether, keccak256("other outputs"), sig);
        // Signed by someone else, or not a signature.
        bytes memory stranger = _sign(0xBAD, server, 1, 0.1 ether, OUTPUTS);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        _redeem(server, 1, 0.1 ether, stranger);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        _redeem(server, 1, 0.1 ether, hex"1234");
        vm.prank(server);
        vm.expectRevert(SpanPayments.BadSignature.selector);
        payments.redeem(address(0), 1, 0.1 ether, OUTPUTS, new bytes(65));
        vm.assertEq(payments.accountOf(client).balance, 1 ether, "nothing moved");
    }

    function test_a_short_deposit_pays_what_it_holds_and_the_rest_after_a_top_up() public {
        _deposit(0.04 ether);
        bytes memory sig = _sign(CLIENT_KEY, server, 3, 0.1 ether, OUTPUTS);
        vm.assertEq(_redeem(server, 3, 0.1 ether, sig), 0.04 ether, "what it holds");
        vm.expectRevert(
            abi.encodeWithSelector(SpanPayments.NothingToRedeem.selector, 0.04 ether, 0.1 ether, 0)
        );
        _redeem(server, 3, 0.1 ether, sig);
        _deposit(1 ether);
        vm.assertEq(_redeem(server, 3, 0.1 ether, sig), 0.06 ether, "the rest");
        vm.assertEq(server.balance, 0.1 ether, "the voucher's amount in all");
    }

    function test_a_withdrawal_waits_the_delay_and_servers_redeem_first() public {
        _deposit(1 ether);
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(SpanPayments.InsufficientBalance.selector, 1 ether, 2 ether));
        payments.requestWithdrawal(2 ether);
        vm.prank(client);
        payments.requestWithdrawal(0.8 ether);
        uint64 unlockAt = uint64(block.timestamp + 1 days);
        vm.assertEq(payments.accountOf(client).unlockAt, unlockAt, "unlock time");
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(SpanPayments.Locked.selector, unlockAt));
        payments.withdraw();
        // During the delay a server redeems what it was promised.
        _redeem(server, 1, 0.7 ether, _sign(CLIENT_KEY, server, 1, 0.7 ether, OUTPUTS));
        vm.warp(unlockAt);
        uint256 before = client.balance;
        vm.prank(client);
        payments.withdraw();
        vm.assertEq(client.balance - before, 0.3 ether, "what was left, not what was asked");
        vm.assertEq(payments.accountOf(client).balance, 0, "empty");
        vm.assertEq(address(payments).balance, 0, "the contract too");
        vm.prank(client);
        vm.expectRevert(SpanPayments.NoWithdrawal.selector);
        payments.withdraw();
    }

    function test_bad_calls_revert_and_change_nothing() public {
        vm.expectRevert(abi.encodeWithSelector(SpanPayments.DelayOutOfRange.selector, 59));
        new SpanPayments(59);
        vm.expectRevert(abi.encodeWithSelector(SpanPayments.DelayOutOfRange.selector, 31 days));
        new SpanPayments(31 days);
        vm.prank(client);
        vm.expectRevert(SpanPayments.ZeroAmount.selector);
        payments.deposit();
        vm.prank(client);
        vm.expectRevert(SpanPayments.ZeroAmount.selector);
        payments.requestWithdrawal(0);
        // A server that refuses ETH is not paid, and the voucher stays redeemable.
        _deposit(1 ether);
        EtherRefuser refuser = new EtherRefuser();
        bytes memory sig = _sign(CLIENT_KEY, address(refuser), 1, 0.1 ether, OUTPUTS);
        vm.expectRevert(SpanPayments.TransferFailed.selector);
        refuser.exec(
            address(payments), abi.encodeCall(SpanPayments.redeem, (client, 1, 0.1 ether, OUTPUTS, sig))
        );
        vm.assertEq(payments.paidOf(client, address(refuser), 1), 0, "nothing recorded");
        vm.assertEq(payments.accountOf(client).balance, 1 ether, "nothing taken");
    }

    /// @notice Whatever the vouchers and deposits, a session is paid at most the largest amount
    ///         signed, and the contract holds exactly the client's balance.
    function testFuzz_a_session_is_never_paid_more_than_signed(
        uint256[8] memory amounts,
        uint256[8] memory tops
    ) public {
        uint256 most;
        uint256 deposited;
        for (uint256 i; i < 8; ++i) {
            uint256 top = bound(tops[i], 0, 1 ether);
            if (top > 0) {
                vm.deal(client, top);
                _deposit(top);
                deposited += top;
            }
            uint256 amount = bound(amounts[i], 0, 3 ether);
            bytes memory sig = _sign(CLIENT_KEY, server, 9, amount, OUTPUTS);
            vm.prank(server);
            try payments.redeem(client, 9, amount, OUTPUTS, sig) {} catch {}
            if (amount > most) most = amount;
            vm.assertLe(server.balance, most, "never more than signed");
            vm.assertEq(server.balance, payments.paidOf(client, server, 9), "paid is recorded");
            vm.assertEq(address(payments).balance, payments.accountOf(client).balance, "solvent");
            vm.assertEq(deposited - server.balance, payments.accountOf(client).balance, "conserved");
        }
    }
}
