import { expect, it } from "vitest"

it("smoke", () => {
  expect(1 + 1).toBe(2)
})
