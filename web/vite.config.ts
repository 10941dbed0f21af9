import { defineConfig } from "vitest/config";

// Everything the page loads comes from the gateway: no CDN, no font, no inline script.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsInlineLimit: 0, sourcemap: false, target: "es2022" },
  test: { environment: "jsdom" },
});
