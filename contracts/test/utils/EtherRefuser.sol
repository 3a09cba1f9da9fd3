// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice An account that forwards calls and accepts no ETH (no receive, no fallback), for
///         testing that failed payouts revert without changing state. The Rust players' anvil
///         tests also name it a worker's defender: its moves then come from a contract, in a
///         transaction whose calldata is `exec`'s, and the players must read them from events.
contract EtherRefuser {
    /// @notice Calls `target` with `data` and `msg.value`, bubbling up any revert.
    function exec(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
        return ret;
    }
}
