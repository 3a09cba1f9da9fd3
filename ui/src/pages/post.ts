// Post a job: the dataset (generated from a seed, or a file uploaded to the node's store), the
// model (trained from the seed, or a state file run over the data in batch inference) and the
// terms; then the plan and its cost, and only then the signature,
// by the node's unlocked account or by the browser's wallet. Every field is checked here
// before anything is sent, and again by the node.

import { ApiError, get, send, type NodeWallet, type Plan, type Upload } from "../api";
import { duration, el, eth } from "../format";
import { connect, sendAll, WalletError } from "../wallet";

/** A labelled input. */
function field(id: string, label: string, value: string, hint?: string, type = "text"): HTMLElement {
  const wrap = el("div", undefined, "field");
  const l = el("label", label);
  l.htmlFor = id;
  const i = el("input");
  i.id = id;
  i.name = id;
  i.type = type;
  i.value = value;
  if (type === "text") i.inputMode = "decimal";
  wrap.append(l, i);
  if (hint) {
    const h = el("span", hint, "hint muted");
    h.id = `${id}-hint`;
    i.setAttribute("aria-describedby", h.id);
    wrap.append(h);
  }
  return wrap;
}

function fieldset(legend: string, ...children: Node[]): HTMLFieldSetElement {
  const f = el("fieldset");
  f.append(el("legend", legend), ...children);
  return f;
}

/** A radio button of group `name`. */
function choice(name: string, id: string, checked: boolean): HTMLInputElement {
  const i = el("input");
  i.type = "radio";
  i.name = name;
  i.id = id;
  i.checked = checked;
  return i;
}

const value = (id: string) => (document.getElementById(id) as HTMLInputElement).value.trim();

/** A whole number in `lo..=hi`, or the message that says what to enter. */
function whole(id: string, name: string, lo: number, hi = Number.MAX_SAFE_INTEGER): number {
  const v = value(id);
  if (!/^-?\d+$/.test(v)) throw new WalletError(`${name}: enter a whole number.`);
  const n = Number(v);
  if (n < lo || n > hi) throw new WalletError(`${name} must be ${lo} to ${hi}; it is ${n}.`);
  return n;
}

/** A fraction in 0..=1. */
function fraction(id: string, name: string): number {
  const n = Number(value(id));
  if (value(id) === "" || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new WalletError(`${name} must be a number from 0 to 1, like 0.1.`);
  }
  return n;
}

/** The payment in ETH as typed, checked. */
function payment(): string {
  const v = value("payment");
  if (v.startsWith("-")) {
    throw new WalletError("The payment cannot be negative: enter what the worker is paid, in ETH, like 0.05.");
  }
  if (!/^\d+(\.\d{1,18})?$/.test(v) && !/^\.\d{1,18}$/.test(v)) {
    throw new WalletError("The payment is an amount in ETH with at most 18 decimals, like 0.05.");
  }
  if (!/[1-9]/.test(v)) {
    throw new WalletError("The payment must be more than zero: enter what the worker is paid, in ETH, like 0.05.");
  }
  return v;
}

export function post(root: HTMLElement): void {
  let uploaded: Upload | null = null;
  let plan: Plan | null = null;
  const problem = el("p", "", "error");
  problem.id = "form-error";
  problem.setAttribute("role", "alert");
  const say = (m: string) => {
    problem.textContent = m;
  };

  // The dataset.
  const synthetic = choice("source", "source-synthetic", true);
  const upload = choice("source", "source-upload", false);
  const radio = (i: HTMLInputElement, text: string) => {
    const l = el("label", ` ${text}`);
    l.htmlFor = i.id;
    const d = el("div", undefined, "choice");
    d.append(i, l);
    return d;
  };
  const file = el("input");
  file.type = "file";
  file.id = "dataset-file";
  file.accept = ".csv,.txt,.bin,.dataset";
  const fileLabel = el("label", "Dataset file (CSV, one sample per row, numbers only; or a Pedals dataset)");
  fileLabel.htmlFor = file.id;
  const labelCol = el("select");
  labelCol.id = "label-column";
  for (const [v, t] of [
    ["last", "last column"],
    ["first", "first column"],
  ]) {
    const o = el("option", t);
    o.value = v;
    labelCol.append(o);
  }
  const labelColLabel = el("label", "The label (a class number from 0) is in the");
  labelColLabel.htmlFor = labelCol.id;
  const uploadStatus = el("p", "", "muted");
  uploadStatus.id = "upload-status";
  uploadStatus.setAttribute("aria-live", "polite");
  const sendFile = async () => {
    uploaded = null;
    const f = file.files?.[0];
    if (!f) return;
    upload.checked = true;
    uploadStatus.textContent = `Sending ${f.name} to the node…`;
    try {
      uploaded = await send<Upload>(`uploads?label=${labelCol.value}`, f);
      uploadStatus.textContent = `${f.name}: ${uploaded.samples} samples of ${uploaded.features} values, ${uploaded.classes} classes; kept by the node as ${uploaded.cid}.`;
      say("");
    } catch (e) {
      uploadStatus.textContent = "";
      say(e instanceof ApiError ? e.message : String(e));
    }
  };
  file.addEventListener("change", () => void sendFile());
  labelCol.addEventListener("change", () => void sendFile());

  const group = (...children: Node[]) => {
    const d = el("div", undefined, "sub");
    d.append(...children);
    return d;
  };
  const wrapped = (...children: Node[]) => {
    const d = el("div", undefined, "field");
    d.append(...children);
    return d;
  };
  const dataset = fieldset(
    "Dataset",
    radio(synthetic, "Generated from a seed (for a trial)"),
    group(
      field("ds-samples", "Samples", "640"),
      field("ds-features", "Values per sample", "16"),
      field("ds-classes", "Classes", "4"),
      field("ds-seed", "Generator seed", "3"),
    ),
    radio(upload, "A file from this computer, sent to the node's store"),
    group(wrapped(fileLabel, file), wrapped(labelColLabel, labelCol), uploadStatus),
  );
  // What the job does: train a new model (its first weights drawn from the seed), or run a
  // model the user has (a state file, such as `pedals job result` wrote) over the dataset.
  const train = choice("kind", "kind-train", true);
  const infer = choice("kind", "kind-infer", false);
  let modelUpload: { cid: string; bytes: number } | null = null;
  const modelFile = el("input");
  modelFile.type = "file";
  modelFile.id = "model-file";
  const modelFileLabel = el("label", "Model state file (as `pedals job result` saves it)");
  modelFileLabel.htmlFor = modelFile.id;
  const modelStatus = el("p", "", "muted");
  modelStatus.id = "model-status";
  modelStatus.setAttribute("aria-live", "polite");
  modelFile.addEventListener("change", () => {
    void (async () => {
      modelUpload = null;
      const f = modelFile.files?.[0];
      if (!f) return;
      infer.checked = true;
      modelStatus.textContent = `Sending ${f.name} to the node…`;
      try {
        modelUpload = await send<{ cid: string; bytes: number }>("uploads?kind=model", f);
        modelStatus.textContent = `${f.name}: ${modelUpload.bytes} bytes, kept by the node as ${modelUpload.cid}; checked against the layers when you see the plan.`;
        say("");
      } catch (e) {
        modelStatus.textContent = "";
        say(e instanceof ApiError ? e.message : String(e));
      }
    })();
  });
  const model = fieldset(
    "Model (a classifier)",
    radio(train, "Train a new one (its first weights are drawn from the seed)"),
    radio(infer, "Run one I have over the dataset (batch inference)"),
    group(wrapped(modelFileLabel, modelFile), modelStatus, field("chunk", "Samples per chunk (a chunk is a step)", "256")),
    field("hidden", "Hidden layer widths", "12", "Comma-separated, like 64,32; empty for none"),
    field("batch", "Batch", "8"),
    field("lr", "Learning rate (training)", "0.1"),
    field("momentum", "Momentum (training)", "0.9"),
  );
  const terms = fieldset(
    "Terms",
    field("steps", "Steps (training)", "200"),
    field("checkpoint", "Checkpoint every (steps)", "50"),
    field("seed", "Seed", "5"),
    field("payment", "Payment (ETH)", "0.1", "Escrowed now; paid to the worker when the challenge window ends"),
    field("window", "Challenge window (seconds)", "60"),
    field("claim", "Claim within (seconds)", "600"),
    field("deliver", "Deliver within (seconds)", "3600"),
    field("holdout", "Samples kept back to score the result (training)", "128"),
  );

  const job = (): unknown => {
    const hidden = value("hidden") === "" ? [] : value("hidden").split(",").map((s) => s.trim());
    if (hidden.some((h) => !/^\d+$/.test(h) || Number(h) < 1)) {
      throw new WalletError("Hidden layer widths are whole numbers above zero, separated by commas, like 64,32.");
    }
    let ds: unknown;
    let features: number;
    let classes: number;
    if (upload.checked) {
      if (!uploaded) throw new WalletError("Pick a dataset file first (or choose a generated dataset).");
      ds = { upload: uploaded.cid };
      features = uploaded.features;
      classes = uploaded.classes;
    } else {
      features = whole("ds-features", "Values per sample", 1, 4096);
      classes = whole("ds-classes", "Classes", 2, 65536);
      ds = {
        format: "synthetic",
        seed: whole("ds-seed", "Generator seed", 0),
        samples: whole("ds-samples", "Samples", 1, 10_000_000),
        features,
        classes,
      };
    }
    const layers = [features, ...hidden.map(Number), classes];
    const terms = {
      payment_eth: payment(),
      challenge_window_secs: whole("window", "Challenge window", 10, 7 * 24 * 3600),
      claim_within_secs: whole("claim", "Claim within", 1),
      deliver_within_secs: whole("deliver", "Deliver within", 2),
    };
    if (infer.checked) {
      if (!modelUpload) throw new WalletError("Pick the model's state file first (or choose to train a new model).");
      return {
        ...terms,
        inference: { chunk: whole("chunk", "Samples per chunk", 1, 10_000_000) },
        model_upload: modelUpload.cid,
        model: { layers, batch: whole("batch", "Batch", 1, 4096) },
        dataset: ds,
      };
    }
    return {
      steps: whole("steps", "Steps", 1, 4294967295),
      checkpoint_every: whole("checkpoint", "Checkpoint every", 1),
      seed: whole("seed", "Seed", 0),
      ...terms,
      holdout: whole("holdout", "Samples kept back", 0),
      model: {
        layers,
        batch: whole("batch", "Batch", 1, 4096),
        lr: fraction("lr", "The learning rate"),
        momentum: fraction("momentum", "The momentum"),
      },
      dataset: ds,
    };
  };

  const planButton = el("button", "See the plan and the cost");
  planButton.type = "submit";
  planButton.id = "plan-button";
  const form = el("form");
  form.id = "post-form";
  form.noValidate = true;
  form.append(dataset, model, terms, planButton);
  const planBox = el("section");
  planBox.id = "plan";
  planBox.setAttribute("aria-live", "polite");
  form.addEventListener("input", () => {
    // The plan was for the form as it was.
    plan = null;
    planBox.replaceChildren();
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void (async () => {
      say("");
      planBox.replaceChildren();
      let body: unknown;
      try {
        body = job();
      } catch (e) {
        say((e as Error).message);
        return;
      }
      try {
        plan = await send<Plan>("jobs/plan", { job: body });
        await showPlan(planBox, plan, body, say);
      } catch (e) {
        say(e instanceof ApiError ? e.message : String(e));
      }
    })();
  });
  root.replaceChildren(
    el("h1", "Post a job"),
    el("p", "The node checks the job, keeps its files and serves them to the worker that claims it. Nothing is signed before you see the plan.", "muted"),
    form,
    problem,
    planBox,
  );
}

async function showPlan(box: HTMLElement, plan: Plan, job: unknown, say: (m: string) => void): Promise<void> {
  const w = await get<NodeWallet>("wallet");
  const dl = el("dl", undefined, "terms");
  const row = (k: string, v: string) => dl.append(el("dt", k), el("dd", v));
  row("Model", `${plan.layers.join(" → ")}, batch ${plan.batch}`);
  if (plan.kind === "inference") {
    row("Batch inference", `${plan.steps} chunks of ${plan.chunk} samples`);
  } else {
    row("Steps", String(plan.steps));
    row("Training samples", `${plan.samples} (${plan.holdout} kept back to score the result)`);
  }
  row("Dataset", plan.datasetCid);
  row("Payment, escrowed now", eth(plan.paymentWei));
  row("Gas, at most", eth(plan.gasWei));
  row("You pay at most", eth(plan.totalWei));
  row("The worker stakes", eth(plan.workerStakeWei));
  row("Deadlines", `claimed within ${duration(plan.claimWithinSecs)}, delivered within ${duration(plan.deliverWithinSecs)}, then a ${duration(plan.challengeWindowSecs)} challenge window`);
  const status = el("p", "", "muted");
  status.id = "post-status";
  status.setAttribute("aria-live", "polite");
  const done = (id: string) => {
    location.hash = `#/jobs/${id}`;
  };

  // The node's account.
  const nodeBox = el("div", undefined, "signer");
  nodeBox.append(el("h3", "With the node's account"));
  if (!w.keystore) {
    nodeBox.append(el("p", "This node has no keystore (start `pedals ui --keystore …` to sign with it).", "muted"));
  } else if (!w.address) {
    const pw = el("input");
    pw.type = "password";
    pw.id = "password";
    pw.autocomplete = "current-password";
    const l = el("label", "Keystore password");
    l.htmlFor = pw.id;
    const unlock = el("button", "Unlock");
    unlock.id = "unlock";
    unlock.type = "button";
    unlock.addEventListener("click", () => {
      void (async () => {
        say("");
        try {
          await send("wallet/unlock", { password: pw.value });
          pw.value = "";
          await showPlan(box, plan, job, say);
        } catch (e) {
          say(e instanceof ApiError ? e.message : String(e));
        }
      })();
    });
    nodeBox.append(l, pw, unlock);
  } else {
    const b = el("button", `Post as ${w.address} (balance ${eth(w.balanceWei ?? "0")})`);
    b.id = "post-node";
    b.type = "button";
    b.addEventListener("click", () => {
      void (async () => {
        say("");
        b.disabled = true;
        status.textContent = "Posting…";
        try {
          const r = await send<{ jobId: number; tx: string }>("jobs", { job });
          done(String(r.jobId));
        } catch (e) {
          status.textContent = "";
          say(e instanceof ApiError ? e.message : String(e));
          b.disabled = false;
        }
      })();
    });
    nodeBox.append(b);
  }

  // The browser's wallet.
  const walletBox = el("div", undefined, "signer");
  walletBox.append(el("h3", "With a browser wallet"));
  const wb = el("button", "Post with my browser wallet");
  wb.id = "post-wallet";
  wb.type = "button";
  wb.addEventListener("click", () => {
    void (async () => {
      say("");
      wb.disabled = true;
      try {
        const from = await connect(w.chainId);
        status.textContent = "The node is preparing the transactions…";
        const c = await send<{ chainId: number; calls: import("../api").WalletCall[] }>("jobs/calls", { job });
        const last = await sendAll(from, c.calls, (m) => (status.textContent = m));
        const r = await get<{ state: string; jobId: string | null }>(`tx/${last}`);
        if (!r.jobId) throw new WalletError(`The transaction ${last} was mined but posted no job.`);
        done(r.jobId);
      } catch (e) {
        status.textContent = "";
        say(e instanceof ApiError || e instanceof WalletError ? e.message : String(e));
      } finally {
        wb.disabled = false;
      }
    })();
  });
  walletBox.append(wb);

  box.replaceChildren(el("h2", "The plan"), dl, nodeBox, walletBox, status);
}
