/**
 * Node's TLS and crypto modules, loaded on first use rather than with the package: a process that
 * connects without TLS and authenticates without a password hash never pays for them, and one
 * that does pays at its first connection instead of at import (`node:tls`, which loads
 * `node:crypto`, adds 8–13 ms to the import of pgline and effect on a small VM).
 */
import type * as Crypto from "node:crypto"
import { createRequire } from "node:module"
import type * as Tls from "node:tls"

let tls: typeof Tls | undefined
let crypto: typeof Crypto | undefined

// process.getBuiltinModule came with Node 22.3; require serves the versions before it.
const builtin = <A>(id: "node:tls" | "node:crypto"): A =>
  (process.getBuiltinModule?.(id) ?? createRequire(import.meta.url)(id)) as A

export const nodeTls = (): typeof Tls => {
  tls ??= builtin<typeof Tls>("node:tls")
  return tls
}

export const nodeCrypto = (): typeof Crypto => {
  crypto ??= builtin<typeof Crypto>("node:crypto")
  return crypto
}
