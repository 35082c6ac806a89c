import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    reporters: ["default", "./scripts/SummaryReporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each start their own server; two cores, so two workers.
    maxWorkers: 2,
    fileParallelism: true
  }
})
