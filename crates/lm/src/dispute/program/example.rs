//! One example slot's ops (forward, loss signal, backward, running sums) and the update.

use super::{Builder, Operand, Source};
use crate::config::Family;
use crate::dispute::OpKind;
use crate::train::Target;

impl Builder<'_> {
    pub(super) fn data(&self, slot: usize, t: usize) -> Operand {
        Operand {
            source: Source::Data(slot),
            rows: self.samples,
            cols: t + 2,
        }
    }

    /// The forward pass, loss signal and backward pass of the example in `slot` (`t` input
    /// positions), then its share of the running gradient sums and token count.
    pub(super) fn example(&mut self, slot: usize, t: usize) {
        let c = self.c;
        let e = format!("e{slot}");
        let d = c.hidden;
        let mut ins = vec![self.data(slot, t), self.weight("embed")];
        if c.family == Family::Gpt2 {
            ins.push(self.weight("pos_embed"));
        }
        self.push(OpKind::Embed, format!("{e}.h0"), (t, d), ins);
        let mut h = format!("{e}.h0");
        let mut block_in = Vec::with_capacity(c.layers);
        for l in 0..c.layers {
            block_in.push(h.clone());
            h = self.block_forward(&e, l, &h, t);
        }
        self.norm(format!("{e}.xf"), &h, "final_norm");
        if self.chunk.is_some() {
            self.head_chunked(slot, t);
        } else {
            let ins = vec![self.leaf(&format!("{e}.xf")), self.weight(self.head())];
            self.push(OpKind::Linear, format!("{e}.logits"), (t, c.vocab), ins);
            let ins = vec![self.leaf(&format!("{e}.logits")), self.data(slot, t)];
            self.push(OpKind::Xent, format!("{e}.dz"), (t, c.vocab), ins);
            let ht = self.leaf("head.t");
            let dz = self.leaf(&format!("{e}.dz"));
            self.push(
                OpKind::InputGrad,
                format!("{e}.dxf"),
                (t, d),
                vec![dz, ht, ht],
            );
        }
        if self.full {
            self.head_grads(slot, t);
            self.norm_grads(&e, "final_norm", &h, &format!("{e}.dxf"));
        }
        let ins = vec![
            self.leaf(&h),
            self.leaf(&format!("{e}.dxf")),
            self.weight("final_norm.gamma"),
        ];
        self.push(OpKind::NormBack, format!("{e}.dh"), (t, d), ins);
        let mut dh = format!("{e}.dh");
        for l in (0..c.layers).rev() {
            dh = self.block_backward(&e, l, &block_in[l], &dh, t);
        }
        if self.full {
            self.embed_grads(slot, t, &dh);
        }
        self.sums(slot, t);
    }

    /// The logits, the loss signal and the head's input gradient over a vocabulary laid out
    /// in chunks (docs/protocol.md §9 "Long rows"): `e<b>.logits` and `e<b>.dz` of `t·k` chunk
    /// rows, the partial maxima and sums of the softmax, the signal's chunk magnitudes, the
    /// head's partial input gradients and their sum `e<b>.dxf`.
    fn head_chunked(&mut self, slot: usize, t: usize) {
        let ch = self.chunk.expect("a chunked vocabulary");
        let (e, d, v) = (format!("e{slot}"), self.c.hidden, ch.v as i32);
        let op = |b: &mut Self, kind, name: &str, shape, ins: Vec<Operand>| {
            b.push_arg(kind, format!("{e}.{name}"), shape, ins, v);
            b.leaf(&format!("{e}.{name}"))
        };
        let xf = self.leaf(&format!("{e}.xf"));
        let head = self.weight(self.head());
        let z = op(
            self,
            OpKind::LinearChunk,
            "logits",
            (t * ch.k, ch.r),
            vec![xf, head],
        );
        let zmax = op(self, OpKind::XentMax, "zmax", (t, ch.k), vec![z]);
        let zsum = op(self, OpKind::XentSum, "zsum", (t, 2 * ch.k), vec![z, zmax]);
        let ins = vec![z, zmax, zsum, self.data(slot, t)];
        let dz = op(self, OpKind::XentChunk, "dz", (t * ch.k, ch.r), ins);
        let dzmax = op(self, OpKind::AbsMax, "dzmax", (t, ch.k), vec![dz]);
        let (ht, smin) = (self.leaf("head.t"), self.leaf("head.smin"));
        let per = ch.per_part_row();
        let shape = (t * d.div_ceil(per), 2 * per * ch.k);
        let ins = vec![dz, ht, ht, dzmax, smin];
        let part = op(self, OpKind::InputGradPart, "dxf.part", shape, ins);
        let ins = vec![part, dzmax, smin];
        self.push_arg(
            OpKind::InputGradSum,
            format!("{e}.dxf"),
            (t, d),
            ins,
            per as i32,
        );
    }

    pub(super) fn block_forward(&mut self, e: &str, l: usize, h: &str, t: usize) -> String {
        let c = self.c;
        let p = format!("{e}.b{l}");
        self.norm(format!("{p}.x1"), h, &format!("b{l}.attn_norm"));
        let x1 = format!("{p}.x1");
        let mut q = self.project(e, l, Target::Q, &x1);
        let mut k = self.project(e, l, Target::K, &x1);
        let v = self.project(e, l, Target::V, &x1);
        if c.family == Family::Llama {
            q = self.rope(OpKind::Rope, format!("{p}.q.rot"), &q);
            k = self.rope(OpKind::Rope, format!("{p}.k.rot"), &k);
        }
        let (heads, qw, kw) = (c.heads, c.q_width(), c.kv_width());
        let ins = vec![self.leaf(&q), self.leaf(&k)];
        self.push(OpKind::Score, format!("{p}.scores"), (t * heads, t), ins);
        let s = self.leaf(&format!("{p}.scores"));
        self.push(
            OpKind::Softmax,
            format!("{p}.probs"),
            (t * heads, t),
            vec![s],
        );
        let vo = self.leaf(&v);
        self.push(OpKind::Transpose, format!("{p}.v.t"), (kw, t), vec![vo]);
        let ins = vec![
            self.leaf(&format!("{p}.probs")),
            self.leaf(&format!("{p}.v.t")),
        ];
        self.push(OpKind::AttendRaw, format!("{p}.attn.raw"), (t, 2 * qw), ins);
        let raw = self.leaf(&format!("{p}.attn.raw"));
        self.push(OpKind::RoundAttn, format!("{p}.attn"), (t, qw), vec![raw]);
        let o = self.project(e, l, Target::O, &format!("{p}.attn"));
        let ins = vec![self.leaf(h), self.leaf(&o)];
        self.push(OpKind::Add, format!("{p}.h_mid"), (t, c.hidden), ins);
        let h_mid = format!("{p}.h_mid");
        self.norm(format!("{p}.x2"), &h_mid, &format!("b{l}.mlp_norm"));
        let x2 = format!("{p}.x2");
        let up = self.project(e, l, Target::Up, &x2);
        let act = format!("{p}.act");
        let f = c.intermediate;
        if c.family == Family::Llama {
            let gate = self.project(e, l, Target::Gate, &x2);
            let ins = vec![self.leaf(&gate), self.leaf(&up)];
            self.push(OpKind::Swiglu, act.clone(), (t, f), ins);
        } else {
            let ins = vec![self.leaf(&up)];
            self.push(OpKind::Gelu, act.clone(), (t, f), ins);
        }
        let down = self.project(e, l, Target::Down, &act);
        let ins = vec![self.leaf(&h_mid), self.leaf(&down)];
        self.push(OpKind::Add, format!("{p}.h"), (t, c.hidden), ins);
        format!("{p}.h")
    }

    fn rope(&mut self, kind: OpKind, name: String, x: &str) -> String {
        let ins = vec![self.leaf(x), self.model("rope.cos"), self.model("rope.sin")];
        let o = ins[0];
        self.push(kind, name.clone(), (o.rows, o.cols), ins);
        name
    }

    fn block_backward(&mut self, e: &str, l: usize, h_in: &str, dh: &str, t: usize) -> String {
        let c = self.c;
        let p = format!("{e}.b{l}");
        let (heads, qw, kw) = (c.heads, c.q_width(), c.kv_width());
        let group = heads / c.kv_heads;
        let dact = self.project_back(e, l, Target::Down, &format!("{p}.act"), dh);
        let x2 = format!("{p}.x2");
        let up_y = format!("{p}.up_proj.y");
        let dx2 = if c.family == Family::Llama {
            let gate_y = format!("{p}.gate_proj.y");
            let ins = vec![self.leaf(&gate_y), self.leaf(&up_y), self.leaf(&dact)];
            let f = c.intermediate;
            self.push(
                OpKind::SwigluBackGate,
                format!("{p}.dgate"),
                (t, f),
                ins.clone(),
            );
            self.push(OpKind::SwigluBackUp, format!("{p}.dup"), (t, f), ins);
            let a = self.project_back(e, l, Target::Gate, &x2, &format!("{p}.dgate"));
            let b = self.project_back(e, l, Target::Up, &x2, &format!("{p}.dup"));
            self.add_grad(format!("{p}.dx2"), &a, &b)
        } else {
            let ins = vec![self.leaf(&up_y), self.leaf(&dact)];
            let f = c.intermediate;
            self.push(OpKind::GeluBack, format!("{p}.dup"), (t, f), ins);
            self.project_back(e, l, Target::Up, &x2, &format!("{p}.dup"))
        };
        if self.full {
            self.norm_grads(e, &format!("b{l}.mlp_norm"), &format!("{p}.h_mid"), &dx2);
        }
        let ins = vec![
            self.leaf(&format!("{p}.h_mid")),
            self.leaf(&dx2),
            self.weight(&format!("b{l}.mlp_norm.gamma")),
        ];
        self.push(OpKind::NormBack, format!("{p}.dn2"), (t, c.hidden), ins);
        let dh_mid = self.add_grad(format!("{p}.dh_mid"), dh, &format!("{p}.dn2"));
        let d_o = self.project_back(e, l, Target::O, &format!("{p}.attn"), &dh_mid);
        let (q, k, v) = match c.family {
            Family::Llama => (format!("{p}.q.rot"), format!("{p}.k.rot"), "v"),
            Family::Gpt2 => (format!("{p}.q_proj.y"), format!("{p}.k_proj.y"), "v"),
        };
        let v = format!("{p}.{v}_proj.y");
        let ins = vec![
            self.leaf(&format!("{p}.probs")),
            self.leaf(&d_o),
            self.leaf(&v),
            self.leaf(&format!("{p}.attn.raw")),
        ];
        self.push(OpKind::ScoreGrad, format!("{p}.ds"), (t * heads, t), ins);
        let ko = self.leaf(&k);
        self.push(OpKind::Transpose, format!("{p}.k.t"), (kw, t), vec![ko]);
        let ins = vec![
            self.leaf(&format!("{p}.ds")),
            self.leaf(&format!("{p}.k.t")),
        ];
        self.push(OpKind::Dq, format!("{p}.dq"), (t, qw), ins);
        let ds = self.leaf(&format!("{p}.ds"));
        self.push(
            OpKind::Transpose,
            format!("{p}.ds.t"),
            (t, t * heads),
            vec![ds],
        );
        let qo = self.leaf(&q);
        self.push(
            OpKind::GroupT,
            format!("{p}.q.g"),
            (kw, group * t),
            vec![qo],
        );
        let ins = vec![
            self.leaf(&format!("{p}.ds.t")),
            self.leaf(&format!("{p}.q.g")),
        ];
        self.push(OpKind::Dk, format!("{p}.dk"), (t, kw), ins);
        let pr = self.leaf(&format!("{p}.probs"));
        self.push(
            OpKind::Transpose,
            format!("{p}.probs.t"),
            (t, t * heads),
            vec![pr],
        );
        let doo = self.leaf(&d_o);
        self.push(
            OpKind::GroupT,
            format!("{p}.do.g"),
            (kw, group * t),
            vec![doo],
        );
        let ins = vec![
            self.leaf(&format!("{p}.probs.t")),
            self.leaf(&format!("{p}.do.g")),
        ];
        self.push(OpKind::Dv, format!("{p}.dv"), (t, kw), ins);
        let (mut dq, mut dk) = (format!("{p}.dq"), format!("{p}.dk"));
        if c.family == Family::Llama {
            dq = self.rope(OpKind::RopeBack, format!("{p}.dq.rot"), &dq);
            dk = self.rope(OpKind::RopeBack, format!("{p}.dk.rot"), &dk);
        }
        let x1 = format!("{p}.x1");
        let a = self.project_back(e, l, Target::Q, &x1, &dq);
        let b = self.project_back(e, l, Target::K, &x1, &dk);
        let qk = self.add_grad(format!("{p}.dx1.qk"), &a, &b);
        let b = self.project_back(e, l, Target::V, &x1, &format!("{p}.dv"));
        let dx1 = self.add_grad(format!("{p}.dx1"), &qk, &b);
        if self.full {
            self.norm_grads(e, &format!("b{l}.attn_norm"), h_in, &dx1);
        }
        // Block 0's input signal is needed only when the embeddings are trained.
        if l == 0 && !self.full {
            return dx1;
        }
        let ins = vec![
            self.leaf(h_in),
            self.leaf(&dx1),
            self.weight(&format!("b{l}.attn_norm.gamma")),
        ];
        self.push(OpKind::NormBack, format!("{p}.dn1"), (t, c.hidden), ins);
        self.add_grad(format!("{p}.dh"), &dh_mid, &format!("{p}.dn1"))
    }

    /// The running sums after slot `slot`: `e<b>.tokens` (scored positions so far) and, for
    /// `b > 0`, `e<b>.b<l>.<p>.sumA`/`.sumB` (gradient sums so far; slot 0's are its `gA`/`gB`),
    /// or in a full fine-tune every weight's `e<b>.<weight>.sum`.
    fn sums(&mut self, slot: usize, t: usize) {
        let e = format!("e{slot}");
        let mut ins = vec![self.data(slot, t)];
        if slot > 0 {
            ins.insert(0, self.leaf(&format!("e{}.tokens", slot - 1)));
        }
        self.push(OpKind::Tokens, format!("{e}.tokens"), (1, 1), ins);
        if self.full {
            self.full_sums(slot);
            return;
        }
        if slot == 0 {
            return;
        }
        for l in 0..self.c.layers {
            for p in self.lora.targets.clone() {
                for m in ["A", "B"] {
                    let w = format!("b{l}.{}", p.name());
                    let prev = sum_name(slot - 1, &w, m);
                    let ins = vec![self.leaf(&prev), self.leaf(&format!("{e}.{w}.g{m}"))];
                    let o = ins[0];
                    self.push(
                        OpKind::GradSum,
                        sum_name(slot, &w, m),
                        (o.rows, o.cols),
                        ins,
                    );
                }
            }
        }
    }

    /// The Adam update of every trained tensor (the adapters, or in a full fine-tune every
    /// weight), the step counter and the state hash; returns the leaf of each new state tensor
    /// in state order.
    pub(super) fn update(&mut self, slots: usize) -> Vec<usize> {
        let tokens = self.leaf(&format!("e{}.tokens", slots - 1));
        let mut trained: Vec<(String, String)> = Vec::new();
        if self.full {
            for p in crate::train::full::Layout::of(self.c).params {
                let sum = super::full::sum_name(slots - 1, &p.name);
                trained.push((p.name, sum));
            }
        } else {
            for l in 0..self.c.layers {
                for p in &self.lora.targets {
                    for m in ["A", "B"] {
                        let w = format!("b{l}.{}", p.name());
                        trained.push((format!("{w}.lora_{m}"), sum_name(slots - 1, &w, m)));
                    }
                }
            }
        }
        for (master, sum) in trained {
            let g = self.leaf(&sum);
            let s = self.state(&master);
            for (kind, suffix) in [(OpKind::AdamM, "m"), (OpKind::AdamV, "v")] {
                let name = format!("{master}.{suffix}");
                let ins = vec![self.state(&name), g, tokens];
                self.push(kind, format!("new.{name}"), (s.rows, 2 * s.cols), ins);
            }
            let ins = vec![
                s,
                self.leaf(&format!("new.{master}.m")),
                self.leaf(&format!("new.{master}.v")),
            ];
            self.push(
                OpKind::AdamW,
                format!("new.{master}"),
                (s.rows, s.cols),
                ins,
            );
        }
        let s = self.state("step");
        self.push(OpKind::Step, "new.step".into(), (1, 1), vec![s]);
        let leaves: Vec<usize> = self
            .state
            .iter()
            .map(|(name, _)| self.names[&format!("new.{name}")])
            .collect();
        let ins = leaves.iter().map(|&k| self.leaf_at(k)).collect();
        self.push(OpKind::StateHash, "state_hash".into(), (1, 1), ins);
        leaves
    }

    fn leaf_at(&self, k: usize) -> Operand {
        let op = &self.ops[k - 1];
        Operand {
            source: Source::Leaf(k),
            rows: op.rows,
            cols: op.cols,
        }
    }
}

/// The running gradient sum of adapter matrix `m` of `w` after slot `slot`.
fn sum_name(slot: usize, w: &str, m: &str) -> String {
    if slot == 0 {
        format!("e0.{w}.g{m}")
    } else {
        format!("e{slot}.{w}.sum{m}")
    }
}
