"""The benchmarks' prompt: the same xorshift sequence as crates/lm/benches/generate.rs, so every
implementation is timed on the same tokens."""


def prompt(vocab, n):
    x, mask, ids = 0x9E3779B97F4A7C15, (1 << 64) - 1, []
    for _ in range(n):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        ids.append(x % vocab)
    return ids
