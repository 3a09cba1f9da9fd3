// The node's local API (crates/ui): every request carries the secret token that `pedals ui`
// printed in the page's address (after `#token=`); the page keeps it for this tab only and
// takes it out of the address bar, so that it is not bookmarked or shared by accident.

const KEY = "pedals.token";

/** Reads the token from the address (once) or from this tab's storage. */
export function token(): string | null {
  const m = /(?:^#|&)token=([0-9a-f]{64})(?:&|$)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, m[1]);
    history.replaceState(null, "", location.pathname + "#/");
  }
  return sessionStorage.getItem(KEY);
}

/** An error the node answered with, or a network failure, in words for the page. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** GETs `path` from the node's API as JSON. */
export async function get<T>(path: string): Promise<T> {
  return call<T>(path, {});
}

/** POSTs `body` (JSON, or a file's bytes) to `path` of the node's API; its JSON answer. */
export async function send<T>(path: string, body: unknown): Promise<T> {
  const file = body instanceof Blob;
  return call<T>(path, {
    method: "POST",
    headers: { "Content-Type": file ? "application/octet-stream" : "application/json" },
    body: file ? body : JSON.stringify(body),
  });
}

async function call<T>(path: string, init: RequestInit): Promise<T> {
  const t = token();
  if (!t) {
    throw new ApiError(
      "This page has no access token. Open the address that `pedals ui` printed (it ends with #token=…).",
      401,
    );
  }
  let res: Response;
  try {
    res = await fetch(`/api/${path}`, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${t}` },
      cache: "no-store",
    });
  } catch {
    throw new ApiError("The node does not answer: is `pedals ui` still running?", 0);
  }
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = body?.error?.message ?? `the node answered ${res.status}`;
    throw new ApiError(msg, res.status);
  }
  return body as T;
}

/** A job as the node's index has it (amounts in wei, as decimal strings). */
export interface Job {
  id: number;
  status: string;
  requester: string;
  worker: string | null;
  paymentWei: string;
  collateralWei: string | null;
  payoutWei: string | null;
  feeWei: string | null;
  postedBlock: number;
  challengeEndsAt: number | null;
}

export interface Provider {
  address: string;
  stakedWei: string;
  lockedWei: string;
  unbondingWei: string;
  jobs: number;
  earnedWei: string;
}

export interface Market {
  chainId: number;
  explorer: string | null;
  block: number;
  totals: {
    jobs: number;
    open: number;
    running: number;
    settled: number;
    volumeWei: string;
    feesWei: string;
  };
  jobs: Job[];
  providers: Provider[];
  disputes: Dispute[];
  /** Volume and fees so far, at each block where either moved. */
  overTime: { block: number; volumeWei: string; feesWei: string }[];
}

export interface JobEvent {
  name: string;
  block: number;
  tx: string;
  detail: string;
}

/** A progress report the job's worker signed and the node heard on the network. */
export interface Report {
  worker: string;
  stepsDone: number;
  steps: number;
  at: number;
  /** The training loss at the worker's last checkpoint (its word), if it reported one. */
  loss: number | null;
}

export interface JobPage {
  now: number;
  /** The block explorer's base address, when the chain has one. */
  explorer: string | null;
  job: Job;
  events: JobEvent[];
  progress: Report[];
  /** What this node fetched of the result, once the page asked. */
  result: JobResultView | null;
}

/** A job's result as the requester's node fetched, checked and scored it. */
export interface JobResultView {
  finalStateHash: string;
  saved: string;
  accuracy: number | null;
  scoredOn: number | null;
  inference: boolean;
}

/** The node's account and chain (`/api/wallet`). */
export interface NodeWallet {
  chainId: number;
  canPost: boolean;
  keystore: boolean;
  address?: string | null;
  balanceWei?: string | null;
}

/** What a job would be (`/api/jobs/plan`). */
export interface Plan {
  kind: "training" | "inference";
  chunk: number | null;
  specCid: string;
  datasetCid: string;
  modelCid: string;
  layers: number[];
  batch: number;
  steps: number;
  samples: number;
  holdout: number;
  paymentWei: string;
  gasWei: string;
  totalWei: string;
  workerStakeWei: string;
  claimWithinSecs: number;
  deliverWithinSecs: number;
  challengeWindowSecs: number;
}

/** A dataset the node keeps from an upload. */
export interface Upload {
  cid: string;
  samples: number;
  features: number;
  classes: number;
}

/** A transaction for the browser's wallet to sign. */
export interface WalletCall {
  what: string;
  to: string;
  data: string;
  value: string;
}

export interface ProviderPage {
  address: string;
  stakedWei: string;
  lockedWei: string;
  unbondingWei: string;
  earnedWei: string;
  jobs: Job[];
  earnings: { block: number; job: number; totalWei: string }[];
}

export interface Dispute {
  job: number;
  step: number;
  challenger: string;
  openedBlock: number;
  outcome: string;
  byTimeout: boolean;
}

export interface Move {
  name: string;
  side: "challenger" | "worker" | "referee" | "market";
  block: number;
  log: number;
  tx: string;
  detail: string;
}

export interface DisputePage {
  explorer: string | null;
  job: Job;
  disputes: Dispute[];
  moves: Move[];
}

/** The daemon serving the page (`/api/me`), when it is a provider's or a validator's. */
export interface Me {
  role: "provider" | "validator";
  address: string;
  policy: Record<string, unknown>;
  stats: Record<string, number | string>;
  paused: boolean | null;
}

export interface ValidatorPage {
  address: string;
  stakedWei: string;
  lockedWei: string;
  challenges: Dispute[];
}
