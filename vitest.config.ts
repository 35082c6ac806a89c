import { defineConfig } from "vitest/config"

// Inside the monorepo every @pgline package resolves to its TypeScript source (the "@pgline/source"
// export condition); published consumers get dist/. The same condition is set for tsc
// (tsconfig.base.json) and for node (NODE_OPTIONS in the package scripts).
const conditions = ["@pgline/source", "module", "node", "development|production"]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@pgline/source"] } },
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
