/**
 * MD5 and cleartext password responses. Hermetic.
 */
import { createHash } from "node:crypto"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { cleartextPasswordResponse, md5PasswordResponse } from "../src/internal/auth/md5.ts"

const value = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)
const reason = <A>(r: Result.Result<A, { reason: string }>) =>
  Result.isFailure(r) ? r.failure.reason : "success"

/**
 * The protocol docs' formula, written out again on Buffers with latin1 concatenation so that it
 * shares nothing with the implementation but node's MD5: concat('md5', md5(concat(md5(concat(
 * password, username)), random-salt))).
 */
const reference = (user: string, password: string, salt: Buffer) => {
  const inner = createHash("md5")
    .update(Buffer.from(password + user, "utf8"))
    .digest("hex")
  return (
    "md5" +
    createHash("md5")
      .update(Buffer.concat([Buffer.from(inner, "latin1"), salt]))
      .digest("hex")
  )
}

describe("md5PasswordResponse", () => {
  it("matches vectors computed with coreutils", () => {
    // inner=$(printf '%s' secretuser | md5sum | cut -c1-32)  → 20eb1b22a92b5c573dc1eb4331fc49ee
    // printf '%sabcd' $inner | md5sum                         → fd7c993d0b0386ed609939ae4ac157ce
    // printf '%s\x01\x02\x03\x04' $inner | md5sum             → fccef98e4f1cf6cbe96b743fad4e8bd0
    expect(value(md5PasswordResponse("user", "secret", new TextEncoder().encode("abcd")))).toBe(
      "md5fd7c993d0b0386ed609939ae4ac157ce"
    )
    expect(value(md5PasswordResponse("user", "secret", new Uint8Array([1, 2, 3, 4])))).toBe(
      "md5fccef98e4f1cf6cbe96b743fad4e8bd0"
    )
  })

  it("agrees with the documented formula, including non-ASCII and high salt bytes", () => {
    for (const [user, password, salt] of [
      ["postgres", "hunter2", [0xff, 0x00, 0x80, 0x7f]],
      ["jöhn", "pässwörd ☃", [0xde, 0xad, 0xbe, 0xef]],
      ["", "x", [0, 0, 0, 0]]
    ] as const) {
      expect(value(md5PasswordResponse(user, password, new Uint8Array(salt)))).toBe(
        reference(user, password, Buffer.from(salt))
      )
    }
  })

  it("refuses an empty password, a NUL, and a salt that is not 4 bytes", () => {
    expect(reason(md5PasswordResponse("u", "", new Uint8Array(4)))).toBe("NoPassword")
    expect(reason(md5PasswordResponse("u", "a\0b", new Uint8Array(4)))).toBe("NoPassword")
    expect(reason(md5PasswordResponse("u", "pw", new Uint8Array(3)))).toBe("MalformedServerMessage")
  })
})

describe("cleartextPasswordResponse", () => {
  it("is the password itself (no SASLprep)", () => {
    expect(value(cleartextPasswordResponse("p\u00A0w"))).toBe("p\u00A0w")
  })
  it("refuses empty and NUL-containing passwords", () => {
    expect(reason(cleartextPasswordResponse(""))).toBe("NoPassword")
    expect(reason(cleartextPasswordResponse("a\0"))).toBe("NoPassword")
  })
})
