/**
 * A vitest reporter that closes the run with one plain line, `Tests: N passed, N failed, N skipped`,
 * printed after vitest's own summary so that any tool reading the last line of CI output gets the
 * counts. It does not replace the default reporter; it is added beside it.
 */
import type { Reporter, TestModule } from "vitest/node"

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      let failedHere = 0
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failedHere++
        else skipped++
      }
      // A file that failed outside its tests (a hook, an import) counts as one failure.
      if (module.state() === "failed" && failedHere === 0) failedHere = 1
      failed += failedHere
    }
    failed += unhandledErrors.length
    // Deferred so that it lands after the default reporter's summary block.
    setImmediate(() =>
      process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
    )
  }
}
