import { defineConfig } from "vite";

// The built app is embedded in the pedals binary (crates/ui), which serves it from `/`.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One small bundle: no source maps shipped in the binary.
    sourcemap: false,
    target: "es2022",
  },
});
