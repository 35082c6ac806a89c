import { defineConfig } from "vitest/config"

// Inside the monorepo every @pgline package resolves to its TypeScript source (the "@pgline/source"
// export condition); published consumers get dist/. The same condition is set for tsc
// (tsconfig.base.json) and for node (NODE_OPTIONS in the package scripts).
const conditions = ["@pgline/source", "module", "node", "development|production"]

/**
 * Every suite runs against PostgreSQL 18 (the default server). The client and transport
 * integration suites also run against 14, 15, 16 and 17 (each file starts its own embedded server
 * of that version, PGLINE_PG_VERSION); version-specific behaviour is asserted per version inside
 * the tests. The cancel stress test keeps 10,000 rounds on 18 and does 1,000 on the others.
 */
const everything = ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"]
const integration = [
  "packages/client/test/**/*.integration.test.ts",
  "packages/transport/test/**/*.integration.test.ts"
]
const olderMajors = [14, 15, 16, 17]

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@pgline/source"] } },
  test: {
    reporters: ["default", "./scripts/SummaryReporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each start their own server; two cores, so two workers.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      { extends: true, test: { name: "pg18", include: everything } },
      ...olderMajors.map((major) => ({
        extends: true as const,
        test: {
          name: `pg${major}`,
          include: integration,
          env: { PGLINE_PG_VERSION: String(major), PGLINE_CANCEL_ROUNDS: "1000" }
        }
      }))
    ]
  }
})
