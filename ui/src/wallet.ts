// The browser's wallet (EIP-1193, as MetaMask and the like inject it): the page asks it for
// the chain and an account, and has it sign the transactions that the node built. A few
// requests, so no library: viem would be 40 kB for four calls.

import { get, type WalletCall } from "./api";

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** A wallet's refusal or failure, in words that say what to do. */
export class WalletError extends Error {}

function wallet(): Eip1193 {
  const w = (window as unknown as { ethereum?: Eip1193 }).ethereum;
  if (!w || typeof w.request !== "function") {
    throw new WalletError(
      "No browser wallet found: install one (MetaMask or the like) and reload, or unlock the node's account above. Nothing was sent.",
    );
  }
  return w;
}

/** EIP-1193 error codes: 4001 the user rejected, 4100 not authorized. */
function explain(e: unknown, sent: number): WalletError {
  const code = (e as { code?: number })?.code;
  const after =
    sent > 0
      ? ` ${sent} earlier transaction(s) went through; the job itself was not posted and nothing was escrowed.`
      : " Nothing was sent.";
  if (code === 4001) return new WalletError(`You rejected the request in your wallet.${after}`);
  if (code === 4100) return new WalletError(`The wallet did not let this page use an account: allow it, then post again.${after}`);
  const msg = (e as { message?: string })?.message ?? String(e);
  return new WalletError(`The wallet failed: ${msg}.${after}`);
}

/** Checks that the wallet is on `chainId` and returns its account; sends nothing. */
export async function connect(chainId: number): Promise<string> {
  const w = wallet();
  let on: number;
  let accounts: string[];
  try {
    on = Number(BigInt(String(await w.request({ method: "eth_chainId" }))));
  } catch (e) {
    throw explain(e, 0);
  }
  if (on !== chainId) {
    throw new WalletError(
      `Your wallet is on chain ${on}, but this market is on chain ${chainId}: switch the wallet to chain ${chainId}, then post again. Nothing was sent.`,
    );
  }
  try {
    accounts = (await w.request({ method: "eth_requestAccounts" })) as string[];
  } catch (e) {
    throw explain(e, 0);
  }
  if (!accounts?.length) throw new WalletError("The wallet gave no account: unlock it, then post again. Nothing was sent.");
  return accounts[0];
}

/** Has the wallet send `calls` from `from` in order, each mined before the next; the hash of the last. */
export async function sendAll(from: string, calls: WalletCall[], progress: (m: string) => void): Promise<string> {
  const w = wallet();
  let last = "";
  for (const [i, c] of calls.entries()) {
    progress(`Confirm in your wallet (${i + 1} of ${calls.length}): ${c.what}.`);
    try {
      last = String(
        await w.request({
          method: "eth_sendTransaction",
          params: [{ from, to: c.to, data: c.data, value: c.value }],
        }),
      );
    } catch (e) {
      throw explain(e, i);
    }
    progress(`Sent ${last}; waiting for it to be mined…`);
    for (;;) {
      const r = await get<{ state: string }>(`tx/${last}`);
      if (r.state === "mined") break;
      if (r.state === "failed") {
        throw new WalletError(`The transaction ${last} (${c.what}) failed on-chain. ${i > 0 ? "Earlier ones went through; " : ""}the job was not posted.`);
      }
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }
  return last;
}
